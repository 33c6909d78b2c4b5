"""LocalLLM on the packaged model: chat, streaming, scoring, the shared editable modules."""
import pytest
import torch

pytestmark = pytest.mark.slow


def test_chat_and_stream_agree(llm):
    from kme_chat.chat import ChatEngine

    messages, _ = ChatEngine(llm).build("What is the capital of France?")
    parts = list(llm.stream_chat(messages, max_new_tokens=12))
    assert len(parts) > 1 and all(parts[i + 1].startswith(parts[i]) for i in range(len(parts) - 1))
    assert "Paris" in parts[-1]
    assert llm.chat(messages, max_new_tokens=12) == parts[-1].strip()


def test_scores_prefer_the_true_continuation(llm):
    new, old = llm.logprob(["The capital of France is"] * 2, ["Paris", "Banana"])
    assert new > old
    assert llm.teacher_forced_argmax(["The capital of France is"], ["Paris"]) == \
        llm.teacher_forced_argmax(["The capital of France is"], ["Paris"])


def test_one_resident_copy_is_int8_with_float_down_projections(llm):
    """The default: the chat model is the only copy; what edits write (down_proj) stays float."""
    assert llm.chat_model is llm.model
    for layer in llm.model.model.layers:
        assert type(layer.mlp.down_proj) is torch.nn.Linear and layer.mlp.down_proj.weight.dtype == torch.float32
        assert isinstance(layer.self_attn.q_proj, torch.ao.nn.quantized.dynamic.Linear)
        assert isinstance(layer.mlp.up_proj, torch.ao.nn.quantized.dynamic.Linear)


def test_keeping_the_float_model_shares_the_editable_layers_and_answers_the_same(settings_factory):
    """With `keep_float` (evaluation) the float model is kept beside the int8 chat view, which shares
    its down-projections; the chat's answers to the locality probes are the same either way."""
    from kme_chat.chat import ChatEngine
    from kme_chat.model import LocalLLM
    from kme_chat.probes import default_probes

    both = LocalLLM.load(settings_factory(keep_float=True))
    assert both.chat_model is not both.model
    for layer in range(both.num_layers):
        assert both.chat_model.model.layers[layer].mlp.down_proj is both.down_proj(layer)
    assert type(both.model.model.layers[0].self_attn.q_proj) is torch.nn.Linear
    fresh = LocalLLM.load(settings_factory())  # not the session's model, which other tests edit and undo
    one, two = ChatEngine(fresh), ChatEngine(both)
    for question in default_probes():
        assert one.answer(question) == two.answer(question), question


def test_langchain_runnable_composes(llm):
    from langchain_core.runnables import RunnableLambda

    from kme_chat.chat import ChatEngine

    chain = RunnableLambda(lambda country: f"What is the capital of {country}?") | ChatEngine(llm).as_runnable()
    assert "Paris" in chain.invoke("France")
    assert "Paris" in "".join(chain.stream("France"))
