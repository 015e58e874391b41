"""The gateway's HTTP surface: ``/v1/chat/completions``, ``/v1/models``, ``/v1/feedback``.

Routes are plain Starlette endpoints (no FastAPI dependency injection or pydantic on the hot
path; the request is validated by hand with errors naming the field).  Checks run in this order:
413 oversized -> 401 key -> 400 body -> 404 use case -> 403 key not bound to it -> 429 budget
-> 503 no allocation -> upstream (fallback) -> 502.  Streaming answers are SSE chunks ending in
``data: [DONE]``; usage is always requested upstream (for the log) and passed on only when the
client asked with ``stream_options.include_usage``.  Responses carry ``x-request-id`` (the id
to send to ``POST /v1/feedback``); a completion's ``id`` is the same id.  Which model and role
answered (``x-steward-model``, ``x-steward-role``, the body's ``model``) is told only when the
operator sets ``STEWARD_EXPOSE_ROUTE_HEADERS=1``; otherwise ``model`` echoes what the client sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, FastAPI
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from modelsteward.errors import StewardError
from modelsteward.exchange import StreamAssembler
from modelsteward.gateway.core import GatewayOptions, GatewayState
from modelsteward.gateway.errors import GatewayError, error_body, route_error
from modelsteward.gateway.events import failure
from modelsteward.gateway.keys import ADMIN_TOKEN_PREFIX, hash_key
from modelsteward.gateway.logrow import gateway_row, tokens
from modelsteward.gateway.schemas import CHAT_DOC, CHAT_OPENAPI, FeedbackIn, FeedbackOut, GatewayErrorBody, \
    feedback_error
from modelsteward.gateway.routing import KeyInfo
from modelsteward.gateway.wire import JSONAnswer, RequestIds

if TYPE_CHECKING:
    from modelsteward.context import Steward

__all__ = ["create_gateway_app", "gateway_router", "GatewayFastPath", "validate_chat_body"]

log = logging.getLogger("modelsteward.gateway")

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost", "::ffff:127.0.0.1"})
_ROLES = frozenset({"system", "user", "assistant", "tool", "developer", "function"})
_JSON = "application/json"


def _bad(message: str, param: str | None, code: str = "invalid_value") -> GatewayError:
    return GatewayError(400, message, code=code, param=param)


def _number(body: dict[str, Any], name: str, lo: float, hi: float) -> None:
    v = body.get(name)
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise _bad(f"'{name}' must be a number between {lo:g} and {hi:g}, got {v!r}.", name)


def validate_chat_body(raw: bytes) -> dict[str, Any]:
    """Parse and check a chat-completions body; a 400 names the offending field."""
    if not raw:
        raise _bad("The request body is empty; send a JSON object with 'model' and 'messages'.", None, "missing_body")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _bad(f"The request body is not valid JSON: {exc}.", None, "invalid_json") from None
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.", None, "invalid_json")
    model = body.get("model")
    if model is None:
        raise _bad("Missing required field 'model' (the use case name, or use_case@model_id).", "model", "missing_field")
    if not isinstance(model, str) or not model.strip() or model.startswith("@"):
        raise _bad(f"'model' must be a use case name (or use_case@model_id), got {model!r}.", "model")
    msgs = body.get("messages")
    if msgs is None:
        raise _bad("Missing required field 'messages' (a list of chat messages).", "messages", "missing_field")
    if not isinstance(msgs, list) or not msgs:
        raise _bad("'messages' must be a non-empty list of chat messages.", "messages")
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise _bad(f"'messages[{i}]' must be an object with 'role' and 'content'.", f"messages[{i}]")
        role = m.get("role")
        if role not in _ROLES:
            raise _bad(f"'messages[{i}].role' must be one of {', '.join(sorted(_ROLES))}, got {role!r}.",
                       f"messages[{i}].role")
        content = m.get("content")
        if content is None and role not in ("assistant", "function", "tool"):
            raise _bad(f"'messages[{i}].content' is required for role {role!r}.", f"messages[{i}].content",
                       "missing_field")
        if content is not None and not isinstance(content, (str, list)):
            raise _bad(f"'messages[{i}].content' must be a string or a list of content parts.",
                       f"messages[{i}].content")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _bad(f"'stream' must be true or false, got {stream!r}.", "stream")
    for name in ("max_tokens", "max_completion_tokens"):
        v = body.get(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise _bad(f"'{name}' must be a positive integer, got {v!r}.", name)
    n = body.get("n")
    if n is not None and n != 1:
        raise _bad(f"'n' must be 1 (the gateway returns one choice), got {n!r}.", "n")
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise _bad(f"'user' must be a string, got {user!r}.", "user")
    opts = body.get("stream_options")
    if opts is not None and not isinstance(opts, dict):
        raise _bad("'stream_options' must be an object like {\"include_usage\": true}.", "stream_options")
    return body


_WANTED = frozenset({b"authorization", b"content-length", b"api-key", b"x-api-key"})


def _headers(scope: Scope) -> dict[str, str]:
    """The request headers the gateway reads (names are lower-case in ASGI)."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in _WANTED}


