"""ROME's closed form: W' = W + u vᵀ with v = C⁻¹k*, u = (v* − W k*) / (vᵀ k*).
Then W' k* = v*, and any key k with (C⁻¹k*)ᵀ k = 0 maps as before."""
from __future__ import annotations

import torch


def regularised_inverse(c: torch.Tensor, ridge: float) -> torch.Tensor:
    eye = torch.eye(c.shape[0], dtype=torch.float64)
    c = c.double()
    return torch.linalg.inv(c + ridge * c.diagonal().mean() * eye)


def rank_one_update(w: torch.Tensor, c_inv: torch.Tensor, key: torch.Tensor, value: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(u, v) with W + u vᵀ mapping key -> value. w: (out, in), key: (in,), value: (out,)."""
    left = (c_inv @ key.double())                       # v = C⁻¹ k*
    residual = value.double() - w.double() @ key.double()
    u = residual / (left @ key.double())
    return u.float(), left.float()
