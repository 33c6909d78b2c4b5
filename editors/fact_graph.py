"""The stored facts as a graph, and the path through it that a question describes.

Each stored fact is an edge: subject -relation-> object. An object leads on to the facts about it
when it contains their subject's words (or is one of its aliases), case and articles aside. A
multi-hop question names where it starts and, in its other words, the relations along the way:

    "Where was the CEO of Acme Robotics born?"
        Acme Robotics -"The CEO of {} is"-> Dana Whitfield -"{} was born in"-> Lisbon

Relations are open: a hop is described by the words of its relation template and of the question
the user asked when storing it ("What university did Omar Haddad attend?"). A question word is
covered by a hop when they share a lemma or a stem ("founder" ~ "founded"), or, failing that, by
meaning (cosine of the two words' embeddings). The path chosen covers the question's words best,
with a cost per hop. It is *complete* when its last hop covers some word clearly better than the
earlier hops (GAIN), the question's words are covered COMPLETE on average and none below FLOOR
(except the noun of "What time ..."). So a question that only touches a stored subject ("How many
people work at Acme Robotics?") is not read as a chain, and one whose last relation no stored fact
gives ("the capital of the country ...") is left to the fact chain's cue walk.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .base import Hit, MemoryStore
from .scope import mentions, words

# Words of a text as lower-case lemmas (relation words; or the nouns of "What time", "Which month");
# the caller supplies the parser.
Lemmas = Callable[[str], list[str]]

# words that ask for an answer rather than name a relation ("What is the name of ...")
GENERIC = {"name", "thing", "one", "person", "people", "kind", "type", "call", "know", "tell", "exactly", "s"}
HOP_COST = 0.25  # a hop must cover something: a path that only grows loses to a shorter one
COVERED = 0.5    # a question word is covered by a hop at this similarity...
COMPLETE = 0.6   # ...and a path reads the whole question at this mean similarity (chains dev set, README)
FLOOR = 0.35     # ...with no word left below this: a word nothing covers is a hop still missing
GAIN = 0.3       # the last hop must raise some word's similarity this much: it answers what is asked


@dataclass
class Path:
    facts: list[Hit]
    coverage: dict[str, float] = field(default_factory=dict)  # question word -> best match along the path
    last_adds: bool = True  # the last hop covers a word the earlier hops covered less well
    kinds: frozenset = frozenset()  # "time" in "What time ...": may stay uncovered (no FLOOR)

    @property
    def score(self) -> float:
        return sum(self.coverage.values()) - HOP_COST * len(self.facts)

    @property
    def complete(self) -> bool:
        values = list(self.coverage.values())
        return (self.last_adds and bool(values) and sum(values) / len(values) >= COMPLETE
                and all(v >= FLOOR for w, v in self.coverage.items() if w not in self.kinds))

    @property
    def answer(self) -> str:
        return self.facts[-1].metadata["target"]


def _stem_match(a: str, b: str) -> bool:
    """Same lemma, or one a prefix of the other of at least 4 letters ("found" / "founder")."""
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    return len(short) >= 4 and long.startswith(short)


class FactGraph:
    max_hops = 4
    candidates = 20  # stored facts looked at when starting, and when following an object

    def __init__(self, store: MemoryStore, collection: str, lemmas: Lemmas, names_subject: Callable[[str, dict], bool],
                 unit: Callable[[str], np.ndarray], answer_kinds: Lemmas = lambda text: []):
        self.store = store
        self.collection = collection
        self.lemmas = lemmas
        self.answer_kinds = answer_kinds
        self.names_subject = names_subject
        self.unit = unit  # a text's embedding as a unit vector (FactMemory._unit: cached)

    # -- the graph ---------------------------------------------------------------------------
    def starts(self, question: str) -> list[Hit]:
        found = self.store.query(self.collection, question, self.candidates)
        return [h for h in found if h.metadata.get("target") and self.names_subject(question, h.metadata)]

    def following(self, fact: Hit) -> list[Hit]:
        """Facts about this fact's object (see `links`)."""
        obj = fact.metadata["target"]
        found = self.store.query(self.collection, obj, self.candidates)
        return [h for h in found if h.id != fact.id and h.metadata.get("target") and self.links(obj, h.metadata)]

    @staticmethod
    def links(obj: str, metadata: dict) -> bool:
        """The object is the fact's subject: every word of the subject in the object ("Dr. Alan Park"
        -> "Alan Park", "the Riverside Hawks" -> "Riverside Hawks"), or exactly one of its aliases.
        Not the reverse: "rugby" is not "rugby union"."""
        aliases = [a for a in (metadata.get("aliases") or "").split("|") if a]
        return mentions(obj, metadata["subject"]) or words(obj) in [words(a) for a in aliases]

    # -- what a question asks ----------------------------------------------------------------
    def question_words(self, question: str, start: Hit) -> list[str]:
        """The question's content lemmas, less the starting subject's names and generic words."""
        meta = start.metadata
        names = {w for name in [meta["subject"], *(meta.get("aliases") or "").split("|")] for w in words(name)}
        names |= set(self.lemmas(meta["subject"]))  # "Warriors" is "warrior" in the question's lemmas
        return [w for w in dict.fromkeys(self.lemmas(question)) if w not in names and w not in GENERIC]

    def hop_words(self, fact: Hit) -> list[str]:
        """What a hop says about its relation: the template's words and the stored question's, less
        the subject's names (the object's words stay: "The party {} belongs to is" -> "Green Party")."""
        meta = fact.metadata
        names = {w for name in [meta["subject"], *(meta.get("aliases") or "").split("|")] for w in words(name)}
        template = meta.get("relation", "").replace("{}", " ")
        said = self.lemmas(template + " " + (meta.get("question") or "")) + words(template)[-1:]  # + a final "in"
        return [w for w in dict.fromkeys(said) if w not in names and w not in GENERIC]

    def similarity(self, word: str, hop: list[str]) -> float:
        if not hop:
            return 0.0
        if any(_stem_match(word, w) for w in hop):
            return 1.0
        return max(float(self.unit(word) @ self.unit(w)) for w in hop)

    # -- the path ----------------------------------------------------------------------------
    def best_path(self, question: str) -> Path | None:
        """The path from a subject the question names that covers its words best, or None."""
        best: Path | None = None
        for start in self.starts(question):
            wanted = self.question_words(question, start)
            if not wanted:
                continue
            kinds = frozenset(self.answer_kinds(question))
            for path in self._paths([start], wanted, {w: 0.0 for w in wanted}):
                path.kinds = kinds
                if best is None or path.score > best.score + 1e-9:
                    best = path
        return best

    def _paths(self, facts: list[Hit], wanted: Sequence[str], coverage: dict[str, float]):
        hop = self.hop_words(facts[-1])
        own = {w: self.similarity(w, hop) for w in wanted}
        adds = any(own[w] >= COVERED and own[w] - coverage[w] >= GAIN for w in wanted)
        coverage = {w: max(coverage[w], own[w]) for w in wanted}
        yield Path(list(facts), coverage, adds)
        if len(facts) < self.max_hops:
            seen = {f.id for f in facts}
            for nxt in self.following(facts[-1]):
                if nxt.id not in seen:
                    yield from self._paths(facts + [nxt], wanted, coverage)
