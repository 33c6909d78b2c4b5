"""Token rows of different lengths as one batch."""
from __future__ import annotations

from typing import Sequence

import torch


def right_padded(rows: Sequence[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input ids, attention mask), padding on the right: each row's positions stay as they were."""
    width = max((len(r) for r in rows), default=0)
    input_ids = torch.full((len(rows), width), pad_id)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, ids in enumerate(rows):
        input_ids[i, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        mask[i, :len(ids)] = 1
    return input_ids, mask
