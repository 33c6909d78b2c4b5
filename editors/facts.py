"""Stored facts: the collection IKE, MeLLo and the fact chain all read.

One entry per edit: the new fact as a sentence (what is embedded), with its subject, relation
template and new object kept as metadata, so a reader can both find a fact by meaning and follow
it from subject to object.
"""
from __future__ import annotations

import numpy as np

from .base import EditRequest, Hit
from .retrieval import RetrievalEditor
from .scope import mentions


def subject_key(subject: str) -> str:
    return " ".join(subject.lower().split())


def names_subject(query: str, metadata: dict) -> bool:
    """The query names the fact's subject, or one of its aliases."""
    aliases = [a for a in (metadata.get("aliases") or "").split("|") if a]
    return any(mentions(query, name) for name in [metadata["subject"], *aliases])


def in_scope(mentioned: bool, relatedness: float, threshold: float, alone_threshold: float) -> bool:
    """The fact memory's gate: the subject named and the same question by meaning, or nearly the same question."""
    return relatedness >= alone_threshold or (mentioned and relatedness >= threshold)


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

    def entry(self, edit: EditRequest) -> tuple[str, dict]:
        return edit.fact, {"subject": edit.subject, "subject_key": subject_key(edit.subject), "fact": edit.fact,
                           "relation": edit.relation_template, "target": edit.target_new,
                           "question": edit.question, "aliases": "|".join(edit.aliases)}

    def relatedness(self, query: str, hit: Hit) -> float:
        """max(cosine to the stored fact, cosine to the question the fact answers)."""
        question = hit.metadata.get("question") or ""
        if not question:
            return hit.similarity
        q, v = (np.asarray(x, dtype=np.float32) for x in self.store.embed([query, question]))
        return max(hit.similarity, float(q @ v / (np.linalg.norm(q) * np.linalg.norm(v))))

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
