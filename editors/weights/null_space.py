"""AlphaEdit's projection (Fang et al., ICLR 2025): updates that preserved keys cannot see.

C (= K₀K₀ᵀ / n, the layer's key statistics from `layer_stats`) has a few large eigenvalues whose
eigenvectors span almost every key the model has seen. P projects onto the eigenvectors with the
small ones; an update of the form X = P·(…) satisfies Xᵀk₀ = 0 for every k₀ in the large span, so
what the layer does with preserved knowledge is unchanged.
"""
from __future__ import annotations

import torch


def null_space_projector(c: torch.Tensor, threshold: float) -> torch.Tensor:
    """P = U Uᵀ over C's eigenvectors whose eigenvalue is below `threshold` × the largest (float64)."""
    values, vectors = torch.linalg.eigh(c.double())
    small = vectors[:, values < threshold * values.max()]
    return small @ small.T


def projected_solve(projector: torch.Tensor, keys: torch.Tensor, protected: torch.Tensor,
                    l2: float) -> torch.Tensor:
    """A = solve(P(K₁K₁ᵀ + K_pK_pᵀ) + λI, P K₁): the update for this batch is R Aᵀ. keys (in, n);
    `protected` = Σ K_pK_pᵀ of earlier edits, kept too. λA = P(K₁ − (K₁K₁ᵀ + K_pK_pᵀ)A), so the
    columns of A lie in P's range: the update leaves every key P removes untouched."""
    keys = keys.double()
    eye = torch.eye(keys.shape[0], dtype=torch.float64)
    return torch.linalg.solve(projector @ (keys @ keys.T + protected.double()) + l2 * eye, projector @ keys)
