"""C = E[k kᵀ]: second moment of the inputs k to an MLP down-projection, over a text sample.

No Wikipedia here. The sample is factual sentences found offline (known facts and zsRE questions
in ../shared/data, which are not the CounterFact edits we evaluate on), else text the model writes
itself (152 s for 128 x 96 tokens here; edit quality was the same, README). Cached on disk by model
fingerprint and layer.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import torch

from .hooks import thread_hook

SEEDS = ["The", "In", "A", "It", "He", "She", "When", "This", "There", "My", "We", "After", "According to",
         "The city of", "The company", "In 1990,", "Scientists", "The history of", "Many people", "One of the"]


@torch.no_grad()
def sample_text(model, tokenizer, sequences: int, tokens: int, seed: int = 0, batch: int = 64) -> list[str]:
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    texts = []
    tokenizer.padding_side = "left"
    try:
        for start in range(0, sequences, batch):
            seeds = [SEEDS[(start + i) % len(SEEDS)] for i in range(min(batch, sequences - start))]
            enc = tokenizer(seeds, return_tensors="pt", padding=True)
            out = model.generate(**enc, do_sample=True, top_k=50, max_new_tokens=tokens,
                                 pad_token_id=tokenizer.pad_token_id)
            texts += tokenizer.batch_decode(out, skip_special_tokens=True)
    finally:
        tokenizer.padding_side = "right"
        torch.random.set_rng_state(generator_state)
    return texts


@torch.no_grad()
def second_moments(model, tokenizer, texts: Sequence[str], layers: Sequence[int], batch: int = 16) -> dict[int, torch.Tensor]:
    sums = {l: None for l in layers}
    count = 0
    captured: dict[int, torch.Tensor] = {}
    hooks = []
    for layer in layers:
        def grab(mod, args, output=None, layer=layer):
            captured[layer] = args[0].detach()
        hooks.append(thread_hook(model.model.layers[layer].mlp.down_proj, grab, kind="pre"))
    for h in hooks:
        h.__enter__()
    try:
        for start in range(0, len(texts), batch):
            enc = tokenizer(list(texts[start:start + batch]), return_tensors="pt", padding=True, truncation=True,
                            max_length=256)
            model(**enc)
            mask = enc["attention_mask"].bool()
            for layer in layers:
                keys = captured[layer][mask]
                s = (keys.T @ keys).double()
                sums[layer] = s if sums[layer] is None else sums[layer] + s
            count += int(mask.sum())
    finally:
        for h in hooks:
            h.__exit__(None, None, None)
    return {l: (s / count).float() for l, s in sums.items()}


def offline_sentences(folder: Path, limit: int) -> list[str]:
    """Known facts (prompt + attribute) and zsRE questions with their answers, as plain sentences."""
    sentences = []
    known, zsre = folder / "known_1000.json", folder / "zsre_mend_train-1k.json"
    if known.is_file():
        sentences += [f"{r['prompt']} {r['attribute']}." for r in json.loads(known.read_text())]
    if zsre.is_file():
        sentences += [f"{r['src']} {r['answers'][0]}." for r in json.loads(zsre.read_text()) if r.get("answers")]
    return sentences[:limit]


class CovarianceCache:
    """C per layer, computed once per model and kept on disk."""

    def __init__(self, model, tokenizer, directory: Path, fingerprint: str, sequences: int, tokens: int,
                 progress: Callable[[str], None] | None = None, text_folder: Path | None = None,
                 texts: Sequence[str] | None = None):
        self.model, self.tokenizer = model, tokenizer
        self.directory, self.fingerprint = Path(directory), fingerprint
        self.sequences, self.tokens = sequences, tokens
        self.progress = progress or (lambda msg: None)
        self._memory: dict[int, torch.Tensor] = {}
        if texts is not None:  # a sample chosen by the caller (the sample-size benchmark)
            self.texts, self.source = list(texts), f"given{len(texts)}"
        else:
            self.texts = offline_sentences(Path(text_folder), 100_000) if text_folder else []
            self.source = f"offline{len(self.texts)}" if self.texts else f"self{sequences}x{tokens}"

    def path(self, layer: int) -> Path:
        return self.directory / f"{self.fingerprint}-L{layer}-{self.source}.pt"

    def put(self, layer: int, c: torch.Tensor) -> None:
        """Use this C for a layer in this process (not saved): for comparing samples."""
        self._memory[layer] = c

    def get(self, layers: Sequence[int]) -> dict[int, torch.Tensor]:
        missing = [l for l in layers if l not in self._memory and not self.path(l).is_file()]
        if missing:
            self.progress(f"computing key statistics for layers {missing} (once per model)")
            texts = self.texts or sample_text(self.model, self.tokenizer, self.sequences, self.tokens)
            self.directory.mkdir(parents=True, exist_ok=True)
            for layer, c in second_moments(self.model, self.tokenizer, texts, missing).items():
                tmp = self.path(layer).with_suffix(".tmp")
                torch.save(c, tmp)
                tmp.replace(self.path(layer))
        for layer in layers:
            if layer not in self._memory:
                self._memory[layer] = torch.load(self.path(layer))
        return {l: self._memory[l] for l in layers}
