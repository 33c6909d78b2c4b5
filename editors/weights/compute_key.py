"""k*: the input to the edited down-projection at the subject's last token, averaged over a few
short prefixes so the key stands for the subject in many contexts (ROME §3.1, "compute_u")."""
from __future__ import annotations

from typing import Sequence

import torch

from .batching import right_padded
from .upper_stack import input_of


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
def compute_keys(model, tokenizer, layer: int, edits: Sequence[tuple[str, str]], prefixes: Sequence[str],
                 rows_per_forward: int = 64) -> torch.Tensor:
    """k* for each (prompt, subject), (n, in): many edits' prefixed prompts share each forward.
    Each row stops at its subject's last token: the tokens after it cannot change the key there."""
    texts = [(p + prompt, subject) for prompt, subject in edits for p in prefixes]
    positions = [subject_last_token(tokenizer, text, subject) for text, subject in texts]  # bad subjects fail here
    down_proj, keys = model.model.layers[layer].mlp.down_proj, []
    for start in range(0, len(texts), rows_per_forward):
        chunk = texts[start:start + rows_per_forward]
        input_ids, mask = right_padded([tokenizer(text)["input_ids"][:at + 1] for (text, _), at
                                        in zip(chunk, positions[start:start + rows_per_forward])],
                                       tokenizer.pad_token_id)
        inputs = input_of(model, down_proj, input_ids, mask)  # nothing above the edited layer runs
        at = torch.tensor(positions[start:start + rows_per_forward])
        keys.append(inputs[torch.arange(len(chunk)), at])
    return torch.cat(keys).view(len(edits), len(prefixes), -1).mean(1)


def compute_key(model, tokenizer, layer: int, prompt: str, subject: str, prefixes: Sequence[str]) -> torch.Tensor:
    return compute_keys(model, tokenizer, layer, [(prompt, subject)], prefixes)[0]
