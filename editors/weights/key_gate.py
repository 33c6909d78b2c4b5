"""A key gate for weight edits: each edit's update acts only where the key matches the edit's own.

Written into the weights, an update u vᵀ changes the output for every key k by u (vᵀk). Over
hundreds of edits these small leaks add up and the model's other answers drift (README: lifelong
editing). Here the factors stay beside the weights, and a hook on the down-projection adds each
edit's column only at positions whose key scores high for it:

    s_j(k) = v_jᵀk / v_jᵀk_j        (1 at the edit's own key k_j)
    out    = W k + Σ_j [s_j(k) ≥ τ] u_j (v_jᵀk)

Where the gate is open the output is exactly what the written update would give, so the edit's
prompts and paraphrases (the subject's key, s ≈ 0.75-1.1) see the edit; unrelated prompts (s below
~0.3 on CounterFact) see the unedited layer. The idea is GRACE's and WISE's (an edit applies inside
a radius of its key), on ROME/MEMIT/AlphaEdit factors. Undo drops the edit's columns: bit-exact.

One gate per model: every weight editor of a process writes into the same one (`Resources.key_gate`),
so each computes its edits on top of all the others'.
"""
from __future__ import annotations

import threading

import torch
from torch import nn

from .deltas import Factors, _as_matrix


def own_scores(factors: Factors, keys: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
    """v_jᵀk_j per layer and column: each column's score on its own key (keys: (in,) or (in, r))."""
    return {layer: (_as_matrix(v).float() * _as_matrix(keys[layer]).float()).sum(0) for layer, (_, v) in factors.items()}


class KeyGate:
    def __init__(self, model: nn.Module):
        self.model = model
        # layer -> edit id -> (U, V, floor): column j opens where v_jᵀk >= floor_j = τ · v_jᵀk_j
        self.entries: dict[int, dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = {}
        self._stacked: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self._hooks: dict[int, object] = {}
        self._lock = threading.Lock()

    def add(self, edit_id: str, factors: Factors, refs: dict[int, torch.Tensor], threshold: float) -> None:
        """Adds an edit's columns per layer (a MEMIT edit arrives one layer at a time), each opening
        at `threshold` (τ) times its score on its own key (`refs`)."""
        with self._lock:
            for layer, (u, v) in factors.items():
                self.entries.setdefault(layer, {})[edit_id] = (_as_matrix(u).float(), _as_matrix(v).float(),
                                                              threshold * refs[layer].reshape(-1).float())
                self._restack(layer)

    def remove(self, edit_id: str) -> bool:
        """Drops the edit everywhere; False if the gate never had it."""
        found = False
        with self._lock:
            for layer in list(self.entries):
                if self.entries[layer].pop(edit_id, None) is not None:
                    found = True
                    self._restack(layer)
        return found

    def __contains__(self, edit_id: str) -> bool:
        return any(edit_id in by_id for by_id in self.entries.values())

    def _restack(self, layer: int) -> None:
        by_id = self.entries.get(layer)
        if not by_id:
            self.entries.pop(layer, None)
            self._stacked.pop(layer, None)
            if layer in self._hooks:
                self._hooks.pop(layer).remove()
            return
        us, vs, floors = zip(*by_id.values())
        self._stacked[layer] = (torch.cat(us, 1), torch.cat(vs, 1), torch.cat(floors))
        if layer not in self._hooks:
            self._hooks[layer] = self._hook(self.model.model.layers[layer].mlp.down_proj, layer)

    def attach(self, layer: int, down_proj: nn.Module):
        """Gates a copy of the layer's down-projection too (a value step's stack), so a new edit is
        computed on the model as the chat sees it, earlier gated edits included. Returns the hook's
        handle: the copy's owner removes it when it drops the copy."""
        return self._hook(down_proj, layer)

    def _hook(self, down_proj: nn.Module, layer: int):
        return down_proj.register_forward_hook(lambda mod, args, out: self._gated(layer, args[0], out))

    def extra(self, layer: int, keys: torch.Tensor) -> torch.Tensor:
        """What the gated edits add to the layer's output for these keys ((…, in) -> (…, out))."""
        out = torch.zeros(*keys.shape[:-1], self.model.model.layers[layer].mlp.down_proj.out_features)
        return self._gated(layer, keys, out)

    def _gated(self, layer: int, keys: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        stacked = self._stacked.get(layer)
        if stacked is None:
            return out
        u, v, floor = stacked
        scores = keys.to(v.dtype) @ v              # (…, edits): v_jᵀk
        scores = scores * (scores >= floor)        # closed gates contribute nothing
        return out + (scores @ u.T).to(out.dtype)

    def close(self) -> None:
        """Removes the hooks (the model is as it was without any gated edit)."""
        with self._lock:
            for hook in self._hooks.values():
                hook.remove()
            self.entries.clear(), self._stacked.clear(), self._hooks.clear()
