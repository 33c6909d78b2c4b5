"""Scope check (SERAC-style, survey Eq. 14): is a query about an edit at all?

A memory is only shown to the model for queries in some edit's scope; every other query reaches
the unedited model unchanged, which is what keeps locality high.
"""
from __future__ import annotations

import re

_WORD = re.compile(r"\w+", re.UNICODE)  # "Lyon's" -> "lyon", "s"
STOP_WORDS = {"the", "of", "a", "an", "and", "in", "on", "at", "to", "for", "de", "la", "le", "von", "van"}


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def mentions(query: str, subject: str) -> bool:
    """True when every content word of the subject occurs in the query (case-insensitive)."""
    subject_words = [w for w in words(subject) if w not in STOP_WORDS] or words(subject)
    query_words = set(words(query))
    return bool(subject_words) and all(w in query_words for w in subject_words)


def words_as_written(text: str) -> set[str]:
    return set(_WORD.findall(text))


PLACEHOLDER = "someone"


def without_names(text: str, names) -> str:
    """`text` with the words of `names` replaced by one placeholder, so that two questions about the
    same thing compare by what they ask: "What position does Joseph Rummel hold?" -> "What position
    does someone hold?". A sentence embedding of a question is dominated by its subject's name."""
    name_words = {w for name in names for w in words(name) if w not in STOP_WORDS}
    replaced = _WORD.sub(lambda m: PLACEHOLDER if m.group(0).lower() in name_words else m.group(0), text)
    return re.sub(rf"{PLACEHOLDER}(?:\s+{PLACEHOLDER})+", PLACEHOLDER, replaced)


def in_scope(mentioned: bool, relatedness: float, threshold: float, alone_threshold: float) -> bool:
    """The fact memory's gate: the subject named and the same question by meaning, or nearly the same question."""
    return relatedness >= alone_threshold or (mentioned and relatedness >= threshold)
