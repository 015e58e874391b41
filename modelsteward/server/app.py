"""``create_app``: one FastAPI app with ``/api``, ``/v1`` (the gateway), the console, health and metrics.

Nothing is opened at import: ``create_app(steward)`` uses the caller's steward (tests), while
``create_app(settings)`` or ``create_app()`` opens one in the factory (the gateway's routes need
it when they are mounted) and the app's shutdown closes it.
Errors are always JSON ``{"code", "message", "details"}`` (HTML pages for console routes); a
StewardError keeps its code and HTTP status, an unexpected error is logged with its traceback
and answered 500 ``internal_error`` with no trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelsteward.context import Steward, open_steward
from modelsteward.errors import StewardError
from modelsteward.server.deps import ApiError
from modelsteward.settings import Settings

__all__ = ["create_app"]

log = logging.getLogger("modelsteward.server")


def create_app(
    target: Steward | Settings | None = None, *, gateway: bool = True, metrics_cache_seconds: float = 10.0,
) -> FastAPI:
    """Build the app.  ``target``: an open Steward (the caller closes it), or Settings / None
    (the environment), in which case the factory opens the workspace and the app's shutdown
    closes it.  With ``gateway`` the OpenAI-compatible routes are mounted at ``/v1`` and the
    gateway's state starts and stops with the app."""
    owned = not isinstance(target, Steward)
    steward = target if isinstance(target, Steward) else open_steward(target)
    gw_state = _gateway_state(steward) if gateway else None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = getattr(app.state, "control_loop", None)  # set by `steward serve` (server/controlloop.py)
        checks: asyncio.Task[None] | None = None
        try:
            if gw_state is not None:
                await gw_state.start()
            if loop is not None:
                loop.start()
            if getattr(app.state, "startup_checks", False):  # set by `steward serve`: in the background,
                checks = asyncio.create_task(_startup_checks(steward), name="startup-checks")  # never delays readiness
            yield
        finally:
            if checks is not None:
                checks.cancel()
            if loop is not None:
                loop.stop()
            if gw_state is not None:
                await gw_state.stop()
            if owned:
                steward.close()

    app = _App(
        title="Model Steward", version=_version(), lifespan=lifespan, debug=False, docs_url=None, redoc_url=None,
        description="Management API of Model Steward: use cases, models, scans, evaluations, fine-tuning, "
        "rollouts, guardrails, approvals and the agent.  Authenticate with `Authorization: Bearer <token>` "
        "(`steward tokens create`).  Roles: viewer < operator < approver < admin.  The OpenAI-compatible "
        "gateway is served at `/v1` with its own keys (`steward keys create`).",
    )
    from modelsteward.server.metrics import ServerMetrics

    app.body_limit = steward.settings.max_request_bytes
    app.state.steward = steward
    app.state.gateway_state = gw_state
    from modelsteward.server.tasks import TaskRegistry

    app.state.tasks = TaskRegistry()
    app.state.metrics = ServerMetrics(steward, cache_seconds=metrics_cache_seconds, gateway=gw_state)

    _install_errors(app)
    _install_middleware(app)

    from modelsteward.agent import runner  # noqa: F401 - registers the agent with the tools (agent_run, show_status)
    from modelsteward.server.actions import router as actions_router
    from modelsteward.server.api import router as api_router
    from modelsteward.server.chat import router as chat_router
    from modelsteward.server.console import mount_console
    from modelsteward.server.health import router as health_router
    from modelsteward.server.tasks import router as tasks_router
    from modelsteward.server.toolroutes import build_tool_router

    app.include_router(health_router)
    app.include_router(api_router)
    app.include_router(actions_router)
    app.include_router(tasks_router)
    app.include_router(chat_router)
    app.include_router(build_tool_router())
    if gw_state is not None:
        from modelsteward.gateway import gateway_router

        app.include_router(gateway_router(gw_state))
    mount_console(app)
    return app


class RequestTooLarge(StarletteHTTPException):
    """Raised from ``receive`` once a streamed body passes the limit (FastAPI passes HTTP errors through)."""

    def __init__(self, limit: int, size: int | None = None) -> None:
        what = f"Request body of {size} bytes" if size is not None else "Request body"
        super().__init__(413, f"{what} exceeds the limit of {limit} bytes (STEWARD_MAX_REQUEST_BYTES); "
                         "send a smaller body.")


class BodyLimit:
    """Pure ASGI middleware, outermost: refuses a body over ``limit`` bytes before it is read.

    A ``Content-Length`` over the limit is answered 413 at once, before routing and authentication;
    a body without one (chunked) is counted as it is received and refused once it passes the limit.
    ``/v1/`` is left to the gateway, which enforces the same limit with OpenAI-shaped errors.
    """

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        limit = self.limit
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    size = int(value)
                except ValueError:
                    await _send_json(send, 400, {"code": "invalid_input", "message": "Content-Length is not a number."})
                    return
                if size > limit:
                    await _send_json(send, 413, {"code": "request_too_large", "message": RequestTooLarge(limit, size).detail})
                    return
        seen = 0
        started = False

        async def counted() -> Any:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise RequestTooLarge(limit)
            return msg

        async def watch(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watch)
        except RequestTooLarge as exc:  # only when no handler inside answered it
            if started:
                raise
            await _send_json(send, 413, {"code": "request_too_large", "message": exc.detail})


