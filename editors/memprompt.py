"""MemPrompt (Madaan et al. 2022): a memory of user feedback keyed by the question.

When a new question is close enough to a remembered one, the feedback given then is put in
front of it. Scope is similarity of questions alone, as in the paper.
"""
from __future__ import annotations

from typing import Sequence

from .base import Context, EditRequest, Hit
from .retrieval import RetrievalEditor


class MemPrompt(RetrievalEditor):
    name = "memprompt"
    collection = "feedback"
    template_file = "memprompt.txt"
    top_k = 1
    threshold = 0.6

    def entry(self, edit: EditRequest) -> tuple[str, dict]:
        key = edit.question or edit.prompt
        return key, {"feedback": edit.note or edit.fact}

    def accepts(self, query: str, hit: Hit) -> bool:
        return hit.similarity >= self.threshold

    def render(self, query: str, hits: Sequence[Hit]) -> Context:
        text = "".join(self.template.format(feedback=h.metadata["feedback"]) for h in hits).strip()
        return Context(text, [h.metadata["edit_id"] for h in hits], hits[0].similarity, text)
