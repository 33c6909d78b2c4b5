"""The value step's shortcut on a tiny random Llama: the forward that stops below a layer, and the
copy of the layers above it, compute exactly what the whole model computes."""
import copy

import torch

from editors.weights.batching import right_padded
from editors.weights.compute_value import SplitBatch
from editors.weights.upper_stack import UpperStack, hidden_below
from tests.test_rome import tiny  # noqa: F401  (the module fixture)

TEXTS = ["The mother tongue of Danielle Darrieux is English", "Toko Yasuda plays the piano"]


def _rows(llm):
    return right_padded([llm.tokenizer(t)["input_ids"] for t in TEXTS], llm.tokenizer.pad_token_id)


def test_hidden_below_is_the_full_forwards_hidden_state(tiny, llm):  # noqa: F811
    ids, mask = _rows(llm)
    with torch.no_grad():
        full = tiny.model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    for layer in range(len(tiny.model.layers) + 1):
        assert torch.allclose(hidden_below(tiny, layer, ids, mask), full[layer], atol=1e-6), layer


def test_upper_stack_with_a_cached_prefix_gives_the_models_logits(tiny, llm):  # noqa: F811
    """Prefix through the stack into a cache, suffix through the stack from the cache: the same
    next-token logits as the whole model on whole rows, in float32 exactly, in bfloat16 closely."""
    sequences = [llm.tokenizer(t)["input_ids"] for t in TEXTS]
    cuts = [5, 3]
    batch = SplitBatch(sequences, cuts, llm.tokenizer.pad_token_id)
    ids, mask = _rows(llm)
    with torch.no_grad():
        expected = tiny(input_ids=ids, attention_mask=mask).logits
        for dtype, tolerance in ((torch.float32, 1e-4), (torch.bfloat16, 0.1)):
            stack = UpperStack(tiny, 2, dtype)
            assert stack.body.layers[0].self_attn.config._attn_implementation == "eager"
            assert tiny.model.layers[2].self_attn.config._attn_implementation != "eager"  # its own copy
            cache, suffix_below = batch.start(tiny, stack, 2)
            hidden = batch.suffix_hidden(stack, cache, suffix_below)
            logits = stack.lm_head(hidden).float()
            for row, (seq, cut) in enumerate(zip(sequences, cuts)):
                got = logits[row, :len(seq) - cut]
                assert torch.allclose(got, expected[row, cut:len(seq)], atol=tolerance), (dtype, row)


def test_upper_stack_of_an_int8_model_is_dense_and_follows_edits_after_sync(tiny, llm):  # noqa: F811
    quantised = torch.ao.quantization.quantize_dynamic(copy.deepcopy(tiny), {torch.nn.Linear}, dtype=torch.qint8)
    for layer in quantised.model.layers:  # as the served model: down-projections stay float
        layer.mlp.down_proj = copy.deepcopy(tiny.model.layers[0].mlp.down_proj)
    stack = UpperStack(quantised, 1, torch.float32)
    assert all(type(m) is torch.nn.Linear for layer in stack.body.layers for m in layer.modules()
               if "Linear" in type(m).__name__)
    x = torch.randn(1, 3, tiny.config.hidden_size, requires_grad=True)
    stack.run(x, torch.ones(1, 3, dtype=torch.long), torch.arange(3)[None]).last_hidden_state.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0          # gradients flow through the copy
    with torch.no_grad():
        quantised.model.layers[2].mlp.down_proj.weight.add_(1.0)  # an edit to the model...
    assert not torch.equal(stack.mlp(2).down_proj.weight, quantised.model.layers[2].mlp.down_proj.weight)
    stack.sync()                                                  # ... reaches the copy on sync
    assert torch.equal(stack.mlp(2).down_proj.weight, quantised.model.layers[2].mlp.down_proj.weight)


def test_auto_value_dtype_is_bfloat16_only_where_the_cpu_multiplies_it_natively(tiny, monkeypatch):  # noqa: F811
    """On a CPU with AVX2 alone bfloat16 is emulated (a ROME edit took 12.4 s there against
    1.9 s in float32, README), so "auto" must not pick it; it is the default, and a layer copy made
    without a dtype follows it; named dtypes pass through."""
    from editors.weights.hparams import ROMEHyperParams
    from editors.weights.upper_stack import value_dtype

    assert ROMEHyperParams().value_dtype == "auto"
    assert value_dtype("bfloat16") is torch.bfloat16 and value_dtype("float32") is torch.float32
    for avx512_bf16, amx, expected in ((False, False, torch.float32), (True, False, torch.bfloat16),
                                       (False, True, torch.bfloat16)):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        assert value_dtype("auto") is expected
        stack = UpperStack(tiny, 2)
        assert stack.dtype is expected and stack.body.layers[0].mlp.down_proj.weight.dtype is expected
