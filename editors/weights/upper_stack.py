"""The part of the model a value step has to run, as its own small model.

δ is added at one layer's MLP output, so every layer below it computes the same thing at every
optimisation step: its output is computed once (`hidden_below`, a forward that stops there) and
the steps run only the layers from the edited one up (`UpperStack`). The stack is a copy in
`dtype`, made dense even when the served model is int8, so gradients flow. Which dtype is faster
depends on the CPU (`value_dtype`).

Only the down-projections are ever edited, so a stack stays valid across edits once `sync()` has
copied them in again.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from .hooks import thread_hook


def value_dtype(name: str = "auto") -> torch.dtype:
    """The value step's dtype. "auto": bfloat16 where the CPU multiplies it natively (x86:
    AVX512-BF16 or AMX; ~2x faster than float32, README: value step), else float32: on a CPU
    with AVX2 alone bfloat16 is emulated, and a linear layer's forward and backward took 12x
    longer (measured)."""
    if name != "auto":
        return getattr(torch, name)
    native = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)() or \
        getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    return torch.bfloat16 if native else torch.float32


class StopForward(Exception):
    """Raised by a hook once the layer input we want is captured: nothing above it runs."""


@torch.no_grad()
def input_of(model, module: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
             position_ids: torch.Tensor | None = None) -> torch.Tensor:
    """What `module` (inside `model`) receives on these rows; the forward stops there."""
    captured = {}

    def grab(mod, args):
        captured["input"] = args[0]
        raise StopForward

    with thread_hook(module, grab, kind="pre"):
        try:
            model.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)
        except StopForward:
            pass
    return captured["input"]


@torch.no_grad()
def hidden_below(model, layer: int, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 position_ids: torch.Tensor | None = None) -> torch.Tensor:
    """The residual stream entering `layer` (batch, tokens, hidden); layers from `layer` up never run.
    `layer` = the number of layers gives the last layer's output (before the final norm)."""
    if layer == len(model.model.layers):
        return model.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                           output_hidden_states=True).hidden_states[layer]
    return input_of(model, model.model.layers[layer], input_ids, attention_mask, position_ids)


def _without_hooks(module: nn.Module) -> nn.Module:
    """A deep copy keeps the original's hooks (a key gate's, a probe's); the stack's copy must not
    run them twice, so it starts bare and whoever needs a hook on it attaches one."""
    for m in module.modules():
        m._forward_hooks.clear()
        m._forward_pre_hooks.clear()
    return module


def _dense(module: nn.Module) -> nn.Module:
    """The module with nn.Linear in place of any dynamically quantised linear (int8 has no backward)."""
    if isinstance(module, torch.ao.nn.quantized.dynamic.Linear):
        dense = nn.Linear(module.in_features, module.out_features, bias=module.bias() is not None)
        dense.weight.data = module.weight().dequantize()
        if module.bias() is not None:
            dense.bias.data = module.bias().detach().clone()
        return dense
    for name, child in list(module.named_children()):
        setattr(module, name, _dense(child))
    return module


class UpperStack:
    """Decoder layers `first`.. plus the final norm and LM head, copied in `dtype`. Called with the
    residual stream entering layer `first` (and a cache of earlier tokens) like the whole model."""

    def __init__(self, model, first: int, dtype: torch.dtype | None = None):
        base = model.model
        dtype = dtype or value_dtype()
        self.model, self.first, self.dtype = model, first, dtype
        config = copy.deepcopy(base.config)  # its own: the attention setting below must not reach the model's
        config.num_hidden_layers = len(base.layers) - first
        # Attention as plain matrix products ("eager"): on these few query tokens the CPU flash
        # kernel's backward took ~12 ms a layer, a third of a step (README: value step). Set on
        # this copy's config only: the served model keeps its own.
        config._attn_implementation = "eager"
        layers = []
        for i, layer in enumerate(base.layers[first:]):
            layer = _without_hooks(_dense(copy.deepcopy(layer))).to(dtype).requires_grad_(False)
            layer.self_attn.layer_idx = i  # its slot in this stack's cache
            layer.self_attn.config = config
            layers.append(layer)
        # A shallow copy of the base model's body that owns only the copied layers and norm; the
        # rotary embedding is shared (its cos/sin are cast to the hidden states' dtype).
        self.body = copy.copy(base)
        object.__setattr__(self.body, "_modules", dict(base._modules))
        object.__setattr__(self.body, "_parameters", {})
        object.__setattr__(self.body, "_buffers", {})
        self.body.config = config
        self.body.layers = nn.ModuleList(layers)
        self.body.norm = _without_hooks(copy.deepcopy(base.norm)).to(dtype).requires_grad_(False)
        self.lm_head = _without_hooks(_dense(copy.deepcopy(model.lm_head))).to(dtype).requires_grad_(False)

    def sync(self) -> None:
        """Copies the (possibly edited) down-projections of the model in again."""
        with torch.no_grad():
            for mine, theirs in zip(self.body.layers, self.model.model.layers[self.first:]):
                mine.mlp.down_proj.weight.copy_(theirs.mlp.down_proj.weight)

    def mlp(self, layer: int) -> nn.Module:
        """The copy of the model's layer `layer` MLP (where δ is added)."""
        return self.body.layers[layer - self.first].mlp

    def run(self, hidden: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
            cache=None, use_cache: bool = False):
        return self.body(inputs_embeds=hidden.to(self.dtype), attention_mask=attention_mask,
                         position_ids=position_ids, cache=cache, use_cache=use_cache)
