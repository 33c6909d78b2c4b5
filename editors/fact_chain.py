"""The fact chain: multi-hop answers by following stored facts from subject to object.

A 135M model cannot decompose questions the way MeLLo needs (see the README), so this reader does
the decomposition by matching instead of generating:
1. start at a stored fact whose subject the question names (no such fact: the question is
   outside every edit's scope and gets the plain model's answer, unchanged);
2. follow the chain: the next hop is a stored fact whose subject is the current object and whose
   relation the question names (relation cues in prompts/relations.json) or, while the relation
   the question asks about first is not yet reached, any stored fact about that object (questions
   often leave a hop unsaid: "the country of citizenship of the developer of X" via its CEO);
3. when no stored fact continues the chain but the relation the question names first
   ("What is the capital of ...") is still not reached, the model answers that one hop itself
   from the relation's cloze ("The capital of X is").
Cue words inside the starting subject's name are ignored ("Billy Elliot the Musical" names no
genre of music).

Before all that, the question is read against the graph of stored facts with open relations
(editors/fact_graph.py): when a path of stored facts covers every word of the question, that path
is the answer, whatever its relations are called. The cue walk above stays for questions the
stored facts only partly cover (MQuAKE's, where the model answers the hops no edit touched).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

from .base import Hit, MemoryStore
from .fact_graph import FactGraph, Lemmas
from .facts import FactMemory, names_subject
from .multihop import Complete, Hop, MultiHopAnswer
from .scope import STOP_WORDS, mentions, words

NOT_CUES = STOP_WORDS | {"is", "was", "by", "with", "who", "what", "which", "name", "type", "that", "current", "s"}


def load_cues(path: Path) -> dict[str, list[str]]:
    table = json.loads(path.read_text(encoding="utf-8"))
    return {k: [c.lower() for c in v] for k, v in table.items() if not k.startswith("_")}


def cue_position(text: str, cues: list[str]) -> int | None:
    """Where in `text` the earliest cue starts a word (cues match word prefixes), or None."""
    found = [m.start() for cue in cues for m in re.finditer(r"\b" + re.escape(cue), text.lower())]
    return min(found) if found else None


class FactChain(FactMemory):
    name = "fact_chain"
    max_hops = 5
    candidates = 20

    def __init__(self, store: MemoryStore, prompts_dir: Path, complete: Complete, plain_answer: Callable[[str], str],
                 lemmas: Lemmas | None = None, answer_kinds: Lemmas | None = None):
        super().__init__(store, prompts_dir)
        self.cues = load_cues(Path(prompts_dir) / "relations.json")
        self.complete = complete
        self.plain_answer = plain_answer
        self.graph = (FactGraph(store, self.collection, lemmas, names_subject, self._unit,
                                answer_kinds or (lambda text: [])) if lemmas else None)

    def graph_answer(self, question: str, min_hops: int = 1) -> MultiHopAnswer | None:
        """The answer along a path of stored facts that covers the whole question, or None."""
        if self.graph is None:
            return None
        path = self.graph.best_path(" ".join(question.split()))
        if path is None or not path.complete or len(path.facts) < min_hops:
            return None
        hops = [Hop(h.metadata["relation"].replace("{}", h.metadata["subject"]), h.metadata["target"],
                    h.metadata["fact"], h.metadata["edit_id"]) for h in path.facts]
        return MultiHopAnswer(question, path.answer, hops, self.name, used_memory=True)

    def context_for(self, query: str):
        return None  # a reader of stored facts for multi-hop questions; plain chat is IKE's job

    def cues_for(self, relation: str) -> list[str]:
        if relation in self.cues:
            return self.cues[relation]
        return [w for w in words(relation) if w not in NOT_CUES and len(w) > 2]

    def names_relation(self, question: str, relation: str) -> bool:
        return cue_position(question, self.cues_for(relation)) is not None

    def _best(self, question: str, hits: list[Hit]) -> Hit:
        # the question naming the relation counts most, then the longer subject, then similarity
        return max(hits, key=lambda h: (self.names_relation(question, h.metadata["relation"]),
                                        len(h.metadata["subject"]), h.similarity))

    def asked_first(self, question: str) -> tuple[int, str] | None:
        """(where, relation): the relation the question names first. In English that is the last
        hop ("What is the capital of the country where ...")."""
        positions = [(cue_position(question, cues), rel) for rel, cues in self.cues.items()]
        return min(((p, rel) for p, rel in positions if p is not None), default=None)

    def reached(self, question: str, first: tuple[int, str] | None, relations: set[str]) -> bool:
        """True when a relation the chain used is the one the question names first (or earlier)."""
        if first is None:
            return True
        positions = (cue_position(question, self.cues_for(r)) for r in relations)
        return any(p is not None and p <= first[0] for p in positions)

    def answer_multihop(self, question: str) -> MultiHopAnswer:
        question = " ".join(question.split())
        read = self.graph_answer(question)
        if read is not None:
            return read
        found = self.store.query(self.collection, question, self.candidates)
        # entries written before facts kept their object (an older store) cannot be chained
        starts = [h for h in found if "target" in h.metadata and mentions(question, h.metadata["subject"])]
        if not starts:
            return MultiHopAnswer(question, self.plain_answer(question), [], self.name, used_memory=False)
        fact = self._best(question, starts)
        # relation cues inside the subject's name ("Billy Elliot the Musical") are not cues: blank it
        cue_text = re.sub(re.escape(fact.metadata["subject"]), lambda m: " " * len(m.group()), question,
                          flags=re.IGNORECASE)
        first = self.asked_first(cue_text)
        hops, used, relations = [], set(), set()
        while fact is not None and len(hops) < self.max_hops:
            m = fact.metadata
            hops.append(Hop(m["relation"].replace("{}", m["subject"]), m["target"], m["fact"], m["edit_id"]))
            used.add(fact.id)
            relations.add(m["relation"])
            following = [h for h in self.about(m["target"], question) if h.id not in used]
            named = [h for h in following if self.names_relation(cue_text, h.metadata["relation"])]
            if named:
                fact = self._best(cue_text, named)
            elif following and not self.reached(cue_text, first, relations):
                fact = self._best(cue_text, following)  # a hop the question leaves unsaid, on the way
            else:
                fact = None
        # a quantity ("84,000 people") is no entity: nothing is a relation *of* it, so the chain ends there
        is_quantity = re.match(r"^\W*\d", hops[-1].answer) is not None
        if not self.reached(cue_text, first, relations) and len(hops) < self.max_hops and not is_quantity:
            cloze = first[1].replace("{}", hops[-1].answer)
            said = self.complete(cloze, 12, ("\n", ".", ","))
            hops.append(Hop(cloze, said.strip(), source="model"))
        return MultiHopAnswer(question, hops[-1].answer, hops, self.name, used_memory=True)
