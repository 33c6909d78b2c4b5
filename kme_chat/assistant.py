"""The assistant: model, chat, edit log, memory store and editors, wired once.

Adding an edit: validate -> apply it with each editor on its route (a refused weight edit undoes
the others) -> write it to the log (committed: from here on it is "saved"). On start, `reconcile`
brings every editor in line with the log: it drops memory entries of edits that were applied but
never committed (a crash in between), restores any the store lacks, and re-adds active weight
factors.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable, Iterator, Sequence

from .chat import ChatEngine, MemoryContext
from .config import WEIGHT_EDITORS, Settings
from .edit_log import Edit, EditLog
from .accounts import User
from .errors import Forbidden, NotFound, UserError
from .memory import seen_by
from .methods import Resources, build_editor
from .model import LocalLLM, return_freed_memory, whole_answer
from .validation import clean_text, validate_edit

log = logging.getLogger(__name__)

DEFAULT_ROUTES = {"fact": ["ike"], "feedback": ["memprompt"], "preference": ["preferences"], "rule": ["language_patch"]}
MULTIHOP_READERS = ("fact_chain", "mello")  # read the stored facts IKE writes; the first is the default
MEMORY_EDITORS = ("preferences", "language_patch", "memprompt", "ike")  # the order their context is shown


def answer_with(llm: LocalLLM, editor, max_new_tokens: int = 32) -> Callable[[str], str]:
    """A question-answering function through the chat path, with `editor`'s memory in context."""
    def context(question: str):
        found = editor.context_for(question)
        return MemoryContext.of(found, editor.name) if found else None

    engine = ChatEngine(llm, context)
    return lambda question: engine.answer(question, max_new_tokens=max_new_tokens)


def fact_prompt(subject: str, relation: str) -> str:
    """'The capital of {} is' + 'Italy' -> 'The capital of Italy is'; plain text follows the subject."""
    relation = relation.strip()
    return relation.replace("{}", subject, 1) if "{}" in relation else f"{subject} {relation}".strip()


def _outdated(wanted: dict, stored: dict) -> bool:
    """A stored entry written by an older version (a key missing) or for another owner (shared since)."""
    return bool(set(wanted) - set(stored)) or wanted.get("owner") != stored.get("owner")


