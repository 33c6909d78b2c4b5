"""What the three memory editors (IKE, MemPrompt, Language Patch) share: entries in a vector
store linked to edit ids, retrieval for a query, and a scope gate. Each subclass says what to
store for an edit and how retrieved entries read in front of the query."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .base import SHARED, Context, EditRequest, Hit, MemoryStore


class RetrievalEditor:
    name = "retrieval"
    collection = "memory"
    template_file = ""   # in prompts/: how one retrieved entry reads in front of the query
    changes_weights = False
    top_k = 3             # at most this many entries go in front of a query
    threshold = 0.8       # the scope gate's cut-off (each editor's own measured default)
    candidates = 10       # nearest entries the scope gate looks at

    def __init__(self, store: MemoryStore, prompts_dir: Path, top_k: int | None = None,
                 threshold: float | None = None):
        self.store = store
        self.template = (Path(prompts_dir) / self.template_file).read_text(encoding="utf-8") if self.template_file else ""
        if top_k is not None:
            self.top_k = top_k
        if threshold is not None:
            self.threshold = threshold

    # -- what a subclass defines ---------------------------------------------------------------
    def entry(self, edit: EditRequest) -> tuple[str, dict]:
        """(text to embed, metadata to keep) for one edit."""
        raise NotImplementedError

    def accepts(self, query: str, hit: Hit) -> bool:
        raise NotImplementedError

    def render(self, query: str, hits: list[Hit]) -> Context:
        raise NotImplementedError

    # -- the shared interface ------------------------------------------------------------------
    def stored(self, edit: EditRequest) -> tuple[str, dict]:
        """What the store keeps for an edit: the subclass's entry, its edit id and its owner (queries
        are filtered by owner in the store, so one user's memory never reaches another's chat)."""
        text, metadata = self.entry(edit)
        return text, {**metadata, "edit_id": edit.id, "owner": edit.owner or SHARED}

    def apply(self, edits: Sequence[EditRequest]) -> None:
        if not edits:
            return
        texts, metadatas = zip(*(self.stored(e) for e in edits))
        self.store.add(self.collection, [e.id for e in edits], list(texts), list(metadatas))

    def revert(self, edits: Sequence[EditRequest]) -> None:
        for edit in edits:
            self.store.delete_edit(self.collection, edit.id)

    def hits(self, query: str) -> list[Hit]:
        found = self.store.query(self.collection, query, max(self.candidates, self.top_k))
        return [h for h in found if self.accepts(query, h)][:self.top_k]

    def context_for(self, query: str) -> Context | None:
        found = self.hits(query)
        return self.render(query, found) if found else None

    def describe(self, edit: EditRequest) -> str:
        return f"{self.name}: stored {self.entry(edit)[0]!r}"
