"""The key gate: a gated edit acts where its key scores high, leaves other inputs bit-identical,
undoes bit-exactly and comes back after a restart (tiny random Llama, then the packaged model)."""
import pytest
import torch

from editors.base import EditRequest
from editors.weights import deltas
from editors.weights.key_gate import KeyGate, own_scores
from tests.test_rome import tiny  # noqa: F401  (the module fixture)

EDITS = [EditRequest("g1", "Danielle Darrieux", "The mother tongue of Danielle Darrieux is", "English"),
         EditRequest("g2", "Toko Yasuda", "Toko Yasuda plays the instrument", "piano")]
UNRELATED = "The capital of Norway is"


def test_gate_adds_the_update_only_where_the_key_scores_above_the_threshold(tiny):  # noqa: F811
    down_proj = tiny.model.layers[1].mlp.down_proj
    torch.manual_seed(1)
    key, u = torch.randn(64), torch.randn(32)
    v = key / key.norm() ** 2                       # vᵀkey = 1
    gate = KeyGate(tiny)
    gate.add("e", {1: (u, v)}, own_scores({1: (u, v)}, {1: key}), threshold=0.5)
    with torch.no_grad():
        plain = lambda x: x @ down_proj.weight.T   # noqa: E731
        assert torch.allclose(down_proj(key), plain(key) + u, atol=1e-5)            # score 1: open
        near = 0.8 * key
        assert torch.allclose(down_proj(near), plain(near) + 0.8 * u, atol=1e-5)     # 0.8 >= 0.5: open
        other = torch.randn(64)
        far = other - (other @ v) * key + 0.3 * key                  # vᵀfar = 0.3 < 0.5: closed
        assert torch.equal(down_proj(far), plain(far))
        assert "e" in gate and gate.remove("e") and "e" not in gate
        assert not down_proj._forward_hooks and torch.equal(down_proj(key), plain(key))


def test_a_value_step_copy_made_after_gated_edits_counts_them_once(tiny, llm, tmp_path):  # noqa: F811
    """The value step's copy of the layers must compute what the served model computes: a deep copy
    would carry the gate's hook of the original and add each gated edit twice."""
    memit = gated_memit(tiny, llm, tmp_path)
    memit.apply(EDITS[:1])
    stack = memit.stack(1)  # made now, with a gated edit in
    _, v, _ = memit.gate._stacked[1]
    ref = memit.refs[EDITS[0].id][1]               # v_jᵀk_j: its score on its own key
    key = (v * ref / (v * v).sum(0)).T            # the edit's own score: its gate is open
    with torch.no_grad():
        served = tiny.model.layers[1].mlp.down_proj(key)
        copied = stack.mlp(1).down_proj(key.to(stack.dtype)).float()
    plain = key @ tiny.model.layers[1].mlp.down_proj.weight.T
    assert not torch.allclose(served, plain)                                 # the edit acts here
    assert torch.allclose(copied, served, atol=0.02 * served.abs().max())   # the value step's copy (bfloat16 where native)
    assert len(stack.mlp(1).down_proj._forward_hooks) == 1
    memit.revert(EDITS[:1])
    memit.release()


def gated_memit(tiny, llm, tmp_path):  # noqa: F811
    from editors.memit import MEMIT
    from editors.weights.hparams import MEMITHyperParams
    from editors.weights.layer_stats import CovarianceCache

    hp = MEMITHyperParams(layers=[1, 2], prefix_count=2, prefix_tokens=3, v_steps=5, gate=0.5)
    return MEMIT(tiny, llm.tokenizer, hp, CovarianceCache(tiny, llm.tokenizer, tmp_path / "s", "tiny", 8, 8),
                 tmp_path / "deltas")


def logits(model, tokenizer, text):
    with torch.no_grad():
        return model(**tokenizer(text, return_tensors="pt")).logits[0, -1]


def test_gated_batch_leaves_weights_untouched_undoes_bit_exactly_and_restores(tiny, llm, tmp_path):  # noqa: F811
    weights = {k: v.clone() for k, v in tiny.state_dict().items()}
    before = {e.id: logits(tiny, llm.tokenizer, e.prompt) for e in EDITS}
    memit = gated_memit(tiny, llm, tmp_path)
    memit.apply(EDITS)
    assert all(torch.equal(v, weights[k]) for k, v in tiny.state_dict().items())   # the edits live in the gate
    after = {e.id: logits(tiny, llm.tokenizer, e.prompt) for e in EDITS}
    assert all(not torch.allclose(after[e.id], before[e.id]) for e in EDITS)
    assert set(deltas.read(tmp_path / "deltas" / "g1.safetensors")[1]) == {1, 2}

    memit.gate.close()                                     # as if the process ended
    assert all(torch.equal(logits(tiny, llm.tokenizer, e.prompt), before[e.id]) for e in EDITS)
    restarted = gated_memit(tiny, llm, tmp_path)          # a new one reads the saved factors and scores
    assert all(restarted.restore(e) for e in EDITS)
    assert all(torch.equal(logits(tiny, llm.tokenizer, e.prompt), after[e.id]) for e in EDITS)

    restarted.revert([EDITS[0]])
    assert "g1" not in restarted.gate and "g2" in restarted.gate
    assert not (tmp_path / "deltas" / "g1.safetensors").exists()
    restarted.revert([EDITS[1]])
    assert all(torch.equal(logits(tiny, llm.tokenizer, e.prompt), before[e.id]) for e in EDITS)  # bit-exact
    assert not any(m._forward_hooks for m in tiny.modules())


