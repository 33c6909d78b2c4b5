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


@pytest.mark.parametrize("method", ["stream_chat", "stream_chat_contrast"])
def test_a_stream_stepped_from_several_threads_frees_the_model(llm, method, monkeypatch):
    """Gradio steps a generator from whichever worker thread is free, those threads all alive. The
    model lock must be free when the answer ends, closed early or read to its end, whatever thread
    took each step: the context-aware decoder once held it across its steps, and the app hung."""
    import threading

    from kme_chat.chat import ChatEngine

    monkeypatch.setattr(llm, "lock", threading.RLock())  # a lock left held fails this test alone
    messages, _ = ChatEngine(llm).build("What is the capital of France?")
    args = (messages, messages) if method == "stream_chat_contrast" else (messages,)
    release = threading.Event()  # the stepping threads stay alive, as a pool's do, until the end

    def on_a_new_thread(call, *a):
        result, ran = [], threading.Event()

        def work():
            try:
                result.append(call(*a))
            except Exception as exc:  # handed to the test's thread
                result.append(exc)
            ran.set()
            release.wait()
        threading.Thread(target=work, daemon=True).start()
        assert ran.wait(120), "a step of the stream did not return"
        if isinstance(result[0], Exception):
            raise result[0]
        return result[0]

    try:
        for stop_after in (2, None):  # closed after two pieces, or read to the end
            stream = getattr(llm, method)(*args, max_new_tokens=8)
            pieces = []
            while (piece := on_a_new_thread(next, stream, None)) is not None and len(pieces) + 1 != stop_after:
                pieces.append(piece)
            on_a_new_thread(stream.close)
            assert pieces and "Paris" in pieces[-1] if stop_after is None else len(pieces) == 1
            # whoever answered lets go of the model within a token's time
            assert llm.lock.acquire(timeout=30), "the model lock is still held after the answer ended"
            llm.lock.release()
    finally:
        release.set()


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


def _resident_bytes_of_mapping(address: int) -> int:
    """Rss of the memory map that holds `address` (/proc/self/smaps)."""
    inside = False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split()[0]
            if "-" in head and all(c in "0123456789abcdef-" for c in head):  # a map's first line
                start, end = (int(x, 16) for x in head.split("-"))
                inside = start <= address < end
            elif inside and line.startswith("Rss:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no memory map holds the weights")


def test_only_the_kept_float_tensors_stay_resident_from_the_weights_file(settings_factory):
    """The kept float tensors point into the memory-mapped weights file; the pages of the tensors
    quantised away leave resident memory, and the kept ones are untouched."""
    from kme_chat.model import LocalLLM

    fresh = LocalLLM.load(settings_factory())
    down = fresh.down_proj(0).weight
    kept = {(t.data_ptr(), t.numel() * t.element_size()) for t in fresh.model.parameters() if t.dtype == torch.float32}
    kept_bytes = sum(size for _, size in kept)
    resident = _resident_bytes_of_mapping(down.data_ptr())
    assert resident <= kept_bytes + 2 * 2**20, (resident, kept_bytes)  # was the whole file (~540 MB)
    from safetensors import safe_open

    from kme_chat.model import _float_copy

    weights_file = _float_copy(fresh.source, fresh.settings.cache_path) / "model.safetensors"
    with safe_open(str(weights_file), framework="pt") as f:
        assert torch.equal(f.get_tensor("model.layers.0.mlp.down_proj.weight"), down)


def test_langchain_runnable_composes(llm):
    from langchain_core.runnables import RunnableLambda

    from kme_chat.chat import ChatEngine

    chain = RunnableLambda(lambda country: f"What is the capital of {country}?") | ChatEngine(llm).as_runnable()
    assert "Paris" in chain.invoke("France")
    assert "Paris" in "".join(chain.stream("France"))
