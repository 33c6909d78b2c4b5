"""ROME: the algebra on a tiny random Llama, then real edits on the packaged model."""
import pytest
import torch

from editors.base import EditRequest
from editors.weights import deltas
from editors.weights.compute_key import EditInputError
from editors.weights.rank_one import rank_one_update, regularised_inverse


def test_rank_one_update_maps_key_to_value_and_spares_c_orthogonal_keys():
    torch.manual_seed(0)
    w = torch.randn(16, 48)
    samples = torch.randn(500, 48) * torch.linspace(0.2, 2.0, 48)
    c = samples.T @ samples / 500
    c_inv = regularised_inverse(c, 0.0)
    key, value = torch.randn(48), torch.randn(16)
    u, v = rank_one_update(w, c_inv, key, value)
    w_new = w + torch.outer(u, v)
    assert torch.allclose(w_new @ key, value, atol=1e-4)
    other = torch.randn(48)
    other -= (v @ other) / (v @ v) * v          # (C⁻¹k*)ᵀ other = 0
    assert torch.allclose(w_new @ other, w @ other, atol=1e-4)


@pytest.fixture(scope="module")
def tiny(llm):
    """A random 4-layer Llama with the real tokenizer: fast enough for exact algebra checks."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=llm.tokenizer.vocab_size + 20, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2)
    return LlamaForCausalLM(config).eval()


def tiny_rome(tiny, llm, tmp_path):
    from editors.rome import ROME
    from editors.weights.hparams import ROMEHyperParams
    from editors.weights.layer_stats import CovarianceCache

    hp = ROMEHyperParams(layer=1, prefix_count=2, prefix_tokens=3, v_steps=5)
    stats = CovarianceCache(tiny, llm.tokenizer, tmp_path / "stats", "tiny", 8, 8)
    return ROME(tiny, llm.tokenizer, hp, stats, tmp_path / "deltas")


def test_rome_on_a_tiny_llama_hits_its_value_and_undoes_exactly(tiny, llm, tmp_path):
    rome = tiny_rome(tiny, llm, tmp_path)
    original = {k: v.clone() for k, v in tiny.state_dict().items()}
    edit = EditRequest("t1", "Danielle Darrieux", "The mother tongue of Danielle Darrieux is", "English", "French")
    rome.apply([edit])
    (layer, (u, v)), = rome.applied["t1"].items()
    from editors.weights.compute_key import compute_key

    key = compute_key(tiny, llm.tokenizer, layer, edit.prompt, edit.subject, rome.prefixes())
    w_before = original[f"model.layers.{layer}.mlp.down_proj.weight"]
    assert torch.allclose(tiny.model.layers[layer].mlp.down_proj.weight @ key, w_before @ key + u * (v @ key), atol=1e-4)
    assert (tmp_path / "deltas" / "t1.safetensors").is_file()
    rome.revert([edit])
    for name, tensor in tiny.state_dict().items():
        assert torch.allclose(tensor, original[name], atol=1e-6), name
    assert not (tmp_path / "deltas" / "t1.safetensors").exists()


@pytest.mark.parametrize("edit, message", [
    (EditRequest("b1", "Nobody", "The capital of Italy is", "Rome"), "does not occur"),
    (EditRequest("b2", "Italy", "The capital of Italy is", "   "), "empty"),
    (EditRequest("b3", "Italy", "The capital of Italy is", "word " * 200), "at most"),
])
def test_bad_weight_edits_raise_and_leave_the_model_unchanged(tiny, llm, tmp_path, edit, message):
    rome = tiny_rome(tiny, llm, tmp_path)
    original = {k: v.clone() for k, v in tiny.state_dict().items()}
    with pytest.raises(EditInputError, match=message):
        rome.apply([edit])
    assert all(torch.equal(t, original[n]) for n, t in tiny.state_dict().items())


def test_nan_during_optimisation_is_refused(tiny, llm, tmp_path):
    rome = tiny_rome(tiny, llm, tmp_path)
    rome.hp.kl_factor = float("nan")  # the loss turns NaN on the first step
    original = {k: v.clone() for k, v in tiny.state_dict().items()}
    with pytest.raises(EditInputError, match="NaN|not finite"):
        rome.apply([EditRequest("n1", "Italy", "The capital of Italy is", "Milan")])
    assert all(torch.equal(t, original[n]) for n, t in tiny.state_dict().items())


@pytest.mark.slow
def test_rome_edit_on_the_packaged_model_persists_and_holds_when_quantised(llm, tmp_path):
    from kme_chat.assistant import Assistant
    from kme_chat.edit_log import Edit

    settings = llm.settings.with_overrides(data_dir=str(tmp_path / "d"), weight_gate=0.0)  # written into the weights
    prompt = "The mother tongue of Danielle Darrieux is"
    ids = llm.tokenizer(prompt, return_tensors="pt")
    base_weight = llm.down_proj(4).weight.detach().clone()
    a = Assistant.open(settings, llm)
    edit = a.add_edit(Edit(subject="Danielle Darrieux", prompt=prompt, target_new="English", target_true="French",
                           routes=["rome"]))
    new, old = llm.logprob([prompt] * 2, ["English", "French"])
    assert new > old                                           # efficacy on the float model
    assert llm.complete(prompt, 3).strip().startswith("English")
    with torch.no_grad():                                      # ... and on the quantised chat view
        out = llm.chat_model.generate(**ids, max_new_tokens=3, do_sample=False, pad_token_id=llm.tokenizer.pad_token_id)
    assert llm.tokenizer.decode(out[0, ids["input_ids"].shape[1]:]).strip().startswith("English")
    with torch.no_grad():
        edited_logits = llm.model(**ids).logits
    # a "restart": weights back to the base, then a new Assistant on the same data dir re-adds the delta
    for editor in a.editors.values():
        if hasattr(editor, "applied"):
            for factors in editor.applied.values():
                deltas.subtract(llm.model, factors)
    assert torch.allclose(llm.down_proj(4).weight, base_weight, atol=1e-6)
    b = Assistant.open(settings, llm)
    with torch.no_grad():
        assert torch.allclose(llm.model(**ids).logits, edited_logits, atol=1e-5)
    b.undo(edit.id)
    assert torch.allclose(llm.down_proj(4).weight, base_weight, atol=1e-6)


def test_memit_batch_on_a_tiny_llama_applies_and_undoes_each_edit_exactly(tiny, llm, tmp_path):
    from editors.memit import MEMIT
    from editors.weights.hparams import MEMITHyperParams
    from editors.weights.layer_stats import CovarianceCache

    hp = MEMITHyperParams(layers=[1, 2], prefix_count=2, prefix_tokens=3, v_steps=5, mom2_weight=10.0)
    memit = MEMIT(tiny, llm.tokenizer, hp, CovarianceCache(tiny, llm.tokenizer, tmp_path / "s", "tiny", 8, 8),
                  tmp_path / "deltas")
    original = {k: v.clone() for k, v in tiny.state_dict().items()}
    edits = [EditRequest("m1", "Danielle Darrieux", "The mother tongue of Danielle Darrieux is", "English"),
             EditRequest("m2", "Toko Yasuda", "Toko Yasuda plays the instrument", "piano")]
    memit.apply(edits)
    assert set(memit.applied) == {"m1", "m2"} and set(memit.applied["m1"]) == {1, 2}
    changed = [n for n, t in tiny.state_dict().items() if not torch.allclose(t, original[n])]
    assert changed == ["model.layers.1.mlp.down_proj.weight", "model.layers.2.mlp.down_proj.weight"]
    memit.revert([edits[0]])            # one edit of the batch out, the other stays
    assert "m2" in memit.applied and (tmp_path / "deltas" / "m2.safetensors").is_file()
    memit.revert([edits[1]])
    for name, tensor in tiny.state_dict().items():
        assert torch.allclose(tensor, original[name], atol=1e-6), name


def test_causal_trace_on_a_tiny_llama_finds_no_effect_without_noise_and_a_drop_with_it(tiny, llm):
    from editors.weights.causal_trace import trace_mlp

    prompt, subject = "The mother tongue of Danielle Darrieux is", "Danielle Darrieux"
    quiet = trace_mlp(tiny, llm.tokenizer, prompt, subject, "French", noise=0.0, samples=2, window=3)
    assert len(quiet["indirect_effect"]) == 4
    assert quiet["p_corrupt"] == pytest.approx(quiet["p_clean"], rel=1e-4)  # the batched rows match the clean run
    assert max(abs(x) for x in quiet["indirect_effect"]) < 1e-6
    noisy = trace_mlp(tiny, llm.tokenizer, prompt, subject, "French", noise=5.0, samples=2, window=3)
    assert noisy["p_corrupt"] != pytest.approx(noisy["p_clean"], rel=1e-3)


def test_batched_value_step_and_keys_equal_one_edit_at_a_time(tiny, llm, monkeypatch):
    """MEMIT optimises many edits' δ in one batch (rebuilt from the rows already run as edits
    finish): each δ must be what the one-edit optimisation gives, and each batched key what the
    one-edit key is."""
    from editors.weights import compute_value
    from editors.weights.compute_key import compute_key, compute_keys
    from editors.weights.compute_value import ValueJob, compute_deltas
    from editors.weights.hparams import ROMEHyperParams

    # On this random model the third edit's NLL falls below 10.70 after one step and the others'
    # never do: one edit stops early and the batch is rebuilt without it.
    hp = ROMEHyperParams(v_steps=12, v_stop_nll=10.70, v_lr=0.5, clamp_norm=1000.0, value_dtype="float32")
    layouts, starts = [], []

    class CountedLayout(compute_value._Layout):
        def __init__(self, model, stack, layer, rows, jobs, pad_id, parent=None):
            layouts.append(list(jobs))
            super().__init__(model, stack, layer, rows, jobs, pad_id, parent)

    real_start = compute_value.SplitBatch.start
    monkeypatch.setattr(compute_value, "_Layout", CountedLayout)
    monkeypatch.setattr(compute_value.SplitBatch, "start", lambda *a: starts.append(1) or real_start(*a))
    prefixes = ["", "Hello there. "]
    edits = [("Danielle Darrieux", "The mother tongue of Danielle Darrieux is", "English"),
             ("Toko Yasuda", "Toko Yasuda plays the instrument", "piano"),
             ("Autonomous University of Madrid", "Autonomous University of Madrid is in", "Sweden"),
             ("Thomas Joannes Stieltjes", "Thomas Joannes Stieltjes was born in", "the city of Paris, France")]
    keys = compute_keys(tiny, llm.tokenizer, 1, [(p, s) for s, p, _ in edits], prefixes, rows_per_forward=3)
    w_ks = keys @ tiny.model.layers[1].mlp.down_proj.weight.detach().T
    jobs = [ValueJob([x + p for x in prefixes], f"{s} is a", s, t) for s, p, t in edits]
    together = compute_deltas(tiny, llm.tokenizer, 1, jobs, w_ks, hp, rebatch_below=1.0)
    assert layouts == [[0, 1, 2, 3], [0, 1, 3]]
    assert len(starts) == 1  # the rebuilt batch selects the first one's cached rows: no layer runs again
    for i, ((s, p, t), job) in enumerate(zip(edits, jobs)):
        assert torch.allclose(keys[i], compute_key(tiny, llm.tokenizer, 1, p, s, prefixes), atol=1e-5)
        alone = compute_deltas(tiny, llm.tokenizer, 1, [job], w_ks[i:i + 1], hp)[0]
        assert alone.norm() > 0
        assert torch.allclose(together[i], alone, atol=1e-4, rtol=1e-3), s


def test_keys_and_subject_states_read_on_cut_rows_equal_those_on_whole_prompts(tiny, llm):
    """The key and subject-state forwards stop at the subject's last token: what the whole prompt
    gives there, read off a forward over every token."""
    from editors.memit import MEMIT
    from editors.weights.compute_key import compute_keys, subject_last_token
    from editors.weights.upper_stack import input_of

    prefixes = ["", "Hello there. "]
    edits = [EditRequest(id="a", subject="Danielle Darrieux", prompt="The mother tongue of Danielle Darrieux is",
                         target_new="English"),
             EditRequest(id="b", subject="Toko Yasuda", prompt="Toko Yasuda plays the instrument", target_new="piano")]
    keys = compute_keys(tiny, llm.tokenizer, 1, [(e.prompt, e.subject) for e in edits], prefixes)
    memit = MEMIT.__new__(MEMIT)  # only its model and tokenizer are read
    memit.model, memit.tokenizer = tiny, llm.tokenizer
    states = memit._hidden_at(edits, 1)
    down_proj = tiny.model.layers[1].mlp.down_proj
    for i, e in enumerate(edits):
        whole = []
        for prefix in prefixes:
            ids = torch.tensor([llm.tokenizer(prefix + e.prompt)["input_ids"]])
            at = subject_last_token(llm.tokenizer, prefix + e.prompt, e.subject)
            assert at < ids.shape[1] - 1  # the prompt goes on after the subject: the cut drops tokens
            whole.append(input_of(tiny, down_proj, ids, torch.ones_like(ids))[0, at])
        assert torch.allclose(keys[i], torch.stack(whole).mean(0), atol=1e-5), e.subject
        ids = torch.tensor([llm.tokenizer(e.prompt)["input_ids"]])
        with torch.no_grad():
            full = tiny.model(input_ids=ids, output_hidden_states=True).hidden_states[2]  # layer 1's output
        assert torch.allclose(states[:, i], full[0, subject_last_token(llm.tokenizer, e.prompt, e.subject)], atol=1e-5)


def test_a_batch_rebuilt_twice_from_selected_rows_scores_as_one_built_afresh(tiny, llm):
    """Edits leave a running batch at different steps: the batch of the rest, selected from the
    selected one, gives the same losses as a batch made for them from scratch."""
    from editors.weights.compute_value import ValueJob, _job_rows, _Layout
    from editors.weights.hparams import ROMEHyperParams
    from editors.weights.upper_stack import UpperStack

    hp = ROMEHyperParams(value_dtype="float32")
    texts = [("Danielle Darrieux", "The mother tongue of Danielle Darrieux is", "English"),
             ("Toko Yasuda", "Hello there. Toko Yasuda plays the instrument", "piano"),
             ("Autonomous University of Madrid", "Autonomous University of Madrid is in", "Sweden"),
             ("Thomas Joannes Stieltjes", "Thomas Joannes Stieltjes was born in", "the city of Paris, France")]
    rows = [_job_rows(llm.tokenizer, ValueJob([p, "Once. " + p], f"{s} is a", s, t), hp) for s, p, t in texts]
    stack, pad = UpperStack(tiny, 1, torch.float32), llm.tokenizer.pad_token_id
    twice = _Layout(tiny, stack, 1, rows, range(4), pad).subset([0, 1, 3]).subset([1, 3])
    fresh = _Layout(tiny, stack, 1, rows, [1, 3], pad)
    delta = torch.randn(4, tiny.config.hidden_size)
    with torch.no_grad():
        with twice.with_delta(delta):
            nll_twice, essence_twice = twice.nll_and_essence()
        with fresh.with_delta(delta):
            nll_fresh, essence_fresh = fresh.nll_and_essence()
    assert torch.allclose(nll_twice, nll_fresh, atol=1e-4) and torch.allclose(essence_twice, essence_fresh, atol=1e-4)
    assert not torch.allclose(nll_twice[0], nll_twice[1])  # two different edits, each read at its own rows


def test_line_search_value_step_lowers_each_edits_nll_within_the_clamp(tiny, llm):
    """The line-search value step (`v_method="line_search"`): each edit's δ lowers its own target
    NLL, stays within the clamp norm, and does not depend on the other edits in the batch."""
    from editors.weights.compute_key import compute_keys
    from editors.weights.compute_value import ValueJob, _job_rows, _Layout, compute_deltas
    from editors.weights.hparams import ROMEHyperParams
    from editors.weights.upper_stack import UpperStack

    hp = ROMEHyperParams(v_method="line_search", v_rounds=2, v_stop_nll=0.0, value_dtype="float32", clamp_norm=4.0)
    prefixes = ["", "Hello there. "]
    edits = [("Danielle Darrieux", "The mother tongue of Danielle Darrieux is", "English"),
             ("Toko Yasuda", "Toko Yasuda plays the instrument", "piano"),
             ("Autonomous University of Madrid", "Autonomous University of Madrid is in", "Sweden")]
    keys = compute_keys(tiny, llm.tokenizer, 1, [(p, s) for s, p, _ in edits], prefixes)
    w_ks = keys @ tiny.model.layers[1].mlp.down_proj.weight.detach().T
    jobs = [ValueJob([x + p for x in prefixes], f"{s} is a", s, t) for s, p, t in edits]
    deltas = compute_deltas(tiny, llm.tokenizer, 1, jobs, w_ks, hp)

    stack = UpperStack(tiny, 1, torch.float32)
    layout = _Layout(tiny, stack, 1, [_job_rows(llm.tokenizer, j, hp) for j in jobs], range(3),
                     llm.tokenizer.pad_token_id)

    def nll_with(delta):
        with torch.no_grad(), layout.with_delta(delta):
            return layout.nll_and_essence()[0]

    before, after = nll_with(torch.zeros_like(deltas)), nll_with(deltas)
    assert (after < before).all(), (before, after)
    assert (deltas.norm(dim=1) <= hp.clamp_norm * w_ks.norm(dim=1) * (1 + 1e-5)).all()
    for i, job in enumerate(jobs):
        alone = compute_deltas(tiny, llm.tokenizer, 1, [job], w_ks[i:i + 1], hp)[0]
        assert torch.allclose(deltas[i], alone, atol=1e-4, rtol=1e-3), edits[i][0]
