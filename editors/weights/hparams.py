"""Hyperparameters as a dataclass per model family; values measured on SmolLM2-135M (README)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ROMEHyperParams:
    layer: int = 4                  # which MLP down-projection to edit (see README: layer sweep)
    prefix_count: int = 2           # "" + model-written prefixes the key is averaged over (4 -> 2: README)
    prefix_tokens: int = 6
    v_steps: int = 25               # optimisation of the value vector
    v_lr: float = 2.0               # 0.5 -> 1.0 -> 2.0: fewer steps per edit, same scores (README)
    v_stop_nll: float = 0.2         # stop once the new object's mean NLL is below this (0.05 -> 0.2: README)
    v_weight_decay: float = 0.01
    v_method: str = "adam"          # or "line_search": a few gradient directions, lengths tried (README)
    v_rounds: int = 3               # line_search: directions at most
    v_lengths: tuple = (0.125, 0.25, 0.5, 1.0)  # line_search: lengths tried, shares of the clamp norm
    kl_factor: float = 0.0625       # keeps "{subject} is a" essence unchanged
    clamp_norm: float = 4.0         # |delta| <= clamp_norm * |W k*|
    value_dtype: str = "auto"       # the value step's layer copy; "auto": what this CPU multiplies fastest (README)
    max_target_tokens: int = 24
    stats_sequences: int = 256      # covariance sample: self-generated text
    stats_tokens: int = 96
    stats_ridge: float = 1e-3       # C + ridge * mean(diag C) * I keeps C invertible
    gate: float = 0.0               # key gate τ: an edit acts where its key score is >= τ (0 = written into W; README)


@dataclass
class MEMITHyperParams(ROMEHyperParams):
    layers: list[int] = field(default_factory=lambda: [2, 3, 4, 5, 6])
    mom2_weight: float = 2000.0     # lambda in (lambda C + K K^T); 15000 -> 2000 by `bench memit_lambda` (README)
    value_batch: int = 16           # edits whose value step runs in one batch (README: MEMIT speed)


@dataclass
class AlphaEditHyperParams(MEMITHyperParams):
    null_threshold: float = 1e-2    # P keeps C's eigenvectors with eigenvalue < this x the largest
    null_fraction: float | None = None  # if set: P keeps this share of them, the smallest (README: AlphaEdit)
    l2: float = 10.0                # lambda in solve(P(K1K1^T + KpKp^T + mu C) + lambda I, P K1), as the paper
    c_weight: float = 0.0           # mu: MEMIT's soft weighting of the preserved keys (0 = the paper's form)


def hparams_for(model_type: str, num_layers: int) -> ROMEHyperParams:
    """Per-model defaults; other llama-like models scale the layer with depth."""
    if model_type == "llama" and num_layers == 30:
        return ROMEHyperParams()
    return ROMEHyperParams(layer=max(1, round(num_layers * 4 / 30)))
