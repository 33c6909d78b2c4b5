"""Stored facts: the collection IKE, MeLLo and the fact chain all read.

One entry per edit: the new fact as a sentence (what is embedded), with its subject, relation
template and new object kept as metadata, so a reader can both find a fact by meaning and follow
it from subject to object.
"""
from __future__ import annotations

from .base import EditRequest, Hit
from .retrieval import RetrievalEditor
from .scope import in_scope


def subject_key(subject: str) -> str:
    return " ".join(subject.lower().split())


class FactMemory(RetrievalEditor):
    collection = "facts"

    def entry(self, edit: EditRequest) -> tuple[str, dict]:
        return edit.fact, {"subject": edit.subject, "subject_key": subject_key(edit.subject), "fact": edit.fact,
                           "relation": edit.relation_template, "target": edit.target_new}

    def accepts(self, query: str, hit: Hit) -> bool:
        return in_scope(query, hit.metadata["subject"], hit.similarity, self.threshold)

    def about(self, subject: str, query: str, k: int = 10) -> list[Hit]:
        """Stored facts whose subject is `subject` (case and spacing aside), nearest to `query` first."""
        return self.store.query(self.collection, query, k, where={"subject_key": subject_key(subject)})
