"""AlphaEdit on a tiny random Llama: the projection spares the preserved keys, undo is exact, and
a restart rebuilds the protected set from the saved keys."""
import torch

from editors.base import EditRequest
from editors.weights import deltas
from editors.weights.null_space import null_space_basis, null_space_projector, solve_in_null_space
from tests.test_rome import tiny  # noqa: F401  (the module fixture)

EDITS = [EditRequest("a1", "Danielle Darrieux", "The mother tongue of Danielle Darrieux is", "English"),
         EditRequest("a2", "Toko Yasuda", "Toko Yasuda plays the instrument", "piano")]


def test_projected_update_leaves_the_preserved_span_unchanged():
    torch.manual_seed(0)
    basis = torch.linalg.qr(torch.randn(40, 40))[0]
    c = basis @ torch.diag(torch.cat([torch.full((25,), 5.0), torch.full((15,), 1e-4)])) @ basis.T
    u = null_space_basis(c, 1e-2)
    assert u.shape == (40, 15)
    keys, residual = torch.randn(40, 3), torch.randn(16, 3)
    earlier = torch.randn(40, 2).double()
    protected = (u.T @ earlier) @ (u.T @ earlier).T                      # Σ (Uᵀk)(Uᵀk)ᵀ
    a = solve_in_null_space(u, keys, protected, 10.0)
    delta = residual.double() @ a.T
    preserved = basis[:, :25].double()                                  # the large-eigenvalue span
    assert delta.abs().max() > 1e-3 and (delta @ preserved).abs().max() < 1e-6
    # the same A as the paper's d x d form, solve(P(K₁K₁ᵀ + K_pK_pᵀ) + λI, P K₁)
    p, k = null_space_projector(c, 1e-2), keys.double()
    paper = torch.linalg.solve(p @ (k @ k.T + earlier @ earlier.T) + 10.0 * torch.eye(40, dtype=torch.float64), p @ k)
    assert torch.allclose(a, paper, atol=1e-9)


def alphaedit(tiny, llm, tmp_path, threshold=0.5):  # noqa: F811
    from editors.alphaedit import AlphaEdit
    from editors.weights.hparams import AlphaEditHyperParams
    from editors.weights.layer_stats import CovarianceCache

    hp = AlphaEditHyperParams(layers=[1, 2], prefix_count=2, prefix_tokens=3, v_steps=5, null_threshold=threshold)
    return AlphaEdit(tiny, llm.tokenizer, hp, CovarianceCache(tiny, llm.tokenizer, tmp_path / "s", "tiny", 8, 8),
                     tmp_path / "deltas")


def test_alphaedit_spares_preserved_keys_undoes_exactly_and_restores_its_protected_set(tiny, llm, tmp_path):  # noqa: F811
    editor = alphaedit(tiny, llm, tmp_path)
    original = {k: v.clone() for k, v in tiny.state_dict().items()}
    preserved = {}
    for layer in (1, 2):  # C's large-eigenvalue span: the keys the projection protects
        values, vectors = torch.linalg.eigh(editor.stats.get([layer])[layer].double())
        preserved[layer] = vectors[:, values >= editor.hp.null_threshold * values.max()]
        assert 0 < preserved[layer].shape[1] < vectors.shape[1]
    editor.apply([EDITS[0]])     # one at a time: the second is computed with the first's keys protected
    editor.apply([EDITS[1]])
    for layer in (1, 2):
        name = f"model.layers.{layer}.mlp.down_proj.weight"
        change = (tiny.state_dict()[name] - original[name]).double()
        assert change.abs().max() > 1e-6, layer
        assert (change @ preserved[layer]).abs().max() < 1e-5, layer     # preserved keys map as before
    protected = {l: t.clone() for l, t in editor.protected.items()}
    assert set(protected) == {1, 2} and all(torch.linalg.matrix_rank(t) == 2 for t in protected.values())

    # a restart on the same data dir: the weights back to the base, a new editor re-adds the edits
    for edit in EDITS:
        deltas.subtract(tiny, editor.applied.pop(edit.id))
    restarted = alphaedit(tiny, llm, tmp_path)
    assert all(restarted.restore(e) for e in EDITS)
    for layer in (1, 2):
        assert torch.allclose(restarted.protected[layer], protected[layer], atol=1e-9)

    restarted.revert([EDITS[0]])                                    # undo one: its keys leave the set
    restarted.revert([EDITS[1]])
    for name, tensor in tiny.state_dict().items():
        assert torch.allclose(tensor, original[name], atol=1e-6), name
    assert all(t.abs().max() < 1e-9 for t in restarted.protected.values())
    assert not list((tmp_path / "deltas").glob("*"))
