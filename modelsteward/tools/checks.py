"""``models_check``: one tiny completion through the real provider path, and the likely fix (issue 29).

The check builds the model's provider exactly as the gateway does (``providers.get_provider``:
base URL, key binding, egress), sends one chat completion with ``max_tokens`` 3 and reports the URL
called, the key variable (and whether it is set *in the process that runs the check*: the server's
for ``POST /api/models/{id}/check``, the shell's for ``steward models check``), the status, the
latency and, when it fails, one line naming the likely fix.  Read-only (it changes nothing in the
registry), but it calls the upstream: the API route needs role operator.
"""

from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from modelsteward.context import ToolContext
from modelsteward.errors import PolicyDenied, StewardError, UpstreamError
from modelsteward.tools.base import InputModel, tool

__all__ = ["ModelCheckIn", "ModelCheckOut", "models_check", "scheme_problem"]

SCHEME_FIX = "the URL needs a scheme (http:// or https://)"
PROMPT = [{"role": "user", "content": "Say OK."}]


class ModelCheckIn(InputModel):
    model_id: str = Field(min_length=1, max_length=300, description="The registry id (provider:model).")


class ModelCheckOut(BaseModel):
    """What one tiny completion showed (``ok`` false: ``fix`` names the likely fix)."""

    model_id: str
    ok: bool
    url: str | None = Field(description="The URL called (the base URL + /chat/completions; 'local' for local models).")
    key_env: str | None = Field(description="The environment variable the model's key is read from (None: none).")
    key_set: bool | None = Field(description="Whether key_env is set in the process that ran the check.")
    status: int | None = Field(description="The HTTP status the upstream answered (None: no answer).")
    latency_ms: float | None
    error: str | None = None
    fix: str | None = Field(default=None, description="The likely fix, one line (None when ok).")


def scheme_problem(url: str | None) -> str | None:
    """One line when ``url`` has no http(s) scheme (``127.0.0.1:8000/v1``), else None."""
    if not url or urlsplit(url.strip()).scheme.lower() in ("http", "https"):
        return None
    return f"{SCHEME_FIX}: use http://{url.strip()} (or https://)"


def _fix(exc: StewardError, base_url: str, key_env: str | None, key_set: bool | None) -> str:
    """The likely fix for a failed check, one line."""
    if isinstance(exc, PolicyDenied):
        return exc.message
    if not isinstance(exc, UpstreamError):
        return exc.message
    status = exc.status if "answered HTTP" in exc.message else None
    path = urlsplit(base_url).path.rstrip("/")
    if status is None and "timed out" in exc.message:
        return "no answer in time: check the server is up and not overloaded (or raise the model's timeout_s)"
    if status is None and "unreachable" in exc.message:
        return f"cannot connect: check host and port ({urlsplit(base_url).netloc})"
    if status in (401, 403):
        if key_env and not key_set:
            return f"set {key_env} in the server's environment"
        if key_env:
            return f"the upstream refused the key in {key_env}: check its value"
        return ("the upstream wants a key: register the model with --api-key-env STEWARD_MODELKEY_NAME and set that "
                "variable in the server's environment")
    if status == 404 and not path.endswith(("/v1", "/openai", "/v1beta")):
        return f"add /v1 to the base URL ({base_url}/v1)"
    if status == 404:
        return "check the model id (the upstream does not know it) and the base URL"
    return exc.message


@tool("models_check", input_model=ModelCheckIn, output_model=ModelCheckOut, mutating=False)
def models_check(ctx: ToolContext, inp: ModelCheckIn) -> ModelCheckOut:
    """Send one tiny completion (max_tokens 3) to a model through the real provider path; report the URL,
    the key variable (set?), the status, the latency and the likely fix."""
    from modelsteward.providers.endpoints import resolve_base_url
    from modelsteward.providers.factory import get_provider, key_variable, run_sync

    model = ctx.steward.registry.get_model(inp.model_id)
    key_env = key_variable(model)
    key_set = bool(os.environ.get(key_env)) if key_env else None
    out: dict[str, Any] = {"model_id": model.id, "key_env": key_env, "key_set": key_set, "status": None,
                           "latency_ms": None}
    if model.provider == "local":
        base_url = url = "local"
    else:
        try:
            base_url = resolve_base_url(model.provider, model.base_url)
        except StewardError as exc:
            return ModelCheckOut(**out, ok=False, url=None, error=exc.message, fix=exc.message)
        url = base_url + "/chat/completions"
        bad = scheme_problem(base_url)
        if bad:
            return ModelCheckOut(**out, ok=False, url=url, error=f"base URL {base_url!r} has no scheme", fix=bad)
    t0 = time.perf_counter()
    try:
        provider = get_provider(model, ctx.steward.settings, registry=ctx.steward.registry)
        run_sync(provider.openai_completion({"model": model.provider_model_id, "messages": PROMPT, "max_tokens": 3}))
    except StewardError as exc:
        latency = round((time.perf_counter() - t0) * 1000, 1)
        status = exc.status if isinstance(exc, UpstreamError) and "answered HTTP" in exc.message else None
        return ModelCheckOut(**{**out, "status": status, "latency_ms": latency}, ok=False, url=url,
                             error=exc.message, fix=_fix(exc, base_url, key_env, key_set))
    latency = round((time.perf_counter() - t0) * 1000, 1)
    return ModelCheckOut(**{**out, "status": None if url == "local" else 200, "latency_ms": latency}, ok=True, url=url)
