"""v*: the down-projection output at the subject's last token that makes the model say the new
object (ROME §3.2, "compute_v"). A residual δ added there is optimised for
  NLL(new object | prefix + prompt)  +  kl_factor · KL(essence prompt before ‖ after)  +  decay · |δ|²,
with |δ| clamped, then v* = W k* + δ."""
from __future__ import annotations

import copy
from typing import Sequence

import torch

from .batching import right_padded
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


class SplitBatch:
    """Rows cut at the subject's last token. δ only changes that token and what follows, so the
    part before it is run once (its keys and values cached) and each optimisation step runs only
    the few tokens from the subject's last token on: ~3x fewer tokens per step."""

    def __init__(self, sequences: Sequence[list[int]], cut: Sequence[int], pad_id: int):
        n, width_p = len(sequences), max(cut)
        self.prefix = torch.full((n, width_p), pad_id)        # left-padded: all rows end at the cut
        self.prefix_mask = torch.zeros((n, width_p), dtype=torch.long)
        for i, (ids, c) in enumerate(zip(sequences, cut)):
            if c:
                self.prefix[i, width_p - c:] = torch.tensor(ids[:c])
                self.prefix_mask[i, width_p - c:] = 1
        self.suffix, self.suffix_mask = right_padded([ids[c:] for ids, c in zip(sequences, cut)], pad_id)
        cut_t = torch.tensor(list(cut))[:, None]
        self.prefix_positions = (torch.arange(width_p)[None, :] - (width_p - cut_t)).clamp(min=0)
        self.suffix_positions = cut_t + torch.arange(self.suffix.shape[1])[None, :]
        self.mask = torch.cat([self.prefix_mask, self.suffix_mask], 1)

    def prefix_cache(self, model):
        if self.prefix.shape[1] == 0:
            return None
        return model.model(input_ids=self.prefix, attention_mask=self.prefix_mask, position_ids=self.prefix_positions,
                           use_cache=True).cache

    def suffix_hidden(self, model, cache) -> torch.Tensor:
        past = copy.deepcopy(cache) if cache is not None else None  # the forward appends to the cache
        return model.model(input_ids=self.suffix, attention_mask=self.mask, position_ids=self.suffix_positions,
                           cache=past, use_cache=past is not None).last_hidden_state


def object_token_ids(tokenizer, text: str) -> list[int]:
    """Token ids of an object as it follows a prompt: one leading space, no other padding."""
    return tokenizer(" " + text.strip())["input_ids"]


def compute_delta(model, tokenizer, layer: int, texts: Sequence[str], essence: str, subject: str,
                  target: str, w_k: torch.Tensor, hp) -> torch.Tensor:
    target_ids = object_token_ids(tokenizer, target)
    if not target.strip() or not target_ids:
        raise EditInputError("the new object is empty")
    if len(target_ids) > hp.max_target_tokens:
        raise EditInputError(f"the new object is {len(target_ids)} tokens; a weight edit takes at most "
                             f"{hp.max_target_tokens}")
    rows = _rows(tokenizer, texts, target_ids, subject)
    kl_ids = tokenizer(essence)["input_ids"]
    sequences = [r[0] for r in rows] + [kl_ids]
    subject_ends = [r[1] for r in rows] + [subject_last_token(tokenizer, essence, subject)]
    batch = SplitBatch(sequences, subject_ends, tokenizer.pad_token_id)
    n = len(sequences)
    # The loss reads a few positions only: the target tokens of each row and the essence's last
    # token. The LM head (a 49k-word vocabulary) runs on those alone, not on every position.
    row_index = torch.tensor([i for i, r in enumerate(rows) for _ in r[2]] + [n - 1])
    pos_index = torch.tensor([p - r[1] for r in rows for p in r[2]] + [len(kl_ids) - 1 - subject_ends[-1]])
    wanted = torch.cat([torch.tensor(target_ids) for _ in rows])

    delta = torch.zeros(w_k.shape[0], requires_grad=True)
    max_norm = hp.clamp_norm * w_k.norm()

    def add_delta(mod, args, output):
        out = output.clone()
        out[:, 0] += delta  # every row's suffix starts at the subject's last token
        return out

    mlp = model.model.layers[layer].mlp
    with torch.no_grad():
        cache = batch.prefix_cache(model)

    def scored_logp():
        hidden = batch.suffix_hidden(model, cache)
        return torch.log_softmax(model.lm_head(hidden[row_index, pos_index]).float(), -1)

    with torch.no_grad():
        base = scored_logp()[-1]
    optimiser = torch.optim.Adam([delta], lr=hp.v_lr)
    params = [p for p in model.parameters()]
    grads_were = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)  # gradients for δ only
    try:
        with thread_hook(mlp, add_delta):
            for step in range(hp.v_steps):
                optimiser.zero_grad()
                logp = scored_logp()
                nll = -logp[:-1].gather(1, wanted[:, None]).mean()  # every row has the same target length
                kl = torch.nn.functional.kl_div(logp[-1], base, log_target=True, reduction="sum")
                loss = nll + hp.kl_factor * kl + hp.v_weight_decay * delta.norm() ** 2 / w_k.norm() ** 2
                if not torch.isfinite(loss):
                    raise EditInputError("the optimisation diverged (NaN); nothing was changed")
                if nll.item() < hp.v_stop_nll:  # the new object is already likely enough
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
