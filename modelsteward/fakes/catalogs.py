"""Local HTTP servers that speak the model-catalog APIs at the wire, with fault injection.

One :class:`FakeCatalog` per API (``kind``): ``openrouter`` (``GET /api/v1/models``, served from a
saved real catalog file or dict), ``openai`` (``GET /v1/models``), ``anthropic`` (``GET /v1/models``
with ``x-api-key``/``anthropic-version``, ``has_more``/``after_id`` pages), ``google``
(``GET /v1beta/models``, ``pageToken``/``nextPageToken``), ``huggingface`` (``GET /api/models``,
absolute ``Link: <...>; rel="next"``), ``ollama`` (``GET /api/tags``, ``POST /api/show``).
Error bodies follow each API's documented error shape.  The sample entries are documented shapes
with illustrative values, not recorded responses (OpenRouter's are real: tests/fixtures/catalogs).

``fake.scanner_base`` is what the scanner's base-URL override should be set to.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

__all__ = ["FakeCatalog", "Fault", "SAMPLES", "KINDS"]

Route = tuple[int, Any, dict[str, str]]
KINDS = ("openrouter", "openai", "anthropic", "google", "huggingface", "ollama")


@dataclass
class Fault:
    """Answer matching requests with ``status`` (+ ``retry_after``), a malformed body, or after ``delay`` s.

    ``times=None`` means every matching request; ``path`` is a path prefix (None: any path).
    """

    status: int | None = None
    retry_after: str | None = None
    malformed: bool = False
    delay: float = 0.0
    times: int | None = None
    path: str | None = None


def _openai_model(mid: str, owner: str = "openai") -> dict[str, Any]:
    return {"id": mid, "object": "model", "created": 1_750_000_000, "owned_by": owner}


SAMPLES: dict[str, list[dict[str, Any]]] = {
    "openai": [
        _openai_model("gpt-5-mini"), _openai_model("gpt-5"), _openai_model("gpt-5.4-nano"),
        _openai_model("gpt-legacy-preview"), _openai_model("text-embedding-3-small"), _openai_model("whisper-1"),
        _openai_model("tts-1"), _openai_model("dall-e-3"), _openai_model("omni-moderation-latest"),
    ],
    "anthropic": [
        {"type": "model", "id": mid, "display_name": name, "created_at": "2025-09-29T00:00:00Z"}
        for mid, name in (
            ("claude-opus-4-7", "Claude Opus 4.7"), ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5"),
            ("claude-haiku-4-5-20251001", "Claude Haiku 4.5"), ("claude-3-haiku-20240307", "Claude Haiku 3"),
            ("claude-experimental-1", "Claude Experimental"),
        )
    ],
    "google": [
        {"name": f"models/{mid}", "version": "001", "displayName": disp, "description": disp,
         "inputTokenLimit": ctx, "outputTokenLimit": 65536, "supportedGenerationMethods": methods,
         "temperature": 1.0, "topP": 0.95, "topK": 64, **({"thinking": True} if think else {})}
        for mid, disp, ctx, methods, think in (
            ("gemini-3.5-flash", "Gemini 3.5 Flash", 1048576, ["generateContent", "countTokens"], True),
            ("gemini-3.1-pro-preview", "Gemini 3.1 Pro Preview", 1048576, ["generateContent", "countTokens"], True),
            ("text-embedding-004", "Text Embedding 004", 2048, ["embedContent"], False),
            ("gemma-4-31b-it", "Gemma 4 31B", 262144, ["generateContent"], False),
            ("gemini-3.5-flash-lite", "Gemini 3.5 Flash Lite", 1048576, ["generateContent", "countTokens"], False),
        )
    ],
    "huggingface": [
        {"_id": f"id{i}", "id": mid, "downloads": dl, "likes": dl // 1000, "pipeline_tag": "text-generation",
         "library_name": "transformers", "tags": ["transformers", "text-generation", f"license:{lic}", *extra],
         "createdAt": "2024-11-01T00:00:00.000Z",
         **({"safetensors": {"parameters": {"BF16": total}, "total": total}} if total else {}),
         **({"gguf": {"total": gguf_total, "architecture": "llama", "context_length": 8192}} if gguf_total else {}),
         "config": {"model_type": mtype} if mtype else {}}
        for i, (mid, dl, lic, total, gguf_total, mtype, extra) in enumerate((
            ("Qwen/Qwen2.5-0.5B-Instruct", 900000, "apache-2.0", 494032768, None, "qwen2", []),
            ("HuggingFaceTB/SmolLM2-135M-Instruct", 500000, "apache-2.0", 134515008, None, "llama", []),
            ("meta-llama/Llama-3.2-1B-Instruct", 800000, "llama3.2", 1235814400, None, "llama", []),
            ("bartowski/SmolLM2-1.7B-Instruct-GGUF", 70000, "apache-2.0", None, 1711376384, None, ["gguf"]),
            ("mistralai/Mistral-7B-Instruct-v0.3", 600000, "apache-2.0", 7248023552, None, "mistral", []),
        ))
    ],
    "ollama": [
        {"name": name, "model": name, "modified_at": "2025-05-01T10:00:00Z", "size": size,
         "digest": f"sha256:{i:064x}", "details": {"parent_model": "", "format": "gguf", "family": fam,
                                                   "families": [fam], "parameter_size": psize,
                                                   "quantization_level": quant}}
        for i, (name, size, fam, psize, quant) in enumerate((
            ("llama3.2:latest", 2019393189, "llama", "3.2B", "Q4_K_M"),
            ("qwen2.5:0.5b", 397821319, "qwen2", "494.03M", "Q4_K_M"),
            ("nomic-embed-text:latest", 274302450, "nomic-bert", "137M", "F16"),
            ("llava:7b", 4733363377, "llama", "7B", "Q4_0"),
        ))
    ],
}

_OLLAMA_SHOW = {
    "llama3.2:latest": ({"general.architecture": "llama", "llama.context_length": 131072,
                         "general.parameter_count": 3212749888}, ["completion", "tools"], "LLAMA 3.2 COMMUNITY LICENSE"),
    "qwen2.5:0.5b": ({"general.architecture": "qwen2", "qwen2.context_length": 32768,
                      "general.parameter_count": 494032768}, ["completion", "tools", "insert"], "Apache License"),
    "nomic-embed-text:latest": ({"general.architecture": "nomic-bert", "nomic-bert.context_length": 2048},
                                ["embedding"], "Apache License"),
    "llava:7b": ({"general.architecture": "llama", "llama.context_length": 32768}, ["completion", "vision"],
                 "Apache License"),
}


class FakeCatalog:
    """A catalog API on ``127.0.0.1:<free port>`` in a background thread; a context manager."""

    def __init__(self, kind: str, *, data: Any = None, api_key: str | None = "test-key", page_size: int = 2) -> None:
        if kind not in KINDS:
            raise ValueError(f"Unknown fake catalog kind {kind!r}; known: {', '.join(KINDS)}.")
        self.kind = kind
        self.api_key = api_key
        self.page_size = page_size
        self.faults: list[Fault] = []
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.set_data(data)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- control
    def set_data(self, data: Any) -> None:
        """Replace the catalog: a list of entries, an OpenRouter payload dict, or a JSON file path."""
        if isinstance(data, (str, Path)):
            data = json.loads(Path(data).read_text(encoding="utf-8"))
        if data is None:
            data = {"data": []} if self.kind == "openrouter" else [dict(e) for e in SAMPLES[self.kind]]
        self.data = data

    def inject(self, **fault: Any) -> Fault:
        f = Fault(**fault)
        with self._lock:
            self.faults.append(f)
        return f

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def scanner_base(self) -> str:
        """The scanner's base URL (``STEWARD_<P>_BASE_URL`` / ``HF_ENDPOINT`` / ``OLLAMA_HOST``)."""
        return {"openrouter": f"{self.url}/api/v1", "openai": f"{self.url}/v1"}.get(self.kind, self.url)

    def start(self) -> FakeCatalog:
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"fake-{self.kind}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() waits for serve_forever, so only when started
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FakeCatalog:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if f.path is not None and not path.startswith(f.path):
                    continue
                if f.times is not None:
                    if f.times <= 0:
                        continue
                    f.times -= 1
                return f
        return None

    # ---------------------------------------------------------------- routes: (status, body, headers)
    def route(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
              body: Any) -> tuple[int, Any, dict[str, str]]:
        handler = getattr(self, f"_route_{self.kind}")
        return handler(method, path, query, headers, body)

    def _route_openrouter(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
                  body: Any) -> Route:
        if method == "GET" and path == "/api/v1/models":
            return 200, self.data, {}
        return 404, {"error": {"message": "Not Found", "code": 404}}, {}

    def _route_openai(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
                  body: Any) -> Route:
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                   "param": None, "code": "invalid_api_key"}}, {}
        if method == "GET" and path == "/v1/models":
            return 200, {"object": "list", "data": self.data}, {}
        return 404, {"error": {"message": f"Unknown path {path}", "type": "invalid_request_error"}}, {}

    def _route_anthropic(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
                  body: Any) -> Route:
        if headers.get("x-api-key") != self.api_key:
            return 401, {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}, {}
        if not headers.get("anthropic-version"):
            return 400, {"type": "error", "error": {"type": "invalid_request_error",
                                                    "message": "anthropic-version: header is required"}}, {}
        if method != "GET" or path != "/v1/models":
            return 404, {"type": "error", "error": {"type": "not_found_error", "message": "Not found"}}, {}
        limit = min(int(query.get("limit", 20)), self.page_size)
        ids = [e.get("id") for e in self.data]
        after = query.get("after_id")
        start = ids.index(after) + 1 if after is not None and after in ids else 0
        page = self.data[start:start + limit]
        return 200, {"data": page, "has_more": start + limit < len(self.data),
                     "first_id": page[0].get("id") if page else None,
                     "last_id": page[-1].get("id") if page else None}, {}

    def _route_google(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
                  body: Any) -> Route:
        key = headers.get("x-goog-api-key") or query.get("key")
        if key != self.api_key:
            return 400, {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                                   "status": "INVALID_ARGUMENT",
                                   "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                                "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}}, {}
        if method != "GET" or path != "/v1beta/models":
            return 404, {"error": {"code": 404, "message": "Not found", "status": "NOT_FOUND"}}, {}
        size = min(int(query.get("pageSize", 50)), self.page_size)
        start = int(query.get("pageToken") or 0)
        page = self.data[start:start + size]
        out: dict[str, Any] = {"models": page}
        if start + size < len(self.data):
            out["nextPageToken"] = str(start + size)
        return 200, out, {}

    def _route_huggingface(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
                  body: Any) -> Route:
        if method != "GET" or path != "/api/models":
            return 404, {"error": "Not Found"}, {}
        if self.api_key and headers.get("authorization") not in (None, f"Bearer {self.api_key}"):
            return 401, {"error": "Invalid credentials in Authorization header"}, {}
        entries = [e for e in self.data if not query.get("pipeline_tag")
                   or e.get("pipeline_tag") == query["pipeline_tag"]]
        if query.get("sort") == "downloads":
            entries.sort(key=lambda e: -int(e.get("downloads") or 0))
        size = min(int(query.get("limit") or self.page_size), self.page_size)
        start = int(query.get("cursor") or 0)
        page = entries[start:start + size]
        extra: dict[str, str] = {}
        if start + size < len(entries):
            nxt = [(k, v) for k, v in parse_qsl(query["__raw__"]) if k != "cursor"] + [("cursor", str(start + size))]
            extra["Link"] = f'<{self.url}/api/models?{urlencode(nxt)}>; rel="next"'
        return 200, page, extra

    def _route_ollama(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
                  body: Any) -> Route:
        if method == "GET" and path == "/api/tags":
            return 200, {"models": self.data}, {}
        if method == "POST" and path == "/api/show":
            name = str((body or {}).get("model") or (body or {}).get("name") or "")
            if name and ":" not in name:
                name = f"{name}:latest"
            entry = next((e for e in self.data if e.get("name") == name), None)
            if entry is None:
                return 404, {"error": f"model '{name}' not found"}, {}
            info, caps, licence = _OLLAMA_SHOW.get(name, ({}, ["completion"], ""))
            return 200, {"license": licence, "modelfile": f"FROM {name}\n", "parameters": "", "template": "{{ .Prompt }}",
                         "details": entry.get("details", {}), "model_info": info, "capabilities": caps,
                         "modified_at": entry.get("modified_at")}, {}
        return 404, {"error": "404 page not found"}, {}


def _make_handler(fake: FakeCatalog) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            query["__raw__"] = parts.query
            headers = {k.lower(): v for k, v in self.headers.items()}
            length = int(headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except json.JSONDecodeError:
                body = None
            fake.requests.append({"method": method, "path": parts.path, "query": query, "headers": headers,
                                  "url": self.path})
            fault = fake._take_fault(parts.path)
            extra: dict[str, str] = {}
            if fault is not None and fault.delay:
                time.sleep(fault.delay)
            if fault is not None and fault.status:
                status, payload = fault.status, {"error": {"message": f"injected {fault.status}", "code": fault.status}}
                if fault.retry_after is not None:
                    extra["Retry-After"] = fault.retry_after
            else:
                status, payload, extra = fake.route(method, parts.path, query, headers, body)
            data = json.dumps(payload).encode()
            if fault is not None and fault.malformed:
                data = data[: max(1, len(data) // 2)] + b"<html>"
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def do_GET(self) -> None:  # noqa: N802
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

    return Handler
