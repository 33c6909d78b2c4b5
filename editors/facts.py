"""Stored facts: the collection IKE, MeLLo and the fact chain all read.

One entry per edit: the new fact as a sentence (what is embedded), with its subject, relation
template and new object kept as metadata, so a reader can both find a fact by meaning and follow
it from subject to object.
"""
from __future__ import annotations

import re

import numpy as np

from .base import Claim, EditRequest, Hit
from .retrieval import RetrievalEditor
from .scope import in_scope, mentions, without_names, words_as_written


def subject_key(subject: str) -> str:
    return " ".join(subject.lower().split())


def names_subject(query: str, metadata: dict) -> bool:
    """The query names the fact's subject, or one of its aliases; initials only as capitals ("WHO",
    not "who"). A common noun after "a"/"an" is any such thing, not the one stored ("What is a
    dog?" does not name "my dog")."""
    aliases = [a for a in (metadata.get("aliases") or "").split("|") if a]
    initials = [a for a in aliases if a.isupper()]
    subject = metadata["subject"]
    if subject.islower() and re.search(rf"\b(?:a|an)\s+{re.escape(subject)}\b", query, re.IGNORECASE):
        return False
    return (any(mentions(query, name) for name in [subject, *set(aliases) - set(initials)])
            or any(a in words_as_written(query) for a in initials))


def same_numbers(a: str, b: str) -> bool:
    """Numbers name things as names do: "What is 6 times 7?" is not "What is 7 times 8?" however
    alike the two read."""
    return sorted(re.findall(r"\d+(?:[.,]\d+)*", a)) == sorted(re.findall(r"\d+(?:[.,]\d+)*", b))


def remembered_exchange(metadata: dict) -> list[dict]:
    """A stored fact as an earlier exchange: the question it answers, then the fact as the answer."""
    question = metadata.get("question") or f"What do you know about {metadata['subject']}?"
    return [{"role": "user", "content": question}, {"role": "assistant", "content": metadata["fact"]}]


class FactMemory(RetrievalEditor):
    """Scope: a query is about a stored fact from the chat when it names the fact's subject (or an
    alias) and asks what the fact's question asked: the two questions, the subject's words replaced
    by a placeholder, have cosine >= `threshold` ("What is Snigir's first language?" reaches "What
    is Yuliya Snigir's native language?"; "When was Yuliya Snigir born?" does not), and with the
    names kept at least `related_floor`. Without the
    subject's words, a query must be nearly the same question (cosine >= `alone_threshold`). So
    "What is a dog?" does not get "My dog's name is Biscuit", and "What do I call my dog?" does."""
    collection = "facts"
    # chosen on the conversation dev set's sweep (bench/results/scope.json, scope_curve.png), with
    # MQuAKE's questions about the same subjects as the other side: see README, "Scope by meaning"
    threshold = 0.4
    related_floor = 0.55  # ...and, names kept, at least this close: "the longest river in the world" is not
                          # "the tallest mountain in the world" although, "world" masked, they read alike
    alone_threshold = 0.85
    lead_threshold = 0.5  # a claim opens the answer when its question is this close (names masked)...
    lead_floor = 0.6      # ...and this close with them, and the query names the subject

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._vectors: dict[str, np.ndarray] = {}  # questions and words, embedded once

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

    def asks_same(self, query: str, hit: Hit) -> float:
        """Cosine between the query and the fact's question, both with the subject's names masked."""
        meta = hit.metadata
        names = [meta["subject"], *[a for a in (meta.get("aliases") or "").split("|") if a]]
        return float(self._unit(without_names(query, names)) @ self._unit(without_names(meta.get("question") or "", names)))

    def _unit(self, text: str) -> np.ndarray:
        """A unit vector for `text`, embedded once (stored questions, queries, a multi-hop question's words)."""
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
        if not hit.metadata.get("question"):
            return in_scope(names_subject(query, hit.metadata), hit.similarity, 0.0, self.alone_threshold)
        related = self.relatedness(query, hit)
        return (related >= self.alone_threshold and same_numbers(query, hit.metadata["question"])
                or (names_subject(query, hit.metadata) and related >= self.related_floor
                    and self.asks_same(query, hit) >= self.threshold))

    def claims(self, query: str, hits: list[Hit]) -> list[Claim]:
        """The chat facts among `hits` as claims for the decoder; the one whose question the query
        asks leads the answer, when the query names its subject and asks it closely enough."""
        chat_facts = [h for h in hits if h.metadata.get("question") and h.metadata.get("relation")
                      and h.metadata.get("target")]
        if not chat_facts:
            return []
        asks = [self.asks_same(query, h) for h in chat_facts]
        best = int(np.argmax(asks))
        leads = (asks[best] >= self.lead_threshold and self.relatedness(query, chat_facts[best]) >= self.lead_floor
                 and names_subject(query, chat_facts[best].metadata))
        return [Claim(h.metadata["relation"].replace("{}", h.metadata["subject"], 1), h.metadata["target"],
                      lead=leads and i == best, subject=h.metadata["subject"])
                for i, h in enumerate(chat_facts)]

    def about(self, subject: str, query: str, k: int = 10) -> list[Hit]:
        """Stored facts whose subject is `subject` (case and spacing aside), nearest to `query` first."""
        return self.store.query(self.collection, query, k, where={"subject_key": subject_key(subject)})
