"""AlphaEdit's projection (Fang et al., ICLR 2025): updates that preserved keys cannot see.

C (= K₀K₀ᵀ / n, the layer's key statistics from `layer_stats`) has large eigenvalues whose
eigenvectors span most keys the model has seen. U holds the eigenvectors with the small ones and
P = U Uᵀ projects onto them; an update of the form X = P·(…) satisfies Xᵀk₀ = 0 for every k₀ in
the large span, so what the layer does with preserved knowledge is unchanged.

The paper's per-layer solve, A = solve(P(K₁K₁ᵀ + K_pK_pᵀ) + λI, P K₁), has its answer in P's
range (λA = P(K₁ − (…)A)), so A = U B with B = solve(Uᵀ(K₁K₁ᵀ + K_pK_pᵀ)U + λI, UᵀK₁): the same
A from an m×m system in U's coordinates (m = null-space size), with the protected keys kept there
too, Σ (Uᵀk)(Uᵀk)ᵀ — no d×d products per edit.
"""
from __future__ import annotations

import torch


def null_space_basis(c: torch.Tensor, threshold: float, null_fraction: float | None = None) -> torch.Tensor:
    """U (d, m), float64: C's eigenvectors whose eigenvalue is below `threshold` × the largest; with
    `null_fraction`, that share of the eigenvectors with the smallest eigenvalues instead (README:
    AlphaEdit, for this model's flat spectrum with one outlier 40x the next at layer 2)."""
    values, vectors = torch.linalg.eigh(c.double())  # ascending
    if null_fraction is not None:
        return vectors[:, :round(null_fraction * len(values))]
    return vectors[:, values < threshold * values.max()]


def null_space_projector(c: torch.Tensor, threshold: float, null_fraction: float | None = None) -> torch.Tensor:
    """P = U Uᵀ."""
    basis = null_space_basis(c, threshold, null_fraction)
    return basis @ basis.T


def in_basis(basis: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Keys (d, n) in U's coordinates (m, n)."""
    return basis.T @ keys.double()


def solve_in_null_space(basis: torch.Tensor, keys: torch.Tensor, protected: torch.Tensor, l2: float,
                        preserved: torch.Tensor | None = None) -> torch.Tensor:
    """A (d, n) = U solve(Uᵀ(K₁K₁ᵀ + K_pK_pᵀ + μC)U + λI, UᵀK₁); `protected` = Σ (Uᵀk)(Uᵀk)ᵀ of the
    earlier edits and `preserved` = Uᵀ μC U (MEMIT's soft weighting, None: the paper's form), both
    (m, m). The update for this batch is R Aᵀ."""
    coords = in_basis(basis, keys)
    gram = coords @ coords.T + protected.double()
    if preserved is not None:
        gram = gram + preserved.double()
    eye = torch.eye(basis.shape[1], dtype=torch.float64)
    return basis @ torch.linalg.solve(gram + l2 * eye, coords)
