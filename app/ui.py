"""The web app: chat with streamed answers, flag a wrong answer, correct it, watch the side panel.

UI only: every decision (routing, storing, undoing, probing) is made in kme_chat.
"""
from __future__ import annotations

import html
import os
import threading
import time
from collections import OrderedDict

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr

from kme_chat.accounts import Accounts, User
from kme_chat.assistant import Assistant
from kme_chat.chat import content_text
from kme_chat.errors import UserError
from kme_chat.memory import seen_by
from kme_chat.methods import BUILDERS
from kme_chat.probes import Panel, answer_probes, default_probes
from kme_chat.router import fields_of, route_correction, with_fields

WEIGHT_METHODS = [m for m in ("rome", "memit", "alphaedit") if m in BUILDERS]
HISTORY_COLUMNS = ["when", "who", "route", "status", "edit", "undo", "id"]
HISTORY_WIDTHS = ["14%", "9%", "12%", "10%", "37%", "9%", "9%"]
UNDO_CELL = "↩️ undo"
PROBE_COLUMNS = ["probe", "before", "after", "drift"]
KINDS = [("fact", "fact"), ("preference: how to answer, for every question", "preference"),
         ("feedback on what this question meant", "feedback"), ("rule: if …, then …", "rule")]
PANEL_REFRESH_S = 2  # how often an open page re-reads the edit history, its probes and its weight edit
MAX_PANELS = 256     # sessions whose side panel is kept (the oldest is dropped first)


def _esc(text: str) -> str:
    return html.escape(str(text), quote=False)


# The chat shows what people and the model wrote as text: "<b>" typed is shown as "<b>", not bold.
# Messages are kept escaped in the chat component and read back unescaped wherever they are used.
def _said(content) -> str:
    return html.unescape(content_text(content))


def _plain(history) -> list[dict]:
    return [{"role": m["role"], "content": _said(m["content"])} for m in history]


def history_rows(assistant: Assistant, by: User | None = None) -> list[list[str]]:
    rows = []
    for e in reversed(assistant.edits(by)):
        when = time.strftime("%m-%d %H:%M", time.localtime(e.created))
        undo = UNDO_CELL if e.status == "active" else ""
        rows.append([when, e.user, "+".join(e.routes), e.status, e.summary, undo, e.id])
    return rows


def preview_markdown(routed, conflicts) -> str:
    if routed.edit is None:
        return f"**Nothing to store.** {_esc(routed.reason)}"
    lines = [f"**Route:** {', '.join(routed.route)}  ", f"**Why:** {_esc(routed.reason)}  ",
             f"**Read by:** {routed.method}. Check the fields below and change any that are wrong: "
             f"Commit saves what they say."]
    for c in conflicts:
        lines.append(f"\n**Conflicts with** `{c.id}`: {_esc(c.summary)} — choose *replace* or *keep both*.")
    return "\n".join(lines)


def field_updates(kind: str | None) -> list:
    """Which preview fields a kind of edit has, and what they are called."""
    fact = kind == "fact"
    when_label = {"feedback": "For questions like", "rule": "If (the condition)"}.get(kind, "")
    note_label = {"preference": "Instruction, for every later answer", "feedback": "Feedback",
                  "rule": "Then"}.get(kind, "")
    return [gr.update(visible=kind is not None), gr.update(visible=fact),
            gr.update(visible=kind in ("feedback", "rule"), label=when_label),
            gr.update(visible=kind not in (None, "fact"), label=note_label)]


class Panels:
    """Each browser session's own side panel (probes, weight edit in progress), by session id."""

    def __init__(self):
        self._panels: OrderedDict[str, Panel] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, request: gr.Request | None, by: User | None = None) -> Panel:
        key = getattr(request, "session_hash", None) or "local"
        with self._lock:
            if key not in self._panels:
                self._panels[key] = Panel(default_probes(), viewer=by.name if by else None)
                while len(self._panels) > MAX_PANELS:
                    self._panels.popitem(last=False)
            self._panels.move_to_end(key)
            return self._panels[key]


