"""OpenAI-shaped error bodies: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from modelsteward.errors import StewardError

__all__ = ["GatewayError", "error_body", "error_response", "route_error", "ROUTES"]

# what the gateway serves, named in the error for a route it does not
ROUTES = "POST /v1/chat/completions, GET /v1/models, POST /v1/feedback"

_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    429: "insufficient_quota",
    502: "api_error",
    503: "server_error",
}


class GatewayError(StewardError):
    """An error answered to the client in the OpenAI shape (raised inside the gateway only): a
    ``StewardError`` with the HTTP status and code the gateway chose.

    ``model``: the last model tried, when one was (for the server's log line; never sent)."""

    model: str | None = None

    def __init__(self, status: int, message: str, *, code: str, param: str | None = None,
                 type_: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.http_status = status
        self.code = code
        self.param = param
        self.type = type_ or _TYPES.get(status, "api_error")
        self.headers = headers or {}

    def response(self, request_id: str | None = None) -> Response:
        return error_response(self.status, self.message, code=self.code, param=self.param, type_=self.type,
                              headers={**self.headers, **({"x-request-id": request_id} if request_id else {})})


def error_body(message: str, *, code: str, param: str | None = None, type_: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_response(status: int, message: str, *, code: str, param: str | None = None, type_: str | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    body = error_body(message, code=code, param=param, type_=type_ or _TYPES.get(status, "api_error"))
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def route_error(status: int, method: str, path: str, headers: dict[str, str] | None = None) -> Response:
    """An unknown ``/v1`` route (404) or a known one with the wrong method (405), in OpenAI's shape."""
    if status == 405:
        return error_response(405, f"{method} is not allowed on {path}; the gateway serves {ROUTES}.",
                              code="method_not_allowed", type_="invalid_request_error", headers=headers)
    if status == 404:
        return error_response(404, f"Unknown route {method} {path}; the gateway serves {ROUTES}.",
                              code="unknown_url", type_="invalid_request_error", headers=headers)
    return error_response(status, f"{method} {path}: HTTP {status}.", code="http_error", headers=headers)
