"""Names of editing methods -> editors built with what they need. The eval harness and the
assistant both build editors here, so a new method is registered in one place."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

from .errors import UserError
from .evaluate import NoEdit
from .model import LocalLLM

BUILDERS: dict[str, Callable[[LocalLLM, Path], object]] = {"none": lambda llm, workdir: NoEdit()}


def register(name: str):
    def wrap(fn):
        BUILDERS[name] = fn
        return fn
    return wrap


def build_editor(name: str, llm: LocalLLM, workdir: Path | None = None):
    if name not in BUILDERS:
        raise UserError(f"unknown method {name!r}; choose one of {', '.join(sorted(BUILDERS))}")
    workdir = Path(workdir or tempfile.mkdtemp(prefix=f"kme-{name}-"))
    return BUILDERS[name](llm, workdir)


def _prompts_dir(llm: LocalLLM) -> Path:
    return Path(llm.settings.prompts_dir)


def _memory(workdir: Path):
    from .memory import ChromaMemory

    return ChromaMemory(workdir / "chroma")


@register("ike")
def _ike(llm, workdir):
    from editors.ike import IKE

    return IKE(_memory(workdir), _prompts_dir(llm))


@register("memprompt")
def _memprompt(llm, workdir):
    from editors.memprompt import MemPrompt

    return MemPrompt(_memory(workdir), _prompts_dir(llm))


@register("language_patch")
def _language_patch(llm, workdir):
    from editors.language_patch import LanguagePatch

    return LanguagePatch(_memory(workdir), _prompts_dir(llm))
