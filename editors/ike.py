"""IKE (Zheng et al. 2023): in-context knowledge editing.

For a query in scope of a stored fact, the prompt gets k demonstrations chosen by k-NN from a
pool of three kinds — copy (a fact, then its own prompt), update (a paraphrase gets the new
object), retain (an unrelated neighbour keeps its answer) — then the new fact, then the query.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from .base import Context, Hit, MemoryStore
from .facts import FactMemory, remembered_exchange


def load_demos(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class IKE(FactMemory):
    name = "ike"

    def __init__(self, store: MemoryStore, prompts_dir: Path, demo_mix: dict[str, int] | None = None,
                 top_k: int | None = None, threshold: float | None = None):
        super().__init__(store, prompts_dir, top_k, threshold)
        # How many demonstrations of each kind, each chosen by k-NN within its kind. A second copy
        # demonstration lifted efficacy 0.940 -> 0.960 on 200 CounterFact edits (README).
        self.demo_mix = demo_mix if demo_mix is not None else {"retain": 1, "update": 4, "copy": 2}
        prompts_dir = Path(prompts_dir)
        self.demo_template = (prompts_dir / "ike_demo.txt").read_text(encoding="utf-8")
        self.query_template = (prompts_dir / "ike_query.txt").read_text(encoding="utf-8")
        # The pool is small and fixed: its vectors are kept in memory, so choosing demonstrations
        # costs one matrix product instead of a vector-store query per kind.
        self.pool = load_demos(prompts_dir / "ike_demos.jsonl")
        self.pool_vectors = np.asarray(store.embed([d["prompt"] for d in self.pool]), dtype=np.float32)
        self.pool_vectors /= np.linalg.norm(self.pool_vectors, axis=1, keepdims=True)

    def demonstrations(self, query: str) -> list[dict]:
        similarity = self.pool_vectors @ self._unit(query)
        chosen = []
        for kind, count in self.demo_mix.items():  # later kinds sit closer to the query
            of_kind = [i for i in np.argsort(-similarity) if self.pool[i]["kind"] == kind][:count]
            chosen += [self.pool[i] for i in reversed(of_kind)]
        return chosen

    def render(self, query: str, hits: Sequence[Hit]) -> Context:
        demos = "".join(self.demo_template.format(**d) for d in self.demonstrations(query))
        facts = [h.metadata["fact"] for h in hits]
        # the most relevant fact last, right before the query
        text = demos + "".join(self.query_template.format(fact=f) for f in reversed(facts))
        # a chat model gets each fact as an earlier exchange, then the facts again right before the
        # question (plain sentences: no template text to repeat). Worked chat demonstrations before
        # them lowered fixed answers 0.80 -> 0.73 on 60 dev lines with context-aware decoding.
        turns = [m for h in reversed(hits) for m in remembered_exchange(h.metadata)]
        return Context(text + "Prompt:", [h.metadata["edit_id"] for h in hits], hits[0].similarity,
                       " ".join(reversed(facts)), separator=" ", chat_turns=turns,
                       # context-aware decoding only for facts corrected in the chat (they carry their question):
                       # on a bare CLI fact ("The largest planet is Jupiter") it flipped a half-known answer
                       contrast=all(h.metadata.get("question") for h in hits),
                       claims=self.claims(query, hits))
