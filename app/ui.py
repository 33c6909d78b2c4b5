"""The web app: chat with streamed answers, flag a wrong answer, correct it, watch the side panel.

UI only: every decision (routing, storing, undoing, probing) is made in kme_chat.
"""
from __future__ import annotations

import html
import os
import time

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr

from kme_chat.assistant import Assistant
from kme_chat.chat import content_text
from kme_chat.config import Settings
from kme_chat.errors import UserError
from kme_chat.methods import BUILDERS
from kme_chat.probes import ProbeRun, answer_probes, default_probes
from kme_chat.router import complete_form, route_correction

WEIGHT_METHODS = [m for m in ("rome", "memit") if m in BUILDERS]
HISTORY_COLUMNS = ["id", "when", "user", "route", "status", "edit"]
PROBE_COLUMNS = ["probe", "before", "after", "drift"]


HISTORY_REFRESH_S = 5  # how often an open page re-reads the edit history


def _esc(text: str) -> str:
    return html.escape(str(text), quote=False)


# The chat shows what people and the model wrote as text: "<b>" typed is shown as "<b>", not bold.
# Messages are kept escaped in the chat component and read back unescaped wherever they are used.
def _said(content) -> str:
    return html.unescape(content_text(content))


def _plain(history) -> list[dict]:
    return [{"role": m["role"], "content": _said(m["content"])} for m in history]


def history_rows(assistant: Assistant) -> list[list[str]]:
    rows = []
    for e in reversed(assistant.log.all()):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.created))
        rows.append([e.id, when, e.user, "+".join(e.routes), e.status, e.summary])
    return rows


def preview_markdown(routed, conflicts) -> str:
    if routed.edit is None:
        return f"**Nothing to store.** {_esc(routed.reason)}"
    e = routed.edit
    lines = [f"**Route:** {', '.join(routed.route)}  ", f"**Why:** {_esc(routed.reason)}  ",
             f"**Read by:** {routed.method}  "]
    if e.kind == "fact":
        lines.append(f"**Edit:** subject `{_esc(e.subject)}` · relation `{_esc(e.relation)}` · "
                     f"`{_esc(e.target_true) or '?'}` → `{_esc(e.target_new)}`")
    elif e.kind == "rule":
        lines.append(f"**Patch:** if `{_esc(e.condition)}`, then `{_esc(e.note)}`")
    else:
        lines.append(f"**Feedback** for questions like `{_esc(e.question)}`: `{_esc(e.note)}`")
    for c in conflicts:
        lines.append(f"\n**Conflicts with** `{c.id}`: {_esc(c.summary)} — choose *replace* or *keep both*.")
    return "\n".join(lines)


