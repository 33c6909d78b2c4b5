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


def test_quantised_chat_view_shares_the_editable_layers(llm):
    assert llm.chat_model is not llm.model
    for layer in range(llm.num_layers):
        assert llm.chat_model.model.layers[layer].mlp.down_proj is llm.down_proj(layer)
    q_proj = llm.chat_model.model.layers[0].self_attn.q_proj
    assert not isinstance(q_proj, torch.nn.Linear) or type(q_proj) is not torch.nn.Linear


def test_langchain_runnable_composes(llm):
    from langchain_core.runnables import RunnableLambda

    from kme_chat.chat import ChatEngine

    chain = RunnableLambda(lambda country: f"What is the capital of {country}?") | ChatEngine(llm).as_runnable()
    assert "Paris" in chain.invoke("France")
    assert "Paris" in "".join(chain.stream("France"))
