"""v*: the down-projection output at the subject's last token that makes the model say the new
object (ROME §3.2, "compute_v"). A residual δ added there is optimised for
  NLL(new object | prefix + prompt)  +  kl_factor · KL(essence prompt before ‖ after)  +  decay · |δ|²,
with |δ| clamped, then v* = W k* + δ."""
from __future__ import annotations

from typing import Sequence

import torch

from .compute_key import EditInputError, subject_last_token
from .hooks import thread_hook


def _rows(tokenizer, texts: Sequence[str], target_ids: list[int], subject: str):
    """Token rows 'text + target[:-1]', where the subject ends, and where each target token is predicted."""
    rows = []
    for text in texts:
        ids = tokenizer(text)["input_ids"]
        full = ids + target_ids[:-1]
        targets = list(range(len(ids) - 1, len(ids) - 1 + len(target_ids)))  # positions predicting each target
        rows.append((full, subject_last_token(tokenizer, text, subject), targets))
    return rows


def compute_delta(model, tokenizer, layer: int, texts: Sequence[str], essence: str, subject: str,
                  target: str, w_k: torch.Tensor, hp) -> torch.Tensor:
    target_ids = tokenizer(" " + target.strip())["input_ids"]
    if not target.strip() or not target_ids:
        raise EditInputError("the new object is empty")
    if len(target_ids) > hp.max_target_tokens:
        raise EditInputError(f"the new object is {len(target_ids)} tokens; a weight edit takes at most "
                             f"{hp.max_target_tokens}")
    rows = _rows(tokenizer, texts, target_ids, subject)
    kl_ids = tokenizer(essence)["input_ids"]
    kl_row = (kl_ids, subject_last_token(tokenizer, essence, subject))
    width = max(len(r[0]) for r in rows + [kl_row])
    n = len(rows) + 1
    input_ids = torch.full((n, width), tokenizer.pad_token_id)
    mask = torch.zeros((n, width), dtype=torch.long)
    for i, ids in enumerate([r[0] for r in rows] + [kl_ids]):
        input_ids[i, :len(ids)] = torch.tensor(ids)
        mask[i, :len(ids)] = 1
    lookup = torch.tensor([r[1] for r in rows] + [kl_row[1]])
    target_tensor = torch.tensor(target_ids)

    delta = torch.zeros(w_k.shape[0], requires_grad=True)
    max_norm = hp.clamp_norm * w_k.norm()

    def add_delta(mod, args, output):
        out = output.clone()
        out[torch.arange(n), lookup] += delta
        return out

    mlp = model.model.layers[layer].mlp
    with torch.no_grad():
        base = torch.log_softmax(model(input_ids=input_ids[-1:], attention_mask=mask[-1:]).logits[0, len(kl_ids) - 1], -1)
    optimiser = torch.optim.Adam([delta], lr=hp.v_lr)
    params = [p for p in model.parameters()]
    grads_were = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)  # gradients for δ only
    try:
        with thread_hook(mlp, add_delta):
            for step in range(hp.v_steps):
                optimiser.zero_grad()
                logits = model(input_ids=input_ids, attention_mask=mask).logits
                logp = torch.log_softmax(logits.float(), -1)
                nll = torch.stack([-logp[i, r[2]].gather(1, target_tensor[:, None]).mean()
                                   for i, r in enumerate(rows)]).mean()
                kl_logp = logp[-1, len(kl_ids) - 1]
                kl = torch.nn.functional.kl_div(kl_logp, base, log_target=True, reduction="sum")
                loss = nll + hp.kl_factor * kl + hp.v_weight_decay * delta.norm() ** 2 / w_k.norm() ** 2
                if not torch.isfinite(loss):
                    raise EditInputError("the optimisation diverged (NaN); nothing was changed")
                if nll.item() < 0.05:
                    break
                loss.backward()
                optimiser.step()
                with torch.no_grad():
                    if delta.norm() > max_norm:
                        delta.mul_(max_norm / delta.norm())
    finally:
        for p, was in zip(params, grads_were):
            p.requires_grad_(was)
    return delta.detach()
