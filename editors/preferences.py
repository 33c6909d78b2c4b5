"""Standing instructions: how the user wants every answer ("answer in one short sentence", "use
kilometres", "call me Jo"). Unlike MemPrompt feedback, which is keyed to the question it was
given on, a preference applies to every later question, so every active one is in every context.

Length is the one preference a small model follows poorly from an instruction alone, so it is
also read as a limit the chat enforces: "one short sentence" -> stop after one sentence.
"""
from __future__ import annotations

import re
from typing import Sequence

from .base import Context, EditRequest, Hit
from .retrieval import RetrievalEditor

NUMBER_WORDS = {"one": 1, "a": 1, "a single": 1, "single": 1, "two": 2, "three": 3, "four": 4, "five": 5}
# "one short sentence", "2 lines", "two or three sentences": the largest count before the unit
COUNTED_UNIT = re.compile(r"\b(\d+|one|a single|single|a|two|three|four|five)\s+(?:or\s+\w+\s+)?"
                          r"(?:(?:short|brief|simple|single)\s+)?(sentences?|lines?)\b", re.I)
TWO_COUNTS = re.compile(r"\b(\d+|one|two|three|four|five)\s+or\s+(\d+|two|three|four|five)\s+(?:sentences|lines)\b", re.I)
BREVITY = re.compile(r"\b(short(?:er)?|brief(?:er)?|concise|too long|too wordy|less verbose|to the point)\b", re.I)
BRIEF_SENTENCES = 2  # "keep it short" with no count


def _count(word: str) -> int:
    return int(word) if word.isdigit() else NUMBER_WORDS.get(word.lower(), 1)


def sentence_limit(instruction: str) -> int | None:
    """The most sentences an answer may have under this instruction, or None when it sets none."""
    if m := TWO_COUNTS.search(instruction):
        return max(_count(m[1]), _count(m[2]))
    if m := COUNTED_UNIT.search(instruction):
        return max(1, min(_count(m[1]), 20))
    return BRIEF_SENTENCES if BREVITY.search(instruction) else None


class StandingInstructions(RetrievalEditor):
    name = "preferences"
    collection = "preferences"
    template_file = "preference.txt"
    top_k = 10            # every active preference, up to this many (the most relevant first)
    candidates = 10

    def entry(self, edit: EditRequest) -> tuple[str, dict]:
        return edit.note, {"instruction": edit.note}

    def accepts(self, query: str, hit: Hit) -> bool:
        return True  # a standing instruction holds for every question

    def render(self, query: str, hits: Sequence[Hit]) -> Context:
        text = "".join(self.template.format(instruction=h.metadata["instruction"]) for h in hits).strip()
        limits = [n for h in hits if (n := sentence_limit(h.metadata["instruction"]))]
        return Context(text, [h.metadata["edit_id"] for h in hits], 1.0, text, standing=True,
                       max_sentences=min(limits) if limits else None)

    def describe(self, edit: EditRequest) -> str:
        return f"preferences: always {edit.note!r}"
