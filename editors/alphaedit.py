"""AlphaEdit (Fang et al., ICLR 2025): MEMIT whose update is projected onto the null space of the
preserved keys, for many edits one after another.

Step 1 (the values) is MEMIT's. Step 2 per layer: A = solve(P(K₁K₁ᵀ + K_pK_pᵀ) + λI, P K₁) and
ΔW = R Aᵀ (`weights/null_space.py`, which solves it in the null space's own coordinates), where
P = U Uᵀ comes from the layer's key statistics and K_pK_pᵀ sums the keys of the edits already
made, so a new edit does not overwrite the earlier ones.

Each edit keeps its own columns (r_j, a_j) per layer: undo subtracts them exactly, as for MEMIT,
and takes the edit's keys out of the protected set. Edits made after it were computed with those
keys protected and stay as they are. The keys are saved next to the edit's factors, so a restart
rebuilds the protected set from the active edits.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from .base import EditRequest
from .memit import MEMIT
from .weights import deltas
from .weights.null_space import in_basis, null_space_basis, solve_in_null_space


class AlphaEdit(MEMIT):
    name = "alphaedit"
    title = "AlphaEdit"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._bases: dict[int, torch.Tensor] = {}
        self.protected: dict[int, torch.Tensor] = {}         # layer -> Σ (Uᵀk)(Uᵀk)ᵀ of the active edits (float64)
        self.keys: dict[str, dict[int, torch.Tensor]] = {}   # edit id -> layer -> its key (in,)
        self._batch_keys: dict[int, torch.Tensor] = {}       # layer -> keys (in, n) of the batch being made

    def basis(self, layer: int) -> torch.Tensor:
        """U: the null space of the layer's preserved keys (P = U Uᵀ)."""
        if layer not in self._bases:
            self._bases[layer] = null_space_basis(self.stats.get([layer])[layer], self.hp.null_threshold,
                                                  self.hp.null_fraction)
        return self._bases[layer]

    def _protected(self, layer: int) -> torch.Tensor:
        size = self.basis(layer).shape[1]
        return self.protected.get(layer, torch.zeros(size, size, dtype=torch.float64))

    def solve(self, layer: int, keys: torch.Tensor) -> torch.Tensor:
        """A = U solve(Uᵀ(K₁K₁ᵀ + K_pK_pᵀ)U + λI, UᵀK₁) in place of MEMIT's; this batch's keys are
        kept to join the protected set once the whole batch is in."""
        self._batch_keys[layer] = keys
        basis = self.basis(layer)
        preserved = None
        if self.hp.c_weight:
            preserved = self.hp.c_weight * (basis.T @ self.stats.get([layer])[layer].double() @ basis)
        return solve_in_null_space(basis, keys, self._protected(layer), self.hp.l2, preserved).float()

    def spread(self, edits: Sequence[EditRequest], targets: torch.Tensor) -> dict[str, deltas.Factors]:
        self._batch_keys = {}
        per_edit = super().spread(edits, targets)  # MEMIT's layer loop, with `solve` above
        for j, edit in enumerate(edits):  # this batch's keys join the protected set
            self._protect(edit.id, {layer: keys[:, j].clone() for layer, keys in self._batch_keys.items()})
        return per_edit

    def _protect(self, edit_id: str, keys_by_layer: dict[int, torch.Tensor], sign: float = 1.0) -> None:
        for layer, key in keys_by_layer.items():
            k = in_basis(self.basis(layer), key[:, None])
            self.protected[layer] = self._protected(layer) + sign * (k @ k.T)
        if sign > 0:
            self.keys[edit_id] = keys_by_layer
            if self._keys_file(edit_id):
                _save_keys(self._keys_file(edit_id), keys_by_layer)

    def _keys_file(self, edit_id: str) -> Path | None:
        return self.delta_dir / f"{edit_id}.keys.safetensors" if self.delta_dir else None

    def revert(self, edits: Sequence[EditRequest]) -> None:
        super().revert(edits)
        for edit in edits:
            keys = self.keys.pop(edit.id, None)
            path = self._keys_file(edit.id)
            if keys is None and path and path.is_file():
                keys = _load_keys(path)
            if keys is not None:
                self._protect(edit.id, keys, sign=-1.0)
            if path and path.is_file():
                path.unlink()

    def restore(self, edit: EditRequest) -> bool:
        if not super().restore(edit):
            return False
        path = self._keys_file(edit.id)
        if path and path.is_file():
            keys = _load_keys(path)
            for layer, key in keys.items():
                k = in_basis(self.basis(layer), key[:, None])
                self.protected[layer] = self._protected(layer) + k @ k.T
            self.keys[edit.id] = keys
        return True

    def describe(self, edit: EditRequest) -> str:
        return f"alphaedit: null-space projected update of layers {self.hp.layers} down_proj"


def _save_keys(path: Path, keys: dict[int, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({str(layer): k.contiguous() for layer, k in keys.items()}, str(tmp))
    tmp.replace(path)


def _load_keys(path: Path) -> dict[int, torch.Tensor]:
    from safetensors.torch import load_file

    return {int(layer): k for layer, k in load_file(str(path)).items()}
