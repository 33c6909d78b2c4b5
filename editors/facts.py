"""Stored facts: the collection IKE, MeLLo and the fact chain all read.

One entry per edit: the new fact as a sentence (what is embedded), with its subject, relation
template and new object kept as metadata, so a reader can both find a fact by meaning and follow
it from subject to object.
"""
from __future__ import annotations

import numpy as np

from .base import EditRequest, Hit
from .retrieval import RetrievalEditor
from .scope import in_scope, mentions, words_as_written


def subject_key(subject: str) -> str:
    return " ".join(subject.lower().split())


def names_subject(query: str, metadata: dict) -> bool:
    """The query names the fact's subject, or one of its aliases; initials only as capitals ("WHO",
    not "who")."""
    aliases = [a for a in (metadata.get("aliases") or "").split("|") if a]
    initials = [a for a in aliases if a.isupper()]
    return (any(mentions(query, name) for name in [metadata["subject"], *set(aliases) - set(initials)])
            or any(a in words_as_written(query) for a in initials))


def remembered_exchange(metadata: dict) -> list[dict]:
    """A stored fact as an earlier exchange: the question it answers, then the fact as the answer."""
    question = metadata.get("question") or f"What do you know about {metadata['subject']}?"
    return [{"role": "user", "content": question}, {"role": "assistant", "content": metadata["fact"]}]


class FactMemory(RetrievalEditor):
    """Scope: a query is about a stored fact when it names the fact's subject (or an alias) and asks
    the same thing by meaning (cosine to the fact or to the question it came from >= `threshold`),
    or, without the subject's words, when it is nearly the same question (>= `alone_threshold`). So
    "What is a dog?" does not get "My dog's name is Biscuit", and "What do I call my dog?" does."""
    collection = "facts"
    # chosen on the conversation dev set's sweep (bench/results/scope.json, scope_curve.png): paraphrase
    # reach is flat from 0.5 to 0.6; the top of that plateau keeps more unrelated questions away
    threshold = 0.6
    alone_threshold = 0.85

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._vectors: dict[str, np.ndarray] = {}  # stored questions, embedded once

    def entry(self, edit: EditRequest) -> tuple[str, dict]:
        return edit.fact, {"subject": edit.subject, "subject_key": subject_key(edit.subject), "fact": edit.fact,
                           "relation": edit.relation_template, "target": edit.target_new,
                           "question": edit.question, "aliases": "|".join(edit.aliases)}

    def relatedness(self, query: str, hit: Hit) -> float:
        """max(cosine to the stored fact, cosine to the question the fact answers)."""
        question = hit.metadata.get("question") or ""
        if not question:
            return hit.similarity
        return max(hit.similarity, float(self._unit(query) @ self._unit(question)))

    def _unit(self, text: str) -> np.ndarray:
        """A unit vector for `text`; stored questions are embedded once (the query is cached by the store)."""
        if text not in self._vectors:
            v = np.asarray(self.store.embed([text])[0], dtype=np.float32)
            if len(self._vectors) > 10_000:
                self._vectors.clear()
            self._vectors[text] = v / np.linalg.norm(v)
        return self._vectors[text]

    def accepts(self, query: str, hit: Hit) -> bool:
        # A fact from the chat keeps its question, so the query must also ask the same thing. A fact
        # added without one (CLI, benchmark records) is in scope wherever its subject is named: its
        # sentence alone is too weak a signal of the relation (CounterFact's paraphrases: 1.0 -> 0.915).
        threshold = self.threshold if hit.metadata.get("question") else 0.0
        return in_scope(names_subject(query, hit.metadata), self.relatedness(query, hit), threshold,
                        self.alone_threshold)

    def about(self, subject: str, query: str, k: int = 10) -> list[Hit]:
        """Stored facts whose subject is `subject` (case and spacing aside), nearest to `query` first."""
        return self.store.query(self.collection, query, k, where={"subject_key": subject_key(subject)})
