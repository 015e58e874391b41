"""Pydantic models of the gateway's own routes (``POST /v1/feedback``), for validation and ``/docs``.

Chat completions stay hand-validated on the hot path (``app.validate_chat_body``); feedback is
not hot, so its body is a pydantic model whose errors become OpenAI-shaped 400s naming the field.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

__all__ = ["FeedbackIn", "FeedbackOut", "GatewayErrorBody", "feedback_error", "CHAT_DOC", "CHAT_OPENAPI"]


class FeedbackIn(BaseModel):
    """A user's rating of one answer of the gateway."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"request_id": "chatcmpl-3f2a9c0d1e4b5a6978c1d2e3", "score": 1, "comment": "helpful"}]})

    request_id: StrictStr = Field(min_length=1, max_length=200, description=(
        "The `x-request-id` response header (or the completion's `id`) of an answer this gateway gave."))
    score: float = Field(ge=-1, le=1, strict=True, description="-1 (bad) .. 1 (good); the latest score counts.")
    comment: StrictStr | None = Field(default=None, max_length=2000, description="Optional free text.")


class FeedbackOut(BaseModel):
    """The feedback was recorded against the request's log row."""

    ok: Literal[True] = True
    request_id: str
    score: float


class _ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str


class GatewayErrorBody(BaseModel):
    """OpenAI's error shape, as every gateway route answers errors."""

    error: _ErrorDetail


def feedback_error(exc: ValidationError) -> tuple[str, str | None, str]:
    """(message, param, code) of the first problem in a feedback body."""
    e: Any = exc.errors()[0]
    loc = [str(p) for p in e.get("loc", ())]
    field = loc[0] if loc else None
    got = e.get("input")
    kind = e.get("type", "")
    if kind == "extra_forbidden":
        return (f"Unknown field {field!r}; the body takes request_id, score and comment.", field, "unknown_field")
    if kind == "missing":
        if field == "request_id":
            return ("'request_id' is required: the x-request-id (or id) of a completion.", field, "missing_field")
        return (f"'{field}' is required: a number within -1..1.", field, "missing_field")
    if field == "score":
        return (f"'score' must be a number within -1..1, got {got!r}.", field, "invalid_value")
    if field == "request_id":
        return (f"'request_id' must be the x-request-id (or id) of a completion (a string of 1..200 characters), "
                f"got {got!r}.", field, "invalid_value")
    if field == "comment":
        return ("'comment' must be a string of at most 2000 characters.", field, "invalid_value")
    return (f"Invalid feedback body: {e.get('msg', 'invalid')}.", field, "invalid_value")


# ``POST /v1/chat/completions`` in /openapi.json (the route itself validates by hand: app.validate_chat_body)
CHAT_DOC = (
    "Send OpenAI chat-completions requests here with any OpenAI SDK: `base_url` is this server's `/v1`, `model` is "
    "the use case's name (or `use_case@model_id` to pin a live or fallback model). Authenticate with "
    "`Authorization: Bearer <gateway key>` (`steward keys create`; `x-api-key` or `api-key` also work; none from "
    "loopback while no keys exist). Errors use OpenAI's shape `{\"error\": {message, type, param, code}}`.")
CHAT_OPENAPI: dict[str, Any] = {"x-steward-auth": "gateway-key", "requestBody": {"required": True, "content": {
    "application/json": {"schema": {
        "type": "object", "required": ["model", "messages"], "additionalProperties": True,
        "properties": {
            "model": {"type": "string", "description": "The use case's name, or use_case@model_id."},
            "messages": {"type": "array", "minItems": 1, "items": {"type": "object"}},
            "stream": {"type": "boolean"}, "max_tokens": {"type": "integer", "minimum": 1},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "top_p": {"type": "number", "minimum": 0, "maximum": 1}, "user": {"type": "string"},
            "stream_options": {"type": "object"}}},
        "example": {"model": "support-chat", "messages": [{"role": "user", "content": "Hello"}]}}}}}
