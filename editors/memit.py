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

from typing import Callable, Sequence

import torch

from .base import EditRequest
from .rome import WeightEditor
from .weights import deltas
from .weights.batching import right_padded
from .weights.compute_key import compute_keys, subject_last_token
from .weights.compute_value import ValueJob, compute_deltas
from .weights.key_gate import own_scores
from .weights.upper_stack import hidden_below


class MEMIT(WeightEditor):
    name = "memit"
    title = "MEMIT"

    @torch.no_grad()
    def _hidden_at(self, edits: Sequence[EditRequest], layer: int, rows_per_forward: int = 64) -> torch.Tensor:
        """Output of `layer` at each edit's subject token, on the bare prompt: (hidden, n). Each row
        stops at that token (what follows cannot change it), and the forward at `layer`."""
        cols = []
        for start in range(0, len(edits), rows_per_forward):
            chunk = edits[start:start + rows_per_forward]
            idx = [subject_last_token(self.tokenizer, e.prompt, e.subject) for e in chunk]
            input_ids, mask = right_padded([self.tokenizer(e.prompt)["input_ids"][:at + 1] for e, at in zip(chunk, idx)],
                                           self.tokenizer.pad_token_id)
            hidden = hidden_below(self.model, layer + 1, input_ids, mask)
            cols.append(hidden[torch.arange(len(chunk)), torch.tensor(idx)])
        return torch.cat(cols).T

    def apply(self, edits: Sequence[EditRequest]) -> None:
        if not edits:
            return
        self.report("key statistics and values v* at the last edited layer")
        targets = self.targets(edits)
        self.report(f"spreading the update over layers {', '.join(map(str, self.hp.layers))}")
        per_edit = self.spread(edits, targets)
        for e in edits:
            self._save(e.id, per_edit[e.id])
            self.applied[e.id] = per_edit[e.id]

    def targets(self, edits: Sequence[EditRequest], progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """Step 1: where each edit's subject should end up at the last edited layer, (hidden, n).
        The value step runs `hp.value_batch` edits at a time (same result, fewer forwards)."""
        last, prefixes = self.hp.layers[-1], self.prefixes()
        weight = self.model.model.layers[last].mlp.down_proj.weight.detach()
        found = []
        for start in range(0, len(edits), self.hp.value_batch):
            group = edits[start:start + self.hp.value_batch]
            keys = compute_keys(self.model, self.tokenizer, last, [(e.prompt, e.subject) for e in group], prefixes)
            jobs = [ValueJob([p + e.prompt for p in prefixes], f"{e.subject} is a", e.subject, e.target_new)
                    for e in group]
            found.append(compute_deltas(self.model, self.tokenizer, last, jobs, keys @ weight.T, self.hp,
                                        stack=self.stack(last)))
            if progress:
                progress(start + len(group), len(edits))
        return self._hidden_at(edits, last) + torch.cat(found).T

    def spread(self, edits: Sequence[EditRequest], targets: torch.Tensor) -> dict[str, deltas.Factors]:
        """Step 2: the change spread over the layers, recomputing what is left after each one.
        Returns each edit's factors per layer; on any failure the model is left as it was."""
        layers, prefixes = list(self.hp.layers), self.prefixes()
        per_edit: dict[str, deltas.Factors] = {e.id: {} for e in edits}
        try:
            for i, layer in enumerate(layers):
                keys = compute_keys(self.model, self.tokenizer, layer, [(e.prompt, e.subject) for e in edits],
                                    prefixes).T                               # (in, n)
                residual = (targets - self._hidden_at(edits, layers[-1])) / (len(layers) - i)  # (out, n)
                adjusted = self.solve(layer, keys)                               # (in, n)
                factors = {layer: (residual, adjusted)}
                if not deltas.is_finite(factors):
                    raise ValueError(f"the {self.title} update is not finite (NaN/inf)")
                if self.hp.gate <= 0:
                    with self.lock:
                        deltas.add(self.model, factors)  # the whole batch at once
                scores = own_scores(factors, {layer: keys})[layer]  # each column on its own key: the gate's 1
                for j, e in enumerate(edits):
                    column = {layer: (residual[:, j].clone(), adjusted[:, j].clone())}
                    ref = {layer: scores[j:j + 1].clone()}
                    per_edit[e.id].update(column)
                    if self.hp.gate > 0:
                        self._write(e.id, column, ref)
                    else:
                        self.refs.setdefault(e.id, {}).update(ref)
        except BaseException:
            for edit_id, factors in per_edit.items():
                self._unwrite(edit_id, factors)
            raise
        return per_edit

    def solve(self, layer: int, keys: torch.Tensor) -> torch.Tensor:
        """The layer's update is R Aᵀ with A = (λC + KKᵀ)⁻¹K; keys (in, n) -> A (in, n)."""
        c = self.stats.get([layer])[layer].double()
        return torch.linalg.solve(self.hp.mom2_weight * c + keys.double() @ keys.double().T, keys.double()).float()

    def describe(self, edit: EditRequest) -> str:
        return f"memit: update of layers {self.hp.layers} down_proj (batch)"
