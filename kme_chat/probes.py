"""Locality probes: unrelated prompts whose answers must not change when an edit is made.

Defaults are the first known facts of ROME's known_1000 (../shared/data) when present, else
prompts/locality_probes.txt; the user can replace them. Each run answers every probe through the
assistant (memory context included) with the float model, greedy, so runs are comparable.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .config import REPO_ROOT

KNOWN_FACTS = REPO_ROOT.parent / "shared" / "data" / "known_1000.json"
DEFAULT_COUNT = 8


def default_probes() -> list[str]:
    path = Path(os.environ.get("KME_PROBES_FILE", KNOWN_FACTS))
    if path.suffix == ".json" and path.is_file():
        return [r["prompt"] for r in json.loads(path.read_text(encoding="utf-8"))[:DEFAULT_COUNT]]
    return [line.strip() for line in (REPO_ROOT / "prompts" / "locality_probes.txt").read_text().splitlines()
            if line.strip()]


@dataclass
class ProbeRun:
    prompts: list[str]
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)

    @property
    def drift(self) -> int:
        return sum(b != a for b, a in zip(self.before, self.after))

    def rows(self) -> list[list[str]]:
        before = self.before or [""] * len(self.prompts)
        after = self.after or [""] * len(self.prompts)
        return [[p, b, a, "changed" if b and a and b != a else ""] for p, b, a in zip(self.prompts, before, after)]


def answer_probes(assistant, prompts: list[str], progress=None) -> list[str]:
    answers = []
    for i, prompt in enumerate(prompts):
        context = assistant.context_for(prompt)
        memory = "\n".join([t["content"] for t in context.turns] + [context.text]).strip() if context else ""
        shown = f"{memory}\n{prompt}" if memory else prompt
        answers.append(assistant.llm.complete(shown, max_new_tokens=6).strip())
        if progress:
            progress((i + 1) / len(prompts), desc=f"probe {i + 1}/{len(prompts)}")
    return answers
