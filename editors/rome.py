"""ROME (Meng et al. 2022): one fact written into one MLP down-projection as a rank-one update.

Steps, one module each under editors/weights/: C from layer_stats, k* from compute_key, v* from
compute_value, (u, v) from rank_one. The key used in the closed form is the same averaged k* that
the value was optimised against (the r-ROME correction), so sequential edits stay consistent.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, Sequence

import torch

from .base import EditRequest
from .weights import deltas
from .weights.compute_key import EditInputError, compute_key
from .weights.compute_value import compute_delta
from .weights.hparams import ROMEHyperParams
from .weights.key_gate import KeyGate, own_scores
from .weights.layer_stats import CovarianceCache, sample_text
from .weights.rank_one import rank_one_update, regularised_inverse
from .weights.upper_stack import UpperStack, value_dtype


class WeightEditor:
    """What ROME and MEMIT share: factors per edit, applied under the model's lock, kept on disk."""
    name = "weights"
    changes_weights = True

    def __init__(self, model, tokenizer, hp: ROMEHyperParams, stats: CovarianceCache,
                 delta_dir: Path | None = None, lock=None, gate: KeyGate | None = None):
        self.model, self.tokenizer, self.hp, self.stats = model, tokenizer, hp, stats
        self.delta_dir = Path(delta_dir) if delta_dir else None
        self.lock = lock or contextlib.nullcontext()
        self.applied: dict[str, deltas.Factors] = {}
        self.refs: dict[str, dict[int, torch.Tensor]] = {}  # edit id -> layer -> its own keys' scores (the gate's 1)
        # holds the edits made while hp.gate > 0 (empty, it hooks nothing); one per model, shared by its editors
        self.gate = gate if gate is not None else KeyGate(model)
        self._gate_hooks: list = []  # the gate's hooks on this editor's value-step copies
        self._prefixes: list[str] | None = None
        self._c_inv: dict[int, torch.Tensor] = {}
        self._stacks: dict[int, UpperStack] = {}
        self.report: Callable[[str], None] = lambda stage: None  # told each step of a long edit as it starts

    def prefixes(self) -> list[str]:
        if self._prefixes is None:
            written = sample_text(self.model, self.tokenizer, self.hp.prefix_count - 1, self.hp.prefix_tokens, seed=1)
            self._prefixes = [""] + [" ".join(t.split()) + ". " for t in written]
        return self._prefixes

    def c_inv(self, layer: int) -> torch.Tensor:
        if layer not in self._c_inv:
            self._c_inv[layer] = regularised_inverse(self.stats.get([layer])[layer], self.hp.stats_ridge)
        return self._c_inv[layer]

    def stack(self, layer: int) -> UpperStack:
        """The value step's copy of the layers from `layer` up; kept between edits until `release()`."""
        if layer not in self._stacks:
            stack = UpperStack(self.model, layer, value_dtype(self.hp.value_dtype))
            if self.hp.gate > 0:  # the value step's forwards pass these hooks: only when edits can be gated
                for above in range(layer, self.model.config.num_hidden_layers):
                    self._gate_hooks.append(self.gate.attach(above, stack.mlp(above).down_proj))
            self._stacks[layer] = stack
        return self._stacks[layer]

    def release(self) -> None:
        """Drops the value step's copies (~240 MB for the default model); the next edit rebuilds them."""
        self._stacks.clear()
        for hook in self._gate_hooks:
            hook.remove()
        self._gate_hooks.clear()

    def _file(self, edit_id: str) -> Path | None:
        return self.delta_dir / f"{edit_id}.safetensors" if self.delta_dir else None

    def _write(self, edit_id: str, factors: deltas.Factors, refs: dict[int, torch.Tensor]) -> None:
        """Into the key gate when it is on (and the edit has its scores), else into the weights."""
        with self.lock:
            if self.hp.gate > 0 and refs:
                self.gate.add(edit_id, factors, refs, self.hp.gate)
            else:
                deltas.add(self.model, factors)
        self.refs.setdefault(edit_id, {}).update(refs)

    def _unwrite(self, edit_id: str, factors: deltas.Factors) -> None:
        with self.lock:
            if not self.gate.remove(edit_id):
                deltas.subtract(self.model, factors)
        self.refs.pop(edit_id, None)

    def _save(self, edit_id: str, factors: deltas.Factors) -> None:
        if self._file(edit_id):
            deltas.save(self._file(edit_id), factors, self.refs.get(edit_id))

    def _store(self, edit_id: str, factors: deltas.Factors, keys: dict[int, torch.Tensor]) -> None:
        if not deltas.is_finite(factors):
            raise EditInputError("the computed update is not finite (NaN/inf); nothing was changed")
        self.refs[edit_id] = own_scores(factors, keys)
        self._save(edit_id, factors)
        self._write(edit_id, factors, self.refs[edit_id])
        self.applied[edit_id] = factors

    def apply(self, edits: Sequence[EditRequest]) -> None:
        raise NotImplementedError

    def revert(self, edits: Sequence[EditRequest]) -> None:
        for edit in edits:
            factors = self.applied.pop(edit.id, None)
            path = self._file(edit.id)
            if factors is None and path and path.is_file():
                factors = deltas.load(path)
            if factors is not None:
                self._unwrite(edit.id, factors)
            if path and path.is_file():
                path.unlink()

    def restore(self, edit: EditRequest) -> bool:
        """Re-adds a persisted edit on start; False when its factors are missing."""
        path = self._file(edit.id)
        if edit.id in self.applied or not path or not path.is_file():
            return False
        factors, refs = deltas.read(path)
        self._write(edit.id, factors, refs)
        self.applied[edit.id] = factors
        return True

    def context_for(self, query: str):
        return None  # weight edits change the model itself, not the prompt


class ROME(WeightEditor):
    name = "rome"

    def compute_one(self, edit: EditRequest) -> tuple[deltas.Factors, dict[int, torch.Tensor]]:
        """The edit's factors, and its key k* (the gate's reference)."""
        layer, hp = self.hp.layer, self.hp
        self.report("key statistics C (first edit: computed once, then cached)")
        c_inv = self.c_inv(layer)
        prefixes = self.prefixes()
        self.report("key k* from the subject's last token")
        key = compute_key(self.model, self.tokenizer, layer, edit.prompt, edit.subject, prefixes)
        weight = self.model.model.layers[layer].mlp.down_proj.weight.detach()
        gated = self.gate.extra(layer, key)  # earlier gated edits open at this key (the same subject)
        w_k = weight @ key + gated           # the layer's output at k* as the chat computes it
        texts = [p + edit.prompt for p in prefixes]
        self.report("value v* by optimisation")
        delta = compute_delta(self.model, self.tokenizer, layer, texts, f"{edit.subject} is a", edit.subject,
                              edit.target_new, w_k, hp, stack=self.stack(layer))
        self.report("rank-one update (u, v)")
        u, v = rank_one_update(weight, c_inv, key, w_k + delta - gated)  # with those, the layer gives v*
        return {layer: (u, v)}, {layer: key}

    def apply(self, edits: Sequence[EditRequest]) -> None:
        for edit in edits:  # one at a time, each computed on the model with the previous ones in
            factors, keys = self.compute_one(edit)
            self.report("adding the gated update" if self.hp.gate > 0 else "writing the update into the weights")
            self._store(edit.id, factors, keys)

    def describe(self, edit: EditRequest) -> str:
        return f"rome: rank-one update of layer {self.hp.layer} down_proj"


__all__ = ["ROME", "WeightEditor", "EditInputError"]
