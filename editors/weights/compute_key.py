"""k*: the input to the edited down-projection at the subject's last token, averaged over a few
short prefixes so the key stands for the subject in many contexts (ROME §3.1, "compute_u")."""
from __future__ import annotations

from typing import Sequence

import torch

from .batching import right_padded
from .hooks import thread_hook


class EditInputError(ValueError):
    """The edit cannot be made as asked (subject not in prompt, target too long, …)."""


def subject_span(tokenizer, text: str, subject: str) -> tuple[int, int]:
    """First and last index of the tokens that overlap the subject's last occurrence in `text`."""
    start = text.lower().rfind(subject.lower())
    if start < 0 or not subject.strip():
        raise EditInputError(f"the subject {subject!r} does not occur in the prompt {text!r}")
    end = start + len(subject)
    offsets = tokenizer(text, return_offsets_mapping=True)["offset_mapping"]
    inside = [i for i, (a, b) in enumerate(offsets) if a < end and b > start]
    if not inside:
        raise EditInputError(f"the subject {subject!r} could not be located in the tokens of {text!r}")
    return inside[0], inside[-1]


def subject_last_token(tokenizer, text: str, subject: str) -> int:
    return subject_span(tokenizer, text, subject)[1]


@torch.no_grad()
def compute_key(model, tokenizer, layer: int, prompt: str, subject: str, prefixes: Sequence[str]) -> torch.Tensor:
    texts = [p + prompt for p in prefixes]
    positions = [subject_last_token(tokenizer, text, subject) for text in texts]
    rows = [tokenizer(text)["input_ids"] for text in texts]
    input_ids, mask = right_padded(rows, tokenizer.pad_token_id)
    captured = {}

    def grab(mod, args, output=None):
        captured["k"] = args[0].detach()

    with thread_hook(model.model.layers[layer].mlp.down_proj, grab, kind="pre"):
        model.model(input_ids=input_ids, attention_mask=mask)
    return captured["k"][torch.arange(len(rows)), torch.tensor(positions)].mean(0)
