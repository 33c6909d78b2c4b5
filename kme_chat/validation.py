"""Checks on text that comes from a user: one place, one set of messages."""
from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

from .errors import UserError

if TYPE_CHECKING:
    from .edit_log import Edit

LIMITS = {"subject": 200, "relation": 300, "prompt": 500, "target_new": 200, "target_true": 200,
          "question": 2000, "note": 1000, "condition": 500}


def clean_text(value, field: str, max_chars: int, allow_empty: bool = False) -> str:
    """Returns the text stripped of control characters, or raises a UserError saying why not."""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise UserError(f"{field} is not valid UTF-8 text") from None
    if not isinstance(value, str):
        raise UserError(f"{field} must be text, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: undecodable bytes that reached us through argv
        raise UserError(f"{field} is not valid UTF-8 text") from None
    # Keep newlines and tabs; drop other control characters (they can hide text or break templates).
    value = "".join(ch for ch in value if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    value = value.strip()
    if not value and not allow_empty:
        raise UserError(f"{field} is empty")
    if len(value) > max_chars:
        raise UserError(f"{field} is too long: {len(value):,} characters (limit {max_chars:,})")
    return value


def validate_edit(edit: "Edit") -> "Edit":
    """Cleans every text field; refuses empty essentials and oversized text with a clear message."""
    for name, limit in LIMITS.items():
        setattr(edit, name, clean_text(getattr(edit, name), name.replace("_", " "), limit, allow_empty=True))
    edit.paraphrases = [clean_text(p, "paraphrase", LIMITS["prompt"]) for p in edit.paraphrases if str(p).strip()]
    edit.aliases = [clean_text(a, "alias", LIMITS["subject"]) for a in edit.aliases if str(a).strip()]
    if edit.kind == "fact":
        if not edit.subject:
            raise UserError("subject is empty")
        if not edit.target_new:
            raise UserError("the new answer (target) is empty")
        if not edit.prompt:
            raise UserError("prompt is empty")
        if edit.subject.lower() not in edit.prompt.lower():
            raise UserError(f"the prompt {edit.prompt!r} does not mention the subject {edit.subject!r}")
    elif edit.kind == "feedback":
        if not edit.question or not edit.note:
            raise UserError("feedback needs the question it is about and the feedback text")
    elif edit.kind == "preference":
        if not edit.note:
            raise UserError("a preference needs the instruction (how to answer)")
    elif edit.kind == "rule":
        if not edit.condition or not edit.note:
            raise UserError("a rule needs a condition ('if ...') and a consequence ('then ...')")
    return edit