def build(assistant: Assistant) -> gr.Blocks:
    probes = ProbeRun(default_probes())

    with gr.Blocks(title="kme-chat") as demo:
        gr.Markdown("## kme-chat — a chat whose knowledge you can correct\n"
                    "Flag a wrong answer with 👎, type the correction, preview, commit.")
        flagged = gr.State(None)   # {"index", "question", "answer"} of the message being corrected
        pending = gr.State(None)   # {"routed", "text", "weights"}: the previewed edit waiting for commit
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Chat", height=420, feedback_options=("Dislike",), elem_id="chat")
                with gr.Row():
                    message = gr.Textbox(placeholder="Ask something…", show_label=False, scale=5, elem_id="message")
                    send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
                with gr.Group(visible=False, elem_id="correction-box") as correction_box:
                    flagged_md = gr.Markdown()
                    correction = gr.Textbox(label="Your correction", lines=2, elem_id="correction",
                                            placeholder="e.g. No, the largest planet is Jupiter")
                    weights = gr.Radio(["memory only", *WEIGHT_METHODS], value="memory only",
                                       label="Also write into the model's weights?")
                    preview_btn = gr.Button("Preview edit", elem_id="preview")
                    preview_md = gr.Markdown(elem_id="preview-md")
                    with gr.Row(visible=False) as form_row:
                        f_subject = gr.Textbox(label="Subject")
                        f_relation = gr.Textbox(label="Relation ({} = subject)")
                        f_target = gr.Textbox(label="New answer")
                    conflict_choice = gr.Radio(["replace", "keep both"], value="replace", label="If it conflicts",
                                               visible=False)
                    commit_btn = gr.Button("Commit edit", variant="primary", elem_id="commit")
                status = gr.Markdown(elem_id="status")
            with gr.Column(scale=2):
                with gr.Tab("Edit history"):
                    history_table = gr.Dataframe(headers=HISTORY_COLUMNS, value=history_rows(assistant),
                                                 interactive=False, elem_id="history", wrap=True)
                    with gr.Row():
                        undo_id = gr.Textbox(label="Edit id to undo", elem_id="undo-id", scale=3)
                        undo_btn = gr.Button("Undo", elem_id="undo", scale=1)
                with gr.Tab("Locality probes"):
                    drift_md = gr.Markdown("Probes run after each edit.", elem_id="drift")
                    probes_table = gr.Dataframe(headers=PROBE_COLUMNS, value=probes.rows(), interactive=False,
                                                elem_id="probes", wrap=True)
                    probe_text = gr.Textbox(value="\n".join(probes.prompts), lines=6,
                                            label="Probe prompts (one per line)")
                    probe_btn = gr.Button("Run probes now", elem_id="run-probes")
                with gr.Tab("Multi-hop check"):
                    hop_q = gr.Textbox(label="Multi-hop question", elem_id="hop-question",
                                       placeholder="e.g. What is the capital of the country the author of X is from?")
                    hop_method = gr.Radio([("fact chain (follows stored facts)", "fact_chain"),
                                           ("MeLLo (the model decomposes; slow)", "mello")],
                                          value="fact_chain", label="Method", elem_id="hop-method")
                    hop_btn = gr.Button("Check", elem_id="hop-check")
                    hop_md = gr.Markdown(elem_id="hop-chain")

        # ---- chat ------------------------------------------------------------------------
        def respond(text, history):
            history = list(history or [])
            try:
                stream = assistant.stream(text, _plain(history))
                first = next(stream, "")
            except UserError as exc:
                gr.Warning(str(exc))
                yield history, text, f"⚠️ {_esc(exc)}"
                return
            history += [{"role": "user", "content": _esc(text)}, {"role": "assistant", "content": _esc(first)}]
            yield history, "", ""
            for partial in stream:
                history[-1] = {"role": "assistant", "content": _esc(partial)}
                yield history, "", ""

        send.click(respond, [message, chatbot], [chatbot, message, status])
        message.submit(respond, [message, chatbot], [chatbot, message, status])

        # ---- flag and correct ------------------------------------------------------------
        def on_flag(evt: gr.LikeData, history):
            index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
            history = list(history or [])
            if index is None or index >= len(history) or history[index]["role"] != "assistant":
                return None, gr.update(visible=False), "", "⚠️ Only an answer of the assistant can be corrected."
            question = next((_said(m["content"]) for m in reversed(history[:index]) if m["role"] == "user"), "")
            info = {"index": index, "question": question, "answer": _said(history[index]["content"])}
            md = f"**Correcting:** _{_esc(question)}_ → {_esc(info['answer'])}"
            return info, gr.update(visible=True), md, ""

        chatbot.like(on_flag, [chatbot], [flagged, correction_box, flagged_md, status])

        def still_there(info, history) -> None:
            history = list(history or [])
            i = (info or {}).get("index")
            if info is None or i is None or i >= len(history) or _said(history[i]["content"]) != info["answer"]:
                raise UserError("that message is no longer in the conversation: ask again and flag the new answer")

        def on_preview(info, history, text, weight_choice):
            try:
                still_there(info, history)
                routed = route_correction(info["question"], info["answer"], text,
                                          weights=None if weight_choice == "memory only" else weight_choice)
            except UserError as exc:
                return (None, f"⚠️ {_esc(exc)}", gr.update(visible=False), "", "", "", gr.update(visible=False),
                        gr.update(interactive=False))
            conflicts = assistant.conflicts(routed.edit) if routed.edit and routed.edit.kind == "fact" else []
            e = routed.edit
            is_form = routed.method == "form"
            # what was previewed, with the words it came from: Commit saves exactly this or nothing
            previewed = {"routed": routed, "text": text, "weights": weight_choice}
            return (previewed, preview_markdown(routed, conflicts), gr.update(visible=is_form),
                    e.subject if e else "", e.relation if e else "", e.target_new if e else "",
                    gr.update(visible=bool(conflicts)), gr.update(interactive=e is not None))

        preview_btn.click(on_preview, [flagged, chatbot, correction, weights],
                          [pending, preview_md, form_row, f_subject, f_relation, f_target, conflict_choice,
                           commit_btn])

        def invalidate():
            """The correction changed after its preview: the preview no longer shows what would be saved."""
            return None, gr.update(interactive=False), "_The correction changed: preview it again before committing._"

        correction.change(invalidate, None, [pending, commit_btn, preview_md])
        weights.change(invalidate, None, [pending, commit_btn, preview_md])

        def on_commit(previewed, text, weight_choice, info, history, subject, relation, target, conflict,
                      request: gr.Request, progress=gr.Progress()):
            try:
                still_there(info, history)
                routed = (previewed or {}).get("routed")
                if routed is None or routed.edit is None:
                    raise UserError("nothing to commit: preview a correction first")
                if (previewed["text"], previewed["weights"]) != (text, weight_choice):
                    raise UserError("the correction changed since its preview: preview it again, then commit")
                if routed.method == "form":
                    routed = complete_form(routed, subject, relation, target)
                progress(0.05, desc="locality probes before the edit")
                probes.before = answer_probes(assistant, probes.prompts)
                edit = routed.edit
                edit.routes = routed.route
                edit.user = (request.username if request and request.username else assistant.settings.user)
                edit.source_turn = f"{info['index']}"
                if conflict == "replace":
                    for old in assistant.conflicts(edit) if edit.kind == "fact" else []:
                        assistant.undo(old.id)
                progress(0.3, desc=f"applying the edit ({', '.join(edit.routes)})")
                edit = assistant.add_edit(edit)
                progress(0.6, desc="locality probes after the edit")
                probes.after = answer_probes(assistant, probes.prompts)
            except UserError as exc:
                return f"⚠️ {_esc(exc)}", gr.update(), gr.update(), gr.update(), None, gr.update()
            msg = f"✅ Saved edit `{edit.id}`: {_esc(edit.summary)} via {', '.join(edit.routes)}. Ask again to see it."
            drift = f"**Drift:** {probes.drift} of {len(probes.prompts)} probes changed after edit `{edit.id}`."
            return msg, history_rows(assistant), probes.rows(), drift, None, gr.update(visible=False)

        commit_btn.click(on_commit, [pending, correction, weights, flagged, chatbot, f_subject, f_relation, f_target,
                                     conflict_choice],
                         [status, history_table, probes_table, drift_md, pending, correction_box])

        # ---- side panel ------------------------------------------------------------------
        def on_undo(edit_id):
            try:
                edit = assistant.undo((edit_id or "").strip())
            except UserError as exc:
                return f"⚠️ {_esc(exc)}", gr.update()
            return f"↩️ Reverted `{edit.id}`: {_esc(edit.summary)}", history_rows(assistant)

        undo_btn.click(on_undo, [undo_id], [status, history_table])

        # the history is read from the edit log on every page load and every few seconds, so a page
        # opened or reloaded later, or another browser's edits, show up without a restart
        demo.load(lambda: history_rows(assistant), None, history_table)
        gr.Timer(HISTORY_REFRESH_S).tick(lambda: history_rows(assistant), None, history_table, show_progress="hidden")

        def on_probes(text, progress=gr.Progress()):
            prompts = [line.strip() for line in (text or "").splitlines() if line.strip()][:50]
            if not prompts:
                return gr.update(), "⚠️ Add at least one probe prompt."
            if prompts != probes.prompts:
                probes.prompts, probes.before, probes.after = prompts, [], []
            probes.before, probes.after = probes.after, answer_probes(assistant, prompts, progress)
            return probes.rows(), f"**Drift:** {probes.drift} of {len(prompts)} probes changed since the last run."

        probe_btn.click(on_probes, [probe_text], [probes_table, drift_md])

        def on_multihop(question, method, progress=gr.Progress()):
            progress(0, desc="answering hop by hop")
            try:
                return chain_markdown(assistant.multihop(question, method))
            except UserError as exc:
                return f"⚠️ {_esc(exc)}"

        hop_btn.click(on_multihop, [hop_q, hop_method], [hop_md])
    return demo


def chain_markdown(result) -> str:
    """The multi-hop answer and each hop: sub-question, what the model said, the stored fact used."""
    lines = [f"**Answer:** {_esc(result.answer) or '(none)'}", ""]
    if not result.hops:
        lines.append("No stored fact is involved: this is the model's own answer, unchanged by any edit.")
        return "\n".join(lines)
    def cell(text: str) -> str:
        return _esc(text).replace("|", "\\|").replace("\n", " ") or "—"

    lines += ["| # | sub-question | model said | stored fact | answer |", "|---|---|---|---|---|"]
    for i, hop in enumerate(result.hops, 1):
        fact = f"{cell(hop.fact)} (`{hop.edit_id}`)" if hop.edit_id else "— (the model's own answer)"
        lines.append(f"| {i} | {cell(hop.question)} | {cell(hop.generated)} | {fact} | {cell(hop.answer)} |")
    return "\n".join(lines)


def serve(settings: Settings) -> None:
    assistant = Assistant.open(settings)
    demo = build(assistant)
    demo.queue(default_concurrency_limit=4)
    print(f"kme-chat serving on http://{settings.host}:{settings.port}", flush=True)
    demo.launch(server_name=settings.host, server_port=settings.port, show_error=True, footer_links=[])