def build(assistant: Assistant, accounts: Accounts | None = None) -> gr.Blocks:
    panels = Panels()

    def signed_in(request: gr.Request | None) -> User | None:
        """The signed-in user; None on the local one-person app (no accounts: all memory is theirs)."""
        name = getattr(request, "username", None)
        if accounts is None:
            return None
        return (accounts.get(name) or User(name)) if name else User("")  # no name: shared memory only

    with gr.Blocks(title="kme-chat") as demo:
        gr.Markdown("## kme-chat — a chat whose knowledge you can correct\n"
                    "Flag a wrong answer with 👎, type the correction, preview, check the fields, commit.")
        flagged = gr.State(None)   # {"index", "question", "answer"} of the message being corrected
        pending = gr.State(None)   # {"routed", "text", "weights"}: the previewed edit waiting for commit
        undo_target = gr.State(None)  # the id of the edit whose undo waits for confirmation
        shown_history = gr.State(None)  # the rows this page shows, so a refresh sends only changes
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
                                       label="Also write into the model's weights?", elem_id="weights")
                    preview_btn = gr.Button("Preview edit", elem_id="preview")
                    preview_md = gr.Markdown(elem_id="preview-md")
                    f_kind = gr.Radio(KINDS, value="fact", label="Kind of edit", visible=False, elem_id="f-kind")
                    with gr.Row(visible=False) as fact_row:
                        f_subject = gr.Textbox(label="Subject", elem_id="f-subject")
                        f_relation = gr.Textbox(label="Relation ({} = subject)", elem_id="f-relation")
                        f_old = gr.Textbox(label="Old answer", elem_id="f-old")
                        f_new = gr.Textbox(label="New answer", elem_id="f-new")
                    f_when = gr.Textbox(label="For questions like", visible=False, elem_id="f-when")
                    f_note = gr.Textbox(label="Instruction", visible=False, lines=2, elem_id="f-note")
                    conflict_choice = gr.Radio(["replace", "keep both"], value="replace", label="If it conflicts",
                                               visible=False)
                    commit_btn = gr.Button("Commit edit", variant="primary", elem_id="commit", interactive=False)
                status = gr.Markdown(elem_id="status")
                job_md = gr.Markdown(elem_id="job")
            with gr.Column(scale=2):
                with gr.Tab("Edit history"):
                    # filled on load, for the signed-in user: never every user's edits
                    history_table = gr.Dataframe(headers=HISTORY_COLUMNS, value=[],
                                                 interactive=False, elem_id="history", wrap=True,
                                                 column_widths=HISTORY_WIDTHS)
                    with gr.Row(visible=False, elem_id="undo-confirm") as undo_row:
                        undo_md = gr.Markdown()
                        undo_yes = gr.Button("Yes, undo it", variant="stop", elem_id="undo-yes", scale=0)
                        undo_no = gr.Button("Cancel", elem_id="undo-no", scale=0)
                with gr.Tab("Locality probes"):
                    drift_md = gr.Markdown("Probes run after each edit.", elem_id="drift")
                    probes_table = gr.Dataframe(headers=PROBE_COLUMNS, interactive=False, elem_id="probes", wrap=True)
                    probe_text = gr.Textbox(value="\n".join(default_probes()), lines=6,
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
        def respond(text, history, request: gr.Request):
            history = list(history or [])
            try:
                stream = assistant.stream(text, _plain(history), signed_in(request))
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

        preview_outputs = [pending, preview_md, f_kind, fact_row, f_when, f_note, f_subject, f_relation, f_old, f_new,
                           conflict_choice, commit_btn]

        def on_preview(info, history, text, weight_choice):
            try:
                still_there(info, history)
                routed = route_correction(info["question"], info["answer"], text,
                                          weights=None if weight_choice == "memory only" else weight_choice)
            except UserError as exc:
                return [None, f"⚠️ {_esc(exc)}", *field_updates(None), *[gr.update()] * 4,  # the four fact fields
                        gr.update(visible=False), gr.update(interactive=False)]
            e = routed.edit
            conflicts = assistant.conflicts(e) if e is not None and e.kind == "fact" else []
            fields = fields_of(e)
            kind_field, *shown = field_updates(e.kind if e else None)
            kind_field = gr.update(visible=e is not None, value=e.kind if e else "fact")
            when = fields.get("condition") if e is not None and e.kind == "rule" else fields.get("question", "")
            # what was previewed, with the words it came from: Commit saves it (as the fields now say) or nothing
            previewed = {"routed": routed, "text": text, "weights": weight_choice}
            return [previewed, preview_markdown(routed, conflicts), kind_field, shown[0],
                    {**shown[1], "value": when or ""}, {**shown[2], "value": fields.get("note", "")},
                    fields.get("subject", ""), fields.get("relation", ""), fields.get("old", ""), fields.get("new", ""),
                    gr.update(visible=bool(conflicts)), gr.update(interactive=e is not None)]

        preview_btn.click(on_preview, [flagged, chatbot, correction, weights], preview_outputs)
        f_kind.change(lambda kind: field_updates(kind)[1:], [f_kind], [fact_row, f_when, f_note])

        def invalidate():
            """The correction changed after its preview: the preview no longer shows what would be saved."""
            return None, gr.update(interactive=False), "_The correction changed: preview it again before committing._"

        correction.change(invalidate, None, [pending, commit_btn, preview_md])
        weights.change(invalidate, None, [pending, commit_btn, preview_md])

        def on_commit(previewed, text, weight_choice, info, history, kind, subject, relation, old, new, when, note,
                      conflict, request: gr.Request):
            by = signed_in(request)
            panel = panels.of(request, by)
            try:
                still_there(info, history)
                routed = (previewed or {}).get("routed")
                if routed is None or routed.edit is None:
                    raise UserError("nothing to commit: preview a correction first")
                if (previewed["text"], previewed["weights"]) != (text, weight_choice):
                    raise UserError("the correction changed since its preview: preview it again, then commit")
                if panel.busy:
                    raise UserError("a weight edit of yours is still running: wait until it is saved, then commit")
                fields = {"subject": subject, "relation": relation, "old": old, "new": new, "note": note,
                          "question": when, "condition": when}
                routed = with_fields(routed, kind, fields)  # exactly what the page shows
                edit = routed.edit
                edit.routes = routed.route
                edit.user = by.name if by else assistant.settings.user
                edit.source_turn = f"{info['index']}"
                weights_too = any(r in WEIGHT_METHODS for r in edit.routes)
                if weights_too and by is not None and not by.admin:
                    raise UserError("only an admin may write into the model's weights (they change every user's "
                                    "answers): choose 'memory only'")
                if conflict == "replace":
                    for old_edit in assistant.conflicts(edit) if edit.kind == "fact" else []:
                        assistant.undo(old_edit.id, by)
                if weights_too:
                    panel.start_weight_edit(assistant, edit, by)
                    return (f"⏳ Writing into the weights ({', '.join(edit.routes)}): this takes a while; keep "
                            "chatting, the steps show below.", gr.update(), panel.drift_text(), None,
                            gr.update(visible=False), gr.update(interactive=False))
                edit = assistant.add_edit(edit, by=by)  # saved: acknowledged now, probed after
            except UserError as exc:
                return f"⚠️ {_esc(exc)}", gr.update(), gr.update(), gr.update(), gr.update(), gr.update()
            panel.probe_memory_edit(assistant, edit.id)
            msg = f"✅ Saved edit `{edit.id}`: {_esc(edit.summary)} via {', '.join(edit.routes)}. Ask again to see it."
            return msg, history_rows(assistant, by), panel.drift_text(), None, gr.update(visible=False), \
                gr.update(interactive=False)

        commit_btn.click(on_commit, [pending, correction, weights, flagged, chatbot, f_kind, f_subject, f_relation,
                                     f_old, f_new, f_when, f_note, conflict_choice],
                         [status, history_table, drift_md, pending, correction_box, commit_btn])

        # ---- side panel ------------------------------------------------------------------
        def on_history_select(evt: gr.SelectData):
            row = evt.row_value or []
            column = evt.index[1] if isinstance(evt.index, (list, tuple)) else None
            if len(row) < len(HISTORY_COLUMNS) or column != HISTORY_COLUMNS.index("undo") or row[5] != UNDO_CELL:
                return None, gr.update(visible=False), ""
            return row[6], gr.update(visible=True), f"Undo **{_esc(row[4])}**? Answers go back to what they were."

        history_table.select(on_history_select, None, [undo_target, undo_row, undo_md])

        def on_undo(edit_id, request: gr.Request):
            by = signed_in(request)
            try:
                if not edit_id:
                    raise UserError("choose an edit to undo: click ↩️ undo on its row")
                edit = assistant.undo(edit_id, by)
            except UserError as exc:
                return f"⚠️ {_esc(exc)}", gr.update(), None, gr.update(visible=False)
            return f"↩️ Reverted `{edit.id}`: {_esc(edit.summary)}", history_rows(assistant, by), None, \
                gr.update(visible=False)

        undo_yes.click(on_undo, [undo_target], [status, history_table, undo_target, undo_row])
        undo_no.click(lambda: (None, gr.update(visible=False)), None, [undo_target, undo_row])

        def refresh(shown, request: gr.Request):
            """What changed since the page last looked: the edit log (any browser's edits), this session's
            probes and its weight edit in progress."""
            by = signed_in(request)
            panel = panels.of(request, by)
            rows = history_rows(assistant, by)
            job = panel.job
            if job is None:
                job_text = ""
            elif not job.done:
                job_text = f"⏳ **Weight edit** {_esc(job.summary)}: {_esc(job.stage)}…"
            elif job.error:
                job_text = f"⚠️ Weight edit {_esc(job.summary)}: {_esc(job.error)}"
            else:
                job_text = f"✅ Saved edit `{job.edit.id}`: {_esc(job.edit.summary)} via {', '.join(job.edit.routes)}."
            return (gr.skip() if rows == shown else rows), rows, panel.probes.rows(), panel.drift_text(), job_text

        panel_outputs = [history_table, shown_history, probes_table, drift_md, job_md]
        # read on every page load and every few seconds: a page opened later, or another browser's edits, show up
        demo.load(refresh, [shown_history], panel_outputs)
        gr.Timer(PANEL_REFRESH_S).tick(refresh, [shown_history], panel_outputs, show_progress="hidden")

        def on_probes(text, request: gr.Request, progress=gr.Progress()):
            by = signed_in(request)
            panel = panels.of(request, by)
            prompts = [line.strip() for line in (text or "").splitlines() if line.strip()][:50]
            if not prompts:
                return gr.update(), "⚠️ Add at least one probe prompt."
            probes = panel.probes
            if prompts != probes.prompts:
                probes.prompts, probes.before, probes.after = prompts, [], []
            with seen_by(panel.viewer):
                probes.before, probes.after = probes.after, answer_probes(assistant, prompts, progress)
            panel.probed_edit = ""
            return probes.rows(), panel.drift_text()

        probe_btn.click(on_probes, [probe_text], [probes_table, drift_md])

        def on_multihop(question, method, request: gr.Request, progress=gr.Progress()):
            progress(0, desc="answering hop by hop")
            try:
                return chain_markdown(assistant.multihop(question, method, signed_in(request)))
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
