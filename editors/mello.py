"""MeLLo (Zhong et al. 2023): answer a multi-hop question by letting the model decompose it.

The model, prompted with worked examples (prompts/mello.txt), writes a sub-question and a
tentative answer; we retrieve the stored fact nearest to the sub-question and put it in the
prompt; the model says whether the fact contradicts its answer and carries the corrected
intermediate answer on to the next sub-question, until it writes a final answer.
"""
from __future__ import annotations

import re
from pathlib import Path

from .base import MemoryStore
from .facts import FactMemory
from .multihop import Complete, Hop, MultiHopAnswer

STOP = ("Retrieved fact:", "\nQuestion:")
_FIELD = re.compile(r"^(Subquestion|Generated answer|Final answer):\s*(.*)$|"
                    r"^Retrieved fact .*?intermediate answer is:\s*(.*)$", re.MULTILINE)


class MeLLo(FactMemory):
    name = "mello"
    template_file = "mello.txt"
    max_hops = 4
    tokens_per_step = 80

    def __init__(self, store: MemoryStore, prompts_dir: Path, complete: Complete):
        super().__init__(store, prompts_dir)
        self.complete = complete

    def context_for(self, query: str):
        return None  # MeLLo answers multi-hop questions itself; it adds nothing to plain chat

    def retrieve(self, sub_question: str):
        hits = self.store.query(self.collection, sub_question, 1)
        return hits[0] if hits else None

    def answer_multihop(self, question: str) -> MultiHopAnswer:
        question = " ".join(question.split())
        # The prompt ends in "Subquestion:": a small model otherwise skips straight to an answer.
        prompt = self.template.replace("{question}", question)
        hops: list[Hop] = []
        final = None
        for i in range(self.max_hops + 1):
            step = self.complete(prompt, self.tokens_per_step, STOP)
            prompt += step
            step = "Subquestion:" + step if i == 0 else step
            sub = generated = None
            for m in _FIELD.finditer(step):
                if m.group(3) is not None and hops:          # verdict on the previous hop's fact
                    hops[-1].answer = m.group(3).strip()
                elif m.group(1) == "Subquestion":
                    sub = m.group(2).strip()
                elif m.group(1) == "Generated answer":
                    generated = m.group(2).strip()
                elif m.group(1) == "Final answer":
                    final = m.group(2).strip()
            if final is not None or not sub:
                break
            hit = self.retrieve(sub)
            # With nothing stored, nothing can contradict the model: its own answer stands in.
            fact = hit.metadata["fact"] if hit else (generated or "")
            hops.append(Hop(sub, generated or "", fact, hit.metadata["edit_id"] if hit else "", generated or "",
                            "memory" if hit else "model"))
            if not prompt.endswith("\n"):
                prompt += "\n"
            prompt += f"Retrieved fact: {fact}\n"
        if final is None:  # ran out of hops or format: the last intermediate answer is the best guess
            final = hops[-1].answer if hops else ""
        return MultiHopAnswer(question, final, hops, self.name, used_memory=any(h.edit_id for h in hops))