class Assistant:
    def __init__(self, settings: Settings, llm: LocalLLM):
        self.settings = settings
        self.llm = llm
        settings.data_path.mkdir(parents=True, exist_ok=True)
        self.log = EditLog(settings.data_path / "edits.sqlite3")
        self.resources = Resources(settings.data_path, settings.memory_url, settings.weight_gate)
        self.editors: dict = {}
        self.engine = ChatEngine(llm, self.context_for, self.chain_for)
        self._edit_lock = threading.Lock()  # one edit at a time; chats go on meanwhile

    @classmethod
    def open(cls, settings: Settings, llm: LocalLLM | None = None) -> "Assistant":
        assistant = cls(settings, llm or LocalLLM.load(settings))
        assistant.reconcile()
        return assistant

    def editor(self, name: str):
        if name not in self.editors:
            self.editors[name] = build_editor(name, self.llm, self.resources)
        return self.editors[name]

    # ---- edits -------------------------------------------------------------------------------
    def add_edit(self, edit: Edit, on_stage: Callable[[str], None] | None = None, by: User | None = None) -> Edit:
        """Applies and saves one edit. `on_stage` is told each step as it starts (a weight edit takes
        seconds: the page shows where it is). `by`: the signed-in user, who owns it; weight edits
        change the model for everyone, so only an admin may make them."""
        edit = validate_edit(edit)
        edit.routes = list(edit.routes or DEFAULT_ROUTES[edit.kind])
        if by is not None:
            edit.user = by.name
            if not by.admin and (edit.shared or any(r in WEIGHT_EDITORS for r in edit.routes)):
                raise Forbidden("only an admin may write into the model's weights or share an edit: they change "
                                "every user's answers. Store it in your memory instead.")
        editors = [self.editor(name) for name in edit.routes]  # unknown route: refused before anything
        on_stage = on_stage or (lambda stage: None)
        with self._edit_lock:
            done = []
            try:  # apply first: a refused weight edit must not leave a saved edit behind
                for editor in editors:
                    on_stage(f"{editor.name}: applying")
                    if getattr(editor, "changes_weights", False):
                        editor.report = lambda stage, name=editor.name: on_stage(f"{name}: {stage}")
                    try:
                        editor.apply([edit.request()])
                    finally:
                        if getattr(editor, "changes_weights", False):
                            editor.report = lambda stage: None
                            editor.release()  # its working copy of the layers: the server stays small
                            return_freed_memory()
                    done.append(editor)
                on_stage("saving to the edit log")
                self.log.add(edit)  # committed: the edit is saved from here on
            except BaseException as exc:
                for editor in reversed(done):
                    editor.revert([edit.request()])
                if isinstance(exc, ValueError) and not isinstance(exc, UserError):
                    raise UserError(str(exc)) from None
                raise
        return edit

    def undo(self, edit_id: str, by: User | None = None) -> Edit:
        with self._edit_lock:
            edit = self.visible_edit(edit_id, by)
            if by is not None and not by.admin and (edit.user != by.name or edit.shared or
                                                    any(r in WEIGHT_EDITORS for r in edit.routes)):
                raise Forbidden("only an admin may undo a shared edit or a weight edit")
            if edit.status != "active":
                raise UserError(f"edit {edit_id} is already {edit.status}")
            for name in edit.routes:
                self.editor(name).revert([edit.request()])
            return self.log.set_status(edit_id, "reverted")

    def visible_edit(self, edit_id: str, by: User | None = None) -> Edit:
        """An edit `by` may see: their own, shared ones and weight edits (admins: every one)."""
        try:
            edit = self.log.get(edit_id)
        except UserError:
            edit = None
        if edit is None or not self._sees(edit, by):
            raise NotFound(f"no edit with id {edit_id!r}")
        return edit

    @staticmethod
    def _sees(edit: Edit, by: User | None) -> bool:
        return by is None or by.admin or edit.user == by.name or edit.shared or \
            any(r in WEIGHT_EDITORS for r in edit.routes)

    def edits(self, by: User | None = None) -> list[Edit]:
        """The history `by` sees: their edits, and the shared and weight edits that change their answers."""
        return [e for e in self.log.all() if self._sees(e, by)]

    def share(self, edit_id: str, shared: bool, by: User | None = None) -> Edit:
        """An admin puts a memory edit into every user's memory (or takes it back)."""
        if by is not None and not by.admin:
            raise Forbidden("only an admin may share an edit")
        edit = self.visible_edit(edit_id, by)
        with self._edit_lock:
            edit = self.log.set_shared(edit.id, shared)
            for name in edit.routes:
                if name in MEMORY_EDITORS:
                    self.editor(name).apply([edit.request()])  # rewritten with its new owner
        return edit

    def conflicts(self, edit: Edit) -> list[Edit]:
        """The same owner's active edits about the same subject and relation."""
        key = (edit.subject.lower(), (edit.relation or edit.prompt).lower())
        return [e for e in self.log.active() if e.kind == "fact" and e.user == edit.user
                and (e.subject.lower(), (e.relation or e.prompt).lower()) == key]

    def reconcile(self) -> dict:
        """Brings every editor in line with the log (the source of truth): memory entries are
        restored or removed, and active weight edits are added back from their saved factors."""
        active = self.log.active()
        counts = {}
        for edit in active:
            for name in edit.routes:
                if name in WEIGHT_EDITORS and not self.editor(name).restore(edit.request()):
                    log.warning("edit %s: weight factors missing or already applied", edit.id)
        for name in MEMORY_EDITORS:
            wanted = {e.id: e for e in active if name in e.routes}
            editor = self.editor(name)
            stored = self.resources.memory.entries(editor.collection)
            missing = [wanted[i].request() for i in wanted.keys() - stored.keys()]
            # entries written by an older version lack metadata the editor reads now: write them again
            outdated = [wanted[i].request() for i in wanted.keys() & stored.keys()
                        if _outdated(editor.stored(wanted[i].request())[1], stored[i])]
            stale = [i for i in stored.keys() - wanted.keys()]
            if missing or outdated:
                editor.apply(missing + outdated)
            for edit_id in stale:
                self.resources.memory.delete_edit(editor.collection, edit_id)
            counts[name] = {"restored": len(missing), "rewritten": len(outdated), "removed": len(stale)}
        return counts

    def rebuild_memory(self) -> dict:
        for name in MEMORY_EDITORS:
            self.resources.memory.delete_all(self.editor(name).collection)
        return self.reconcile()

    # ---- chat --------------------------------------------------------------------------------
    def context_for(self, question: str) -> MemoryContext | None:
        found = [MemoryContext.of(c, name) for name in MEMORY_EDITORS if (c := self.editor(name).context_for(question))]
        if not found:
            return None
        limits = [f.max_sentences for f in found if f.max_sentences]
        return MemoryContext("\n".join(f.text for f in found if f.text), [i for f in found for i in f.edit_ids],
                             "+".join(f.editor for f in found), [t for f in found for t in f.turns],
                             any(f.contrast for f in found), [c for f in found for c in f.claims],
                             [i for f in found for i in f.standing_ids], min(limits) if limits else None)

    def chain_for(self, question: str) -> str | None:
        """A chat question that composes two or more stored facts: the answer, then the facts it
        went through; None for every other question (the chat answers those as before)."""
        read = self.editor("fact_chain").graph_answer(question, min_hops=2)
        if read is None:
            return None
        return f"{read.answer} — " + " ".join(hop.fact for hop in read.hops)

    def multihop(self, question: str, method: str = MULTIHOP_READERS[0], by: User | None = None):
        """A multi-hop question answered over the stored facts `by` can see, with the chain that led there."""
        if method not in MULTIHOP_READERS:
            raise UserError(f"unknown multi-hop method {method!r}; choose one of {', '.join(MULTIHOP_READERS)}")
        question = clean_text(question, "question", self.settings.max_message_chars)
        with seen_by(by.name if by else None):
            return self.editor(method).answer_multihop(question)

    def stream(self, question: str, history: Sequence[dict] = (), by: User | None = None,
               max_new_tokens: int | None = None) -> Iterator[str]:
        """The answer as it grows, with `by`'s memory (None: the one person's whole memory). Memory
        is read before the first piece, so the user's view is set around that step alone."""
        stream = self.engine.stream(question, history, max_new_tokens)
        with seen_by(by.name if by else None):
            first = next(stream, None)
        if first is not None:
            yield first
            yield from stream

    def answer(self, question: str, history: Sequence[dict] = (), by: User | None = None,
               max_new_tokens: int | None = None) -> str:
        return whole_answer(self.stream(question, history, by, max_new_tokens))
