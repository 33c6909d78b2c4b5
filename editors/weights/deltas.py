"""A weight edit as factors per layer: ΔW_l = U_l V_lᵀ (rank one for ROME, rank n for MEMIT).
Adding and subtracting the same factors is exact up to float rounding, which makes undo and
persistence (safetensors next to the edit log) simple."""
from __future__ import annotations

from pathlib import Path

import torch

Factors = dict[int, tuple[torch.Tensor, torch.Tensor]]  # layer -> (U: out × r, V: in × r)


def _as_matrix(t: torch.Tensor) -> torch.Tensor:
    return t if t.dim() == 2 else t[:, None]


@torch.no_grad()
def add(model, factors: Factors, sign: float = 1.0) -> None:
    for layer, (u, v) in factors.items():
        weight = model.model.layers[layer].mlp.down_proj.weight
        weight.add_(sign * (_as_matrix(u) @ _as_matrix(v).T).to(weight.dtype))


def subtract(model, factors: Factors) -> None:
    add(model, factors, -1.0)


def save(path: Path, factors: Factors, refs: dict[int, torch.Tensor] | None = None) -> None:
    """`refs`: a gated edit's own-key scores per layer (`key_gate.py`), saved beside its factors."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for layer, (u, v) in factors.items():
        tensors[f"{layer}.u"], tensors[f"{layer}.v"] = u.contiguous(), v.contiguous()
    for layer, ref in (refs or {}).items():
        tensors[f"{layer}.ref"] = ref.reshape(-1).contiguous()
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp))
    tmp.replace(path)  # a delta file is whole or absent


def load(path: Path) -> Factors:
    return read(path)[0]


def read(path: Path) -> tuple[Factors, dict[int, torch.Tensor]]:
    """An edit's factors and the gate's own-key scores saved with them ({} for an edit written into
    the weights), from one read of the file."""
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    layers = sorted({int(k.split(".")[0]) for k in tensors})
    factors = {l: (tensors[f"{l}.u"], tensors[f"{l}.v"]) for l in layers}
    return factors, {l: tensors[f"{l}.ref"] for l in layers if f"{l}.ref" in tensors}


def is_finite(factors: Factors) -> bool:
    return all(torch.isfinite(u).all() and torch.isfinite(v).all() for u, v in factors.values())
