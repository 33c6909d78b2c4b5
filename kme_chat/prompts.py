"""Prompt templates live as files in prompts/; this loads and fills them."""
from __future__ import annotations

import functools
from pathlib import Path

from .config import REPO_ROOT

DEFAULT_DIR = REPO_ROOT / "prompts"


@functools.lru_cache(maxsize=None)
def load(name: str, directory: str | None = None) -> str:
    path = Path(directory or DEFAULT_DIR) / name
    return path.read_text(encoding="utf-8")


def render(name: str, directory: str | None = None, **fields) -> str:
    """str.format with the given fields; field values are inserted verbatim, never re-parsed."""
    return load(name, directory).format(**fields)