@pytest.mark.slow
def test_weight_editors_of_one_model_share_one_gate_and_see_each_others_edits(llm, tmp_path):
    """The product's MEMIT writes a gated edit, then its ROME corrects the same fact (both at layer 4):
    ROME's value step and closed form see MEMIT's gated column (one gate per model), so the later
    correction is what the model says; undoing both is bit-exact."""
    from kme_chat.methods import Resources, build_editor

    resources = Resources(tmp_path)
    memit, rome = build_editor("memit", llm, resources), build_editor("rome", llm, resources)
    assert memit.gate is rome.gate
    memit.hp.layers, memit.hp.gate, rome.hp.gate = [rome.hp.layer], 0.5, 0.5
    edit = EditRequest("m1", "Danielle Darrieux", "The mother tongue of Danielle Darrieux is", "English", "French")
    again = EditRequest("r1", edit.subject, edit.prompt, "German", "English")
    english, german = (llm.tokenizer(" " + w)["input_ids"][0] for w in ("English", "German"))
    unedited = logits(llm.model, llm.tokenizer, edit.prompt)
    rome.stack(rome.hp.layer)  # ROME's value-step copy exists before MEMIT's edit, as after an earlier correction
    try:
        memit.apply([edit])
        out = logits(llm.model, llm.tokenizer, edit.prompt)
        assert out[english] > out[german]
        rome.apply([again])
        out = logits(llm.model, llm.tokenizer, edit.prompt)
        assert out[german] > out[english]
    finally:
        rome.revert([again])
        memit.revert([edit])
    assert torch.equal(logits(llm.model, llm.tokenizer, edit.prompt), unedited)


@pytest.mark.slow
def test_gated_rome_on_the_packaged_model_changes_the_edit_and_not_the_probes(llm, tmp_path):
    """One gated ROME edit: the prompt and its paraphrase now prefer the new object; the locality
    probes' next-token logits are bit-identical to the unedited model's (every gate stays shut)."""
    from kme_chat.methods import build_editor
    from kme_chat.probes import default_probes

    rome = build_editor("rome", llm)   # the product's ROME, its key statistics cached once per model
    rome.hp.gate = 0.5
    edit = EditRequest("p1", "Danielle Darrieux", "The mother tongue of Danielle Darrieux is", "English", "French",
                       paraphrases=["Danielle Darrieux was born speaking"])
    probes = default_probes()
    before = [logits(llm.model, llm.tokenizer, q) for q in probes]
    unedited = logits(llm.model, llm.tokenizer, edit.prompt)
    new, old = (llm.tokenizer(" " + w)["input_ids"][0] for w in ("English", "French"))
    try:
        rome.apply([edit])
        for text in (edit.prompt, *edit.paraphrases):
            out = logits(llm.model, llm.tokenizer, text)
            assert out[new] > out[old], text
        assert all(torch.equal(logits(llm.model, llm.tokenizer, q), b) for q, b in zip(probes, before))
        # the same fact corrected again: computed on top of the first gated edit, the second wins
        again = EditRequest("p2", edit.subject, edit.prompt, "German", "English")
        rome.apply([again])
        out = logits(llm.model, llm.tokenizer, edit.prompt)
        assert out[llm.tokenizer(" German")["input_ids"][0]] > out[new]
    finally:
        rome.revert([EditRequest("p2", edit.subject, edit.prompt, "German"), edit])
    assert torch.equal(logits(llm.model, llm.tokenizer, edit.prompt), unedited)   # undo is bit-exact


def test_the_gate_is_a_setting_read_from_the_environment(monkeypatch, llm):
    from kme_chat.config import load_settings
    from kme_chat.methods import build_editor

    monkeypatch.delenv("KME_WEIGHT_GATE", raising=False)
    assert load_settings().weight_gate == 0.5                # gated by default
    monkeypatch.setenv("KME_WEIGHT_GATE", "0")
    assert load_settings().weight_gate == 0.0                # written into the weights
    monkeypatch.setenv("KME_WEIGHT_GATE", "half")
    with pytest.raises(ValueError, match="KME_WEIGHT_GATE must be a number"):
        load_settings()
    monkeypatch.setenv("KME_WEIGHT_GATE", "1.5")
    with pytest.raises(ValueError, match=r"weight_gate must be in \[0, 1\)"):
        load_settings()
    original = llm.settings
    llm.settings = original.with_overrides(weight_gate=0.0)
    try:
        assert build_editor("rome", llm).hp.gate == 0.0
    finally:
        llm.settings = original


def test_an_assistants_own_settings_choose_the_gate_not_the_shared_models(llm, tmp_path):
    from kme_chat.assistant import Assistant

    assert llm.settings.weight_gate == 0.5
    a = Assistant.open(llm.settings.with_overrides(data_dir=str(tmp_path / "d"), weight_gate=0.0), llm)
    try:
        assert a.editor("rome").hp.gate == 0.0 and a.editor("memit").hp.gate == 0.0
    finally:
        a.log.close()
