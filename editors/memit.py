"""MEMIT (Meng et al. 2023): many facts at once, spread over several MLP layers.

1. For each edit, a residual δ_i at the last edited layer that makes the model say o*
   (the same optimisation as ROME's value step); target z_i = h_i + δ_i.
2. For each layer l in order: keys K (one column per edit), what is still missing at the last layer
   R = (z − h_now) / (layers left), and the least-squares update
       ΔW_l = R Kᵀ (λ C_l + K Kᵀ)⁻¹,
   applied before moving to the next layer.
ΔW_l = Σ_i r_i a_iᵀ with a = (λC + KKᵀ)⁻¹K, so each edit keeps its own columns and can be undone alone.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .base import EditRequest
from .rome import WeightEditor
from .weights import deltas
from .weights.compute_key import compute_key, subject_last_token
from .weights.compute_value import compute_delta


class MEMIT(WeightEditor):
    name = "memit"

    @torch.no_grad()
    def _hidden_at(self, edits: Sequence[EditRequest], layer: int) -> torch.Tensor:
        """Output of `layer` at each edit's subject token, on the bare prompt: (hidden, n)."""
        cols = []
        for e in edits:
            idx = subject_last_token(self.tokenizer, e.prompt, e.subject)
            out = self.model(**self.tokenizer(e.prompt, return_tensors="pt"), output_hidden_states=True)
            cols.append(out.hidden_states[layer + 1][0, idx])
        return torch.stack(cols, 1)

    def apply(self, edits: Sequence[EditRequest]) -> None:
        if not edits:
            return
        per_edit = self.spread(edits, self.targets(edits))
        for e in edits:
            if self._file(e.id):
                deltas.save(self._file(e.id), per_edit[e.id])
            self.applied[e.id] = per_edit[e.id]

    def targets(self, edits: Sequence[EditRequest]) -> torch.Tensor:
        """Step 1: where each edit's subject should end up at the last edited layer, (hidden, n)."""
        last, prefixes = self.hp.layers[-1], self.prefixes()
        deltas_at_last = []
        for e in edits:
            key = compute_key(self.model, self.tokenizer, last, e.prompt, e.subject, prefixes)
            w_k = self.model.model.layers[last].mlp.down_proj.weight.detach() @ key
            deltas_at_last.append(compute_delta(self.model, self.tokenizer, last, [p + e.prompt for p in prefixes],
                                                f"{e.subject} is a", e.subject, e.target_new, w_k, self.hp))
        return self._hidden_at(edits, last) + torch.stack(deltas_at_last, 1)

    def spread(self, edits: Sequence[EditRequest], targets: torch.Tensor) -> dict[str, deltas.Factors]:
        """Step 2: the change spread over the layers, recomputing what is left after each one.
        Returns each edit's factors per layer; on any failure the model is left as it was."""
        layers, prefixes = list(self.hp.layers), self.prefixes()
        per_edit: dict[str, deltas.Factors] = {e.id: {} for e in edits}
        try:
            for i, layer in enumerate(layers):
                keys = torch.stack([compute_key(self.model, self.tokenizer, layer, e.prompt, e.subject, prefixes)
                                    for e in edits], 1)                       # (in, n)
                residual = (targets - self._hidden_at(edits, layers[-1])) / (len(layers) - i)  # (out, n)
                c = self.stats.get([layer])[layer].double()
                adjusted = torch.linalg.solve(self.hp.mom2_weight * c + keys.double() @ keys.double().T,
                                              keys.double()).float()          # (in, n)
                factors = {layer: (residual, adjusted)}
                if not deltas.is_finite(factors):
                    raise ValueError("the MEMIT update is not finite (NaN/inf)")
                with self.lock:
                    deltas.add(self.model, factors)
                for j, e in enumerate(edits):
                    per_edit[e.id][layer] = (residual[:, j].clone(), adjusted[:, j].clone())
        except BaseException:
            for factors in per_edit.values():
                with self.lock:
                    deltas.subtract(self.model, factors)
            raise
        return per_edit

    def describe(self, edit: EditRequest) -> str:
        return f"memit: update of layers {self.hp.layers} down_proj (batch)"