def _sent_keys(headers: Mapping[str, str]) -> list[str]:
    """The candidate keys of a request, in order: bearer (or bare) ``Authorization``, ``x-api-key``, ``api-key``."""
    out: list[str] = []
    auth = (headers.get("authorization") or "").strip()
    if auth[:7].lower() == "bearer ":
        auth = auth[7:].strip()
    for v in (auth, (headers.get("x-api-key") or "").strip(), (headers.get("api-key") or "").strip()):
        if v and " " not in v and v not in out:
            out.append(v)
    return out


def _host(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else ""


def _refused(exc: GatewayError, rid: str | None, body: dict[str, Any] | None, t0: float | None) -> Response:
    """The error answer, after one structured log line (``events.failure``) naming it."""
    model = body.get("model") if body else None
    failure("request_failed", request_id=rid or "-", use_case=model.split("@", 1)[0] if isinstance(model, str) else None,
            model=exc.model, status=exc.status, latency_ms=(time.perf_counter() - t0) * 1000 if t0 else 0.0,
            error=exc.message, code=exc.code)
    return exc.response(rid)


class _ASGIEndpoint:
    """Marks a method as a raw ASGI app for Starlette's ``Route`` (no request/response wrapping)."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.fn(scope, receive, send)


def _sse(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


class _Routes:
    """The endpoint functions, bound to one ``GatewayState``."""

    def __init__(self, state: GatewayState) -> None:
        self.state = state
        self.expose = state.opts.expose_route_headers
        self.request_id = RequestIds()

    # ------------------------------------------------------------------ common checks
    async def authorize(self, headers: Mapping[str, str], host: str) -> KeyInfo | None:
        """The gateway key of the request (None: a loopback client while no keys exist); 401 otherwise.

        The key is read from ``Authorization: Bearer <key>``, a bare ``Authorization: <key>``,
        ``x-api-key`` or ``api-key`` (the first of these that is a known key wins, so an SDK sending a
        placeholder bearer token next to ``x-api-key`` works).  A key missing from the in-memory routing
        table is looked up in the registry before it is refused (``GatewayState.find_key``): a key works
        the moment ``steward keys create`` returns."""
        snap = self.state.snapshot
        auth = headers.get("authorization") or ""
        if auth[:7].lower() == "bearer ":  # the usual case first, as cheap as before
            info = snap.keys.get(hash_key(auth[7:].strip()))
            if info is not None:
                return info
        sent = _sent_keys(headers)
        for key in sent:
            info = snap.keys.get(hash_key(key))
            if info is not None:
                return info
        found: KeyInfo | str = "unknown"
        for key in sent:
            found = await self.state.find_key(hash_key(key))
            if isinstance(found, KeyInfo):
                return found
            if found != "unknown":
                break
        if not snap.any_keys and found != "revoked":
            if host in LOOPBACK_HOSTS or host.startswith("127."):
                return None
            raise GatewayError(401, "No gateway keys exist, so this gateway serves loopback clients only; "
                               "create a key with `steward keys create --name NAME` and send it as "
                               "'Authorization: Bearer <key>'.", code="invalid_api_key")
        if not sent:
            raise GatewayError(401, "Missing gateway key: send 'Authorization: Bearer <key>' (or 'x-api-key: <key>'; "
                               "create one with `steward keys create`).", code="missing_api_key")
        key = sent[0]
        if any(k.startswith(ADMIN_TOKEN_PREFIX) for k in sent) and found == "unknown":
            raise GatewayError(401, "The key sent is an admin API token (stw_...), not a gateway key; create a "
                               "gateway key for the application with `steward keys create --name NAME "
                               "--use-case USE_CASE` and send that.", code="invalid_api_key")
        shown = f"{key[:14]}..." if len(key) > 14 else "sent"
        if found == "revoked":
            raise GatewayError(401, f"The gateway key {shown} was revoked; create a new one with "
                               "`steward keys create`.", code="invalid_api_key")
        if found == "unchecked":  # rate-limited: say so rather than call the key wrong
            raise GatewayError(401, f"The gateway key {shown} could not be checked just now (too many unknown keys "
                               "in the last second); retry in a second.", code="invalid_api_key",
                               headers={"retry-after": "1"})
        what = f"No gateway key {shown} exists" if len(key) > 14 else "The gateway key sent does not exist"
        raise GatewayError(401, f"{what} in this workspace; check it, or create one with "
                           "`steward keys create`.", code="invalid_api_key")

    @staticmethod
    def allowed(key: KeyInfo | None, use_case: str) -> None:
        if key is not None and key.use_cases and use_case not in key.use_cases:
            raise GatewayError(403, f"Gateway key {key.name!r} may not use use case {use_case!r}; it is bound to "
                               f"{', '.join(sorted(key.use_cases))}.", code="use_case_not_allowed", param="model")

    async def read_body(self, headers: Mapping[str, str], receive: Receive) -> bytes:
        limit = self.state.max_request_bytes
        cl = headers.get("content-length")
        if cl is not None:
            try:
                size = int(cl)
            except ValueError:
                raise _bad("Content-Length is not a number.", None, "invalid_header") from None
            if size > limit:
                raise GatewayError(413, f"Request body of {size} bytes exceeds the limit of {limit} bytes "
                                   "(STEWARD_MAX_REQUEST_BYTES).", code="request_too_large")
        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                raise GatewayError(400, "The client disconnected while sending the body.", code="client_disconnected")
            part = msg.get("body", b"")
            if part:
                size += len(part)
                if size > limit:
                    raise GatewayError(413, f"Request body exceeds the limit of {limit} bytes "
                                       "(STEWARD_MAX_REQUEST_BYTES).", code="request_too_large")
                chunks.append(part)
            if not msg.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    # ------------------------------------------------------------------ endpoints
    async def chat_completions(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        resp = await self.chat_response(headers, _host(scope), receive)
        await resp(scope, receive, send)

    async def chat_request(self, request: Request) -> Response:
        """``POST /v1/chat/completions`` through the router (the documented route)."""
        return await self.chat_response(_headers(request.scope), _host(request.scope), request.receive)

    async def chat_response(self, headers: Mapping[str, str], host: str, receive: Receive) -> Response:
        rid = self.request_id()
        t0 = time.perf_counter()
        body: dict[str, Any] = {}
        try:
            raw = await self.read_body(headers, receive)
            key = await self.authorize(headers, host)
            body = validate_chat_body(raw)
            route, pinned = self.state.route_for(body["model"].strip())
            self.allowed(key, route.name)
            if self.state.spend.exceeded(route.name, route.budget_usd):
                raise GatewayError(
                    429, f"Use case {route.name!r} has spent its monthly budget of ${route.budget_usd} "
                    f"(${self.state.spend.spent(route.name):.4f} so far this month); raise it with "
                    "`steward usecase` or wait for next month.", code="budget_exceeded", type_="insufficient_quota",
                )
            meta: dict[str, Any] = {}
            if key is not None:
                meta["key"] = key.name
            if body.get("user"):
                meta["user"] = body["user"]
            if pinned:
                meta["pinned"] = True
            if body.get("stream"):
                meta["stream"] = True
                return await self._stream(route, pinned, body, rid, meta)
            served = await self.state.complete(route, pinned, body, rid, meta)
        except GatewayError as exc:
            return _refused(exc, rid, body, t0)
        except StewardError as exc:
            err = GatewayError(exc.http_status if exc.http_status >= 400 else 500, exc.message, code=exc.code)
            return _refused(err, rid, body, t0)
        except Exception as exc:  # noqa: BLE001 - a bug must still answer in the OpenAI shape
            log.exception("gateway: unexpected error on request %s", rid)
            return _refused(GatewayError(500, f"Internal gateway error ({type(exc).__name__}); see the gateway log for "
                                         f"request {rid}.", code="internal_error", type_="api_error"), rid, body, t0)
        resp = served.response
        resp["id"] = rid
        if self.expose:
            resp["model"] = served.model.id
            extra = [(b"x-steward-model", served.model.id.encode()), (b"x-steward-role", served.role.encode())]
        else:
            resp["model"], extra = body["model"], []
            resp.pop("system_fingerprint", None)
        return JSONAnswer(orjson.dumps(resp), rid, extra)

    async def _stream(self, route: Any, pinned: str | None, body: dict[str, Any], rid: str,
                      meta: dict[str, Any]) -> Response:
        it, first, info, role, n, t0, ts = await self.state.open_stream(route, pinned, body, rid, meta)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        state = self.state
        expose = self.expose
        shown = info.id if expose else body["model"]

        async def events() -> AsyncIterator[bytes]:
            asm = StreamAssembler()  # the answer as the client receives it, tool-call deltas included
            pieces = 0  # deltas with content or tool calls: the output tokens when the upstream reports none
            error, logged = None, False
            created = int(time.time())

            def fix(chunk: dict[str, Any]) -> dict[str, Any]:
                nonlocal pieces, created
                asm.add(chunk)
                chunk.pop("usage", None)
                chunk["id"], chunk["model"] = rid, shown
                if not expose:
                    chunk.pop("system_fingerprint", None)
                created = chunk.get("created", created)
                for c in chunk.get("choices") or ():
                    d = c.get("delta") or {}
                    if d.get("content") or d.get("tool_calls"):
                        pieces += 1
                return chunk

            def write_log() -> None:
                nonlocal logged
                if logged:
                    return
                logged = True
                state.log_row(gateway_row(
                    ts=ts, request_id=rid, use_case=route.name, model_id=info.id, role=role, body=body,
                    latency_ms=(time.perf_counter() - t0) * 1000, answer=asm.answer(), usage=asm.usage, info=info,
                    error=error, min_output_tokens=pieces, metadata={**meta, "attempt": n} if n > 1 else meta))

            try:
                if first is not None:
                    chunk = fix(first)
                    if chunk.get("choices"):
                        yield _sse(chunk)
                async for chunk in it:
                    chunk = fix(chunk)
                    if chunk.get("choices"):
                        yield _sse(chunk)
            except StewardError as exc:
                error = f"failed mid-stream: {exc.message}"[:2000]
                state.cooldowns.failure(info.id)
                failure("stream_failed", request_id=rid, use_case=route.name, model=info.id,
                        status=getattr(exc, "status", None), latency_ms=(time.perf_counter() - t0) * 1000, error=error)
                yield _sse(error_body(error, code="upstream_error", type_="api_error"))
            except Exception as exc:  # noqa: BLE001 - a bug mid-stream still ends the stream with an error event
                log.exception("gateway: unexpected error mid-stream on request %s", rid)
                error = f"failed mid-stream: internal error ({type(exc).__name__})"
                yield _sse(error_body(error, code="internal_error", type_="api_error"))
            except BaseException:
                error = "client disconnected before the end of the stream"
                write_log()
                raise
            if include_usage:
                n_in, n_out = tokens(asm.usage)
                n_out = n_out or pieces
                yield _sse({"id": rid, "object": "chat.completion.chunk", "created": created, "model": shown,
                            "choices": [], "usage": {"prompt_tokens": n_in, "completion_tokens": n_out,
                                                     "total_tokens": n_in + n_out}})
            write_log()
            yield b"data: [DONE]\n\n"

        # the client has the id with the first bytes; its row is written when the stream ends
        state.remember_owner(rid, route.name, meta.get("key"))
        headers = {"x-request-id": rid, "cache-control": "no-cache"}
        if expose:
            headers.update({"x-steward-model": info.id, "x-steward-role": role})
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    async def models(self, scope: Scope, receive: Receive, send: Send) -> None:
        await (await self.models_response(_headers(scope), _host(scope)))(scope, receive, send)

    async def models_response(self, headers: Mapping[str, str], host: str) -> Response:
        try:
            key = await self.authorize(headers, host)
        except GatewayError as exc:
            return _refused(exc, None, None, None)
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "model-steward",
             "live": [{"model_id": m, "weight": w, "role": r} for m, w, r in route.live]}
            for name, route in sorted(self.state.snapshot.routes.items())
            if key is None or not key.use_cases or name in key.use_cases
        ]
        return Response(orjson.dumps({"object": "list", "data": data}), media_type=_JSON)

    async def feedback(self, request: Request) -> Response:
        """Rate an answer: ``{"request_id", "score" (-1..1), "comment"?}``; see ``FeedbackIn``."""
        return await self.feedback_response(_headers(request.scope), _host(request.scope), request.receive)

    async def feedback_response(self, headers: Mapping[str, str], host: str, receive: Receive) -> Response:
        try:
            raw = await self.read_body(headers, receive)
            key = await self.authorize(headers, host)
            try:
                body = orjson.loads(raw or b"null")
            except orjson.JSONDecodeError:
                raise _bad("The request body is not valid JSON.", None, "invalid_json") from None
            if not isinstance(body, dict):
                raise _bad("The body must be an object with 'request_id' and 'score'.", None, "invalid_json")
            try:
                fb = FeedbackIn.model_validate(body)
            except ValidationError as exc:
                message, param, code = feedback_error(exc)
                raise _bad(message, param, code) from None
            await self.check_feedback_owner(key, fb.request_id)
            self.state.logs.record_feedback(fb.request_id, float(fb.score), fb.comment)
        except GatewayError as exc:
            return _refused(exc, None, None, None)
        except StewardError as exc:
            return _refused(GatewayError(400, exc.message, code=exc.code), None, None, None)
        out = FeedbackOut(request_id=fb.request_id, score=float(fb.score))
        return Response(orjson.dumps(out.model_dump()), media_type=_JSON)

    async def check_feedback_owner(self, key: KeyInfo | None, rid: str) -> None:
        """Feedback only for a request this gateway answered, and only from the key that made it."""
        owner = await self.state.request_owner(rid)
        if owner is None:
            raise GatewayError(404, f"No request {rid!r} was answered by this gateway; send the x-request-id "
                               "(or id) of a completion.", code="request_not_found", param="request_id")
        use_case, made_by = owner
        self.allowed(key, use_case)
        mine = key.name if key is not None else None
        if made_by != mine:
            who = f"gateway key {made_by!r}" if made_by else "a client without a gateway key"
            raise GatewayError(403, f"Request {rid!r} was made by {who}; only that key may rate it.",
                               code="feedback_not_allowed", param="request_id")

    async def status(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.authorize(_headers(scope), _host(scope))
        except GatewayError as exc:
            await _refused(exc, None, None, None)(scope, receive, send)
            return
        await Response(orjson.dumps(self.state.status()), media_type=_JSON)(scope, receive, send)


def gateway_router(state: GatewayState) -> APIRouter:
    """The gateway routes for mounting into another app (call ``state.start()``/``stop()`` from its lifespan).

    For full speed also wrap the finished app with ``GatewayFastPath(app, state)``: it answers
    ``POST /v1/chat/completions`` before the app's middleware and router run.
    """
    r = _Routes(state)
    router = APIRouter()
    for path, fn, method in (("/v1/models", r.models, "GET"), ("/v1/gateway/status", r.status, "GET")):
        router.add_route(path, _ASGIEndpoint(fn), methods=[method], include_in_schema=False)  # type: ignore[arg-type]
    err = {"model": GatewayErrorBody}
    router.add_api_route(  # documented in /openapi.json; `steward serve` answers it on the fast path first
        "/v1/chat/completions", r.chat_request, methods=["POST"], tags=["gateway"],
        summary="OpenAI-compatible chat completions (the gateway)", response_model=None,
        description=CHAT_DOC, openapi_extra=CHAT_OPENAPI, responses={
            200: {"description": "An OpenAI chat.completion object, or with `stream: true` SSE "
                  "`chat.completion.chunk` events ending in `data: [DONE]`; the `x-request-id` header is the id to "
                  "rate with `POST /v1/feedback`."},
            400: {**err, "description": "Bad body: `param` names the field."},
            401: {**err, "description": "Missing, unknown or revoked gateway key (or an admin API token sent instead)."},
            403: {**err, "description": "The key may not use this use case."},
            404: {**err, "description": "No such use case (`model` names a use case)."},
            413: {**err, "description": "Body over STEWARD_MAX_REQUEST_BYTES."},
            429: {**err, "description": "The use case's monthly budget is spent."},
            502: {**err, "description": "Every upstream attempt failed (see the server log)."},
            503: {**err, "description": "The use case has no live model."},
        })
    router.add_api_route(
        "/v1/feedback", r.feedback, methods=["POST"], response_model=FeedbackOut, tags=["gateway"],
        summary="Rate an answer of the gateway",
        description=(
            "Attach a user's score (-1..1, the latest counts) to an answer, by the `x-request-id` header (or `id`) "
            "of the completion. Authenticate like `/v1/chat/completions` (`Authorization: Bearer <gateway key>`; "
            "none from loopback while no keys exist). Only the key that made the request may rate it. Errors use "
            "OpenAI's shape `{\"error\": {message, type, param, code}}`."),
        openapi_extra={"x-steward-auth": "gateway-key", "requestBody": {"required": True, "content": {
            "application/json": {"schema": FeedbackIn.model_json_schema()}}}},
        responses={
            400: {**err, "description": "Bad body: `param` names the field (invalid_json, missing_field, "
                  "invalid_value, unknown_field)."},
            401: {**err, "description": "Missing, unknown or revoked gateway key."},
            403: {**err, "description": "Another key made the request (`feedback_not_allowed`), or the key may "
                  "not use its use case (`use_case_not_allowed`)."},
            404: {**err, "description": "No answer with this request id (`request_not_found`)."},
            413: {**err, "description": "Body over STEWARD_MAX_REQUEST_BYTES."},
        },
    )
    return router


class GatewayFastPath:
    """ASGI wrapper: ``POST /v1/chat/completions`` straight to the gateway, everything else to ``app``."""

    def __init__(self, app: ASGIApp, state: GatewayState) -> None:
        self.app = app
        self.state = state
        self._chat = _Routes(state).chat_completions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/chat/completions" and scope["method"] == "POST":
            await self._chat(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class _GatewayApp(FastAPI):
    """A FastAPI app whose chat-completions route skips the middleware stack and router."""

    _fast: GatewayFastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self._fast
        if fast is not None and scope["type"] == "http" and scope["path"] == "/v1/chat/completions" \
                and scope["method"] == "POST":
            await fast._chat(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_gateway_app(steward: Steward, *, options: GatewayOptions | None = None,
                       own_steward: bool = False) -> FastAPI:
    """A standalone gateway app (tests, bench, ``python -m modelsteward.gateway``).

    ``app.state.gateway`` is the ``GatewayState``; with ``own_steward`` the steward (and its log
    store) is closed at shutdown, otherwise the store is flushed and the caller closes it.
    """
    state = GatewayState(steward, options, own_steward=own_steward)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    app = _GatewayApp(title="Model Steward gateway", lifespan=lifespan, docs_url=None, redoc_url=None,
                      openapi_url=None)
    app.state.gateway = state
    app.include_router(gateway_router(state))

    @app.exception_handler(StarletteHTTPException)
    async def unknown_route(request: Request, exc: StarletteHTTPException) -> Response:  # 404 / 405, OpenAI's shape
        return route_error(exc.status_code, request.method, request.url.path, getattr(exc, "headers", None))

    app._fast = GatewayFastPath(app, state)
    return app
