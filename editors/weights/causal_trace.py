"""Causal tracing (ROME §2): which MLP layers carry a fact at the subject's last token.

The subject's input embeddings are corrupted with Gaussian noise, so the model no longer
predicts the fact's object. Then, in the same corrupted run, the MLP outputs at the subject's
last token in a window of layers around l are put back to their values from the clean run. How
much of P(object) comes back (the indirect effect) says how much those layers carry the fact
(the ROME paper edits at its peak; `kme-chat bench layers` measures where editing works here).
All windows and noise samples run as one batch.
"""
from __future__ import annotations

from contextlib import ExitStack

import torch

from .compute_key import subject_span
from .compute_value import object_token_ids
from .hooks import thread_hook


def noise_scale(model) -> float:
    """3 x the spread of token embeddings, the corruption level of the ROME paper."""
    return 3.0 * model.model.embed_tokens.weight.float().std().item()


@torch.no_grad()
def trace_mlp(model, tokenizer, prompt: str, subject: str, target: str, noise: float,
              samples: int = 5, window: int = 5, seed: int = 0) -> dict:
    """Indirect effect of restoring the MLP outputs around each layer, averaged over noise samples."""
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    first, last = subject_span(tokenizer, prompt, subject)
    target_id = object_token_ids(tokenizer, target)[0]
    mlps = [layer.mlp for layer in model.model.layers]
    count = len(mlps)

    # 1. the clean run: P(object) and each MLP's output at the subject's last token
    clean: dict[int, torch.Tensor] = {}
    hooks = []
    for j, mlp in enumerate(mlps):
        hooks.append(mlp.register_forward_hook(lambda mod, args, out, j=j: clean.__setitem__(j, out[0, last].clone())))
    try:
        p_clean = model(input_ids=ids).logits[0, -1].softmax(-1)[target_id].item()
    finally:
        for h in hooks:
            h.remove()

    # 2. corrupted runs: row (s, l) restores the window around layer l; row (s, count) restores nothing
    rows_per_sample = count + 1
    batch = ids.repeat(samples * rows_per_sample, 1)
    generator = torch.Generator().manual_seed(seed)
    hidden = model.config.hidden_size
    noise_per_sample = torch.randn(samples, last - first + 1, hidden, generator=generator) * noise
    restored_layer = torch.arange(rows_per_sample).repeat(samples)  # which window each row restores

    def corrupt(mod, args, out):
        out = out.clone()
        out[:, first:last + 1] += noise_per_sample.repeat_interleave(rows_per_sample, 0).to(out.dtype)
        return out

    def restore(j):
        rows = (restored_layer < count) & ((restored_layer - j).abs() <= window // 2)

        def hook(mod, args, out):
            out = out.clone()
            out[rows, last] = clean[j].to(out.dtype)
            return out
        return hook

    with ExitStack() as stack:
        stack.enter_context(thread_hook(model.model.embed_tokens, corrupt))
        for j, mlp in enumerate(mlps):
            stack.enter_context(thread_hook(mlp, restore(j)))
        probs = model(input_ids=batch).logits[:, -1].softmax(-1)[:, target_id].view(samples, rows_per_sample)
    p_corrupt = probs[:, count].mean().item()
    effect = (probs[:, :count] - probs[:, count:]).mean(0)
    return {"p_clean": p_clean, "p_corrupt": p_corrupt, "indirect_effect": effect.tolist()}
