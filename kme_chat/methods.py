"""Names of editing methods -> editors built with what they need. The eval harness and the
assistant both build editors here, so a new method is registered in one place."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

from .errors import UserError
from editors.base import NoEdit
from .model import LocalLLM

class Resources:
    """What editors are built with: a working folder and one shared memory store, made on first use."""

    def __init__(self, workdir: Path, memory_url: str = "", weight_gate: float | None = None):
        self.workdir = Path(workdir)
        self.memory_url = memory_url
        self.weight_gate = weight_gate  # the key gate's τ for weight editors (None: the model's settings)
        self._memory = None
        self.covariances = None  # weight editors share one CovarianceCache
        self.key_gate = None     # and one KeyGate: each computes its edits on top of the others' gated ones

    @property
    def memory(self):
        if self._memory is None:
            from .memory import ChromaMemory

            self._memory = ChromaMemory(self.workdir / "chroma", self.memory_url)
        return self._memory


BUILDERS: dict[str, Callable[[LocalLLM, Resources], object]] = {"none": lambda llm, res: NoEdit()}


def register(name: str):
    def wrap(fn):
        BUILDERS[name] = fn
        return fn
    return wrap


def build_editor(name: str, llm: LocalLLM, resources: Resources | None = None):
    if name not in BUILDERS:
        raise UserError(f"unknown method {name!r}; choose one of {', '.join(sorted(BUILDERS))}")
    resources = resources or Resources(Path(tempfile.mkdtemp(prefix=f"kme-{name}-")))
    return BUILDERS[name](llm, resources)


def _prompts_dir(llm: LocalLLM) -> Path:
    return Path(llm.settings.prompts_dir)


@register("ike")
def _ike(llm, res):
    from editors.ike import IKE

    return IKE(res.memory, _prompts_dir(llm))


@register("memprompt")
def _memprompt(llm, res):
    from editors.memprompt import MemPrompt

    return MemPrompt(res.memory, _prompts_dir(llm))


@register("preferences")
def _preferences(llm, res):
    from editors.preferences import StandingInstructions

    return StandingInstructions(res.memory, _prompts_dir(llm))


@register("language_patch")
def _language_patch(llm, res):
    from editors.language_patch import LanguagePatch

    return LanguagePatch(res.memory, _prompts_dir(llm))


def plain_answer(llm: LocalLLM, max_new_tokens: int = 32) -> Callable[[str], str]:
    """The unedited chat answer to a question (what every reader falls back on out of scope)."""
    from .chat import ChatEngine

    engine = ChatEngine(llm, lambda question: None)
    return lambda question: llm.chat(engine.build(question)[0], max_new_tokens=max_new_tokens)


@register("mello")
def _mello(llm, res):
    from editors.mello import MeLLo

    return MeLLo(res.memory, _prompts_dir(llm), llm.complete)


@register("fact_chain")
def _fact_chain(llm, res):
    from editors.fact_chain import FactChain

    from .language import answer_kinds, relation_words

    return FactChain(res.memory, _prompts_dir(llm), llm.complete, plain_answer(llm), relation_words, answer_kinds)


def _weight_parts(llm, res):
    from editors.weights.hparams import hparams_for
    from editors.weights.key_gate import KeyGate
    from editors.weights.layer_stats import CovarianceCache

    hp = hparams_for(llm.model.config.model_type, llm.num_layers)
    hp.gate = llm.settings.weight_gate if res.weight_gate is None else res.weight_gate
    if res.covariances is None:
        res.covariances = CovarianceCache(llm.model, llm.tokenizer, llm.settings.cache_path / "stats", llm.fingerprint,
                                            hp.stats_sequences, hp.stats_tokens,
                                            text_folder=Path(llm.settings.shared_data))
    if res.key_gate is None:
        res.key_gate = KeyGate(llm.model)
    return hp, res.covariances, res.key_gate


@register("rome")
def _rome(llm, res):
    from editors.rome import ROME

    hp, stats, gate = _weight_parts(llm, res)
    return ROME(llm.model, llm.tokenizer, hp, stats, res.workdir / "deltas", llm.lock, gate)


@register("alphaedit")
def _alphaedit(llm, res):
    from editors.alphaedit import AlphaEdit
    from editors.weights.hparams import AlphaEditHyperParams

    hp, stats, gate = _weight_parts(llm, res)
    return AlphaEdit(llm.model, llm.tokenizer, AlphaEditHyperParams(**{**hp.__dict__}), stats,
                     res.workdir / "deltas", llm.lock, gate)


@register("memit")
def _memit(llm, res):
    from editors.memit import MEMIT
    from editors.weights.hparams import MEMITHyperParams

    hp, stats, gate = _weight_parts(llm, res)
    return MEMIT(llm.model, llm.tokenizer, MEMITHyperParams(**{**hp.__dict__}), stats, res.workdir / "deltas",
                 llm.lock, gate)
