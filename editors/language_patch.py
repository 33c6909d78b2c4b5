"""Language Patch (Murty et al. 2022): "if <condition>, then <consequence>" in plain language.

A gate scores whether the condition holds for the input; the consequence is shown only above a
threshold, so unrelated inputs are untouched. The gate combines embedding similarity between
input and condition with a lexical check on the entity the condition names.
"""
from __future__ import annotations

from typing import Sequence

from .base import Context, EditRequest, Hit
from .retrieval import RetrievalEditor
from .scope import mentions


def default_condition(edit: EditRequest) -> str:
    return f"the input is about {edit.subject}"


class LanguagePatch(RetrievalEditor):
    name = "language_patch"
    collection = "patches"
    template_file = "language_patch.txt"
    top_k = 2
    threshold = 0.55

    def entry(self, edit: EditRequest) -> tuple[str, dict]:
        condition = edit.condition or default_condition(edit)
        return condition, {"subject": edit.subject, "consequence": edit.note or edit.fact}

    def gate(self, query: str, hit: Hit) -> float:
        """Score in [0, 1] that the patch's condition holds for this input."""
        entity = hit.metadata.get("subject", "")
        if entity and mentions(query, entity):
            return 1.0
        return max(0.0, hit.similarity)

    def accepts(self, query: str, hit: Hit) -> bool:
        return self.gate(query, hit) >= self.threshold

    def render(self, query: str, hits: Sequence[Hit]) -> Context:
        text = "".join(self.template.format(consequence=h.metadata["consequence"]) for h in hits).strip()
        return Context(text, [h.metadata["edit_id"] for h in hits], self.gate(query, hits[0]), text)
