"""Editing methods, one module each, all behind editors.base.Editor."""
from .base import Context, EditRequest, Editor, Hit, MemoryStore

__all__ = ["Context", "EditRequest", "Editor", "Hit", "MemoryStore"]