async def _send_json(send: Any, status: int, body: dict[str, Any]) -> None:
    import orjson

    data = orjson.dumps(body)
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": data})


class _App(FastAPI):
    """FastAPI with ``BodyLimit`` outside every other middleware (exception handlers included)."""

    body_limit: int = 1_000_000

    def build_middleware_stack(self) -> Any:
        return BodyLimit(super().build_middleware_stack(), self.body_limit)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("modelsteward")
    except PackageNotFoundError:
        return "0"


async def _startup_checks(steward: Steward) -> None:
    """One warning line per live or fallback model whose check fails (``tools.checks.startup_problems``:
    side by side, about ``STARTUP_TIMEOUT_S`` in all), after the server started; models whose key
    variable is unset have the gateway's own warning instead."""
    from modelsteward.tools.base import ToolContext
    from modelsteward.tools.checks import startup_problems

    try:
        lines = await asyncio.to_thread(startup_problems, ToolContext(steward=steward, actor="server:startup"))
    except Exception as exc:  # noqa: BLE001 - a check that cannot run must not stop the server; say so
        log.warning("serve: the start-up model checks did not run: %s", exc)
        return
    for line in lines:
        log.warning("serve: %s.", line)


def _gateway_state(steward: Steward) -> Any:
    from modelsteward.gateway import GatewayState

    return GatewayState(steward, own_steward=False)


def _error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=body, headers=headers)


_MACHINE_PATHS = ("/api", "/v1", "/metrics", "/healthz", "/readyz", "/openapi.json")


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith(_MACHINE_PATHS) and "text/html" in request.headers.get("accept", "")


def _console_404(request: Request) -> bool:
    """An unknown URL outside the API answers the console's HTML 404 page unless the client asks
    for JSON only (``Accept: application/json`` without ``text/html``)."""
    accept = request.headers.get("accept", "")
    return not request.url.path.startswith(_MACHINE_PATHS) and (
        "text/html" in accept or "application/json" not in accept)


def _install_errors(app: FastAPI) -> None:
    from modelsteward.server.console import render_error

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if _wants_html(request):
            return render_error(request, exc.status, exc.code, exc.message)
        return _error(exc.status, exc.to_dict(), headers)

    @app.exception_handler(StewardError)
    async def steward_error(request: Request, exc: StewardError) -> Response:
        status = exc.http_status if 200 <= exc.http_status < 600 else 500
        if _wants_html(request):
            return render_error(request, status, exc.code, exc.message)
        body = exc.to_dict()
        body["details"] = _jsonable_details(body.get("details"))
        if status >= 500 and exc.code in ("steward_error", "config_error"):
            log.error("steward error on %s %s: %s", request.method, request.url.path, exc.message)
        return _error(status, body)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        msg = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:10]) or "invalid request"
        return _error(422, {"code": "invalid_input", "message": f"Invalid request: {msg}", "details": {"errors": errors}})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden",
                 413: "request_too_large"}
        if request.url.path.startswith("/v1/") and exc.status_code in (404, 405) \
                and getattr(request.app.state, "gateway_state", None) is not None:  # the gateway's: OpenAI's shape
            from modelsteward.gateway.errors import route_error

            return route_error(exc.status_code, request.method, request.url.path, getattr(exc, "headers", None))
        code = codes.get(exc.status_code, "http_error")
        msg = exc.detail if isinstance(exc.detail, str) else code
        if _wants_html(request) or (exc.status_code == 404 and _console_404(request)):
            if exc.status_code == 404 and msg == "Not Found":
                msg = f"There is no page at {request.url.path}; start from the console's home page (/)."
            return render_error(request, exc.status_code, code, msg)
        if exc.status_code == 404 and msg == "Not Found":
            msg = f"No route {request.method} {request.url.path}; see /docs for the API."
        return _error(exc.status_code, {"code": code, "message": msg}, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        ref = uuid.uuid4().hex[:12]
        log.exception("unhandled error %s on %s %s", ref, request.method, request.url.path)
        if _wants_html(request):
            return render_error(request, 500, "internal_error", f"Internal error (reference {ref}).")
        return _error(500, {"code": "internal_error", "message": f"Internal error (reference {ref}); see the server log."})


def _jsonable_details(details: Any) -> Any:
    if details is None:
        return None
    from modelsteward.server.views import jsonable

    try:
        import json

        return json.loads(json.dumps(jsonable(details), default=str))
    except (TypeError, ValueError):
        return {"note": "details not serialisable"}


class _Observe:
    """Pure ASGI middleware: counts and times API and console requests (not /v1: the gateway
    logs its own, and a wrapper must not get in the way of its streams)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            metrics = getattr(scope.get("app").state, "metrics", None) if scope.get("app") else None
            if metrics is not None:
                metrics.observe(scope.get("method", ""), path, status[0], time.perf_counter() - start)


def _install_middleware(app: FastAPI) -> None:
    app.add_middleware(_Observe)
