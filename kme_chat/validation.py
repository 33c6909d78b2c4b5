"""Checks on text that comes from a user: one place, one set of messages."""
from __future__ import annotations

import unicodedata

from .errors import UserError


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
