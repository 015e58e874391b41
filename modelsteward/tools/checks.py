"""``models_check``: one tiny completion through the real provider path, and the likely fix (issue 29);
the same check run by itself before a model takes traffic, and at ``steward serve`` start-up.

The check builds the model's provider exactly as the gateway does (``providers.get_provider``:
base URL, key binding, egress), sends one chat completion with ``max_tokens`` 3 and reports the URL
called, the key variable (and whether it is set *in the process that runs the check*: the server's
for ``POST /api/models/{id}/check``, the shell's for ``steward models check``), the status, the
latency and, when it fails, one line naming the likely fix.  Read-only (it changes nothing in the
registry), but it calls the upstream: the API route needs role operator.

Before a model takes traffic (``require_check``, the ``check`` hook of ``deploy`` (every strategy,
shadow included: a shadow costs a call per mirrored request, and a shadow that cannot answer only
produces failed rows), ``usecase_add`` with ``model`` / ``fallback``, ``usecase_update`` with new
``fallback`` models, and ``rollout_advance`` when it promotes a canary to 100 %) the check runs and a
failure refuses the change with ``CheckFailed`` (HTTP 424, CLI exit 1) naming the fix; nothing
changes.  ``no_check`` skips it (an agent's ``no_check`` needs a human approval: policy
``agent_no_check``).  An HTTP model gets the tiny completion with a bound of ``CHECK_TIMEOUT_S``; a
local model is checked cheaply, its weights resolved on disk (``providers.factory.local_problem``)
without loading them: a load costs seconds, and the same files load when traffic comes.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from modelsteward.context import ToolContext
from modelsteward.errors import CheckFailed, PolicyDenied, StewardError, UpstreamError
from modelsteward.tools.base import InputModel, tool

__all__ = ["ModelCheckIn", "ModelCheckOut", "models_check", "scheme_problem", "run_check", "require_check",
           "require_checks", "startup_problems", "CHECK_TIMEOUT_S", "STARTUP_TIMEOUT_S"]

SCHEME_FIX = "the URL needs a scheme (http:// or https://)"
PROMPT = [{"role": "user", "content": "Say OK."}]
CHECK_TIMEOUT_S = 20.0  # the check before a model takes traffic: a bound on its one completion
STARTUP_TIMEOUT_S = 5.0  # the checks at `steward serve` start-up, run side by side


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


def _complete(provider: Any, model_id: str, timeout_s: float | None) -> None:
    """The one tiny completion; ``timeout_s`` bounds it (an ``UpstreamError`` saying it timed out)."""
    from modelsteward.providers.factory import run_sync

    coro = provider.openai_completion({"model": model_id, "messages": PROMPT, "max_tokens": 3})
    if timeout_s is None:
        run_sync(coro)
        return
    try:
        run_sync(asyncio.wait_for(coro, timeout_s))
    except (asyncio.TimeoutError, TimeoutError) as exc:
        raise UpstreamError(f"the check timed out after {timeout_s:g} s") from exc


def run_check(ctx: ToolContext, model_id: str, timeout_s: float | None = None) -> ModelCheckOut:
    """What ``models_check`` reports for ``model_id`` (``timeout_s``: a bound on the completion)."""
    from modelsteward.providers.endpoints import resolve_base_url
    from modelsteward.providers.factory import get_provider, key_variable

    model = ctx.steward.registry.get_model(model_id)
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
        _complete(provider, model.provider_model_id, timeout_s)
    except StewardError as exc:
        latency = round((time.perf_counter() - t0) * 1000, 1)
        status = exc.status if isinstance(exc, UpstreamError) and "answered HTTP" in exc.message else None
        return ModelCheckOut(**{**out, "status": status, "latency_ms": latency}, ok=False, url=url,
                             error=exc.message, fix=_fix(exc, base_url, key_env, key_set))
    latency = round((time.perf_counter() - t0) * 1000, 1)
    return ModelCheckOut(**{**out, "status": None if url == "local" else 200, "latency_ms": latency}, ok=True, url=url)


@tool("models_check", input_model=ModelCheckIn, output_model=ModelCheckOut, mutating=False)
def models_check(ctx: ToolContext, inp: ModelCheckIn) -> ModelCheckOut:
    """Send one tiny completion (max_tokens 3) to a model through the real provider path; report the URL,
    the key variable (set?), the status, the latency and the likely fix."""
    return run_check(ctx, inp.model_id)


def _pre_traffic(ctx: ToolContext, model_id: str, timeout_s: float = CHECK_TIMEOUT_S) -> ModelCheckOut:
    """The check before ``model_id`` takes traffic: a completion within ``timeout_s``, or for a local
    model its files."""
    from modelsteward.providers.factory import local_problem

    model = ctx.steward.registry.get_model(model_id)
    if model.provider != "local":
        return run_check(ctx, model.id, timeout_s)
    why = local_problem(model, ctx.steward.settings, ctx.steward.registry)
    return ModelCheckOut(model_id=model.id, ok=why is None, url="local", key_env=None, key_set=None, status=None,
                         latency_ms=None, error=why, fix=why)


def require_check(ctx: ToolContext, model_id: str, becomes: str) -> None:
    """Refuse (``CheckFailed``) making ``model_id`` ``becomes`` (e.g. "live on 'chat'") when its check
    fails: the message names the error, the fix and how to force it."""
    if _host_refused(ctx, model_id):
        return  # the policy refuses it (host_not_approved, recorded) or it waits, receiving nothing, for its host
    out = _pre_traffic(ctx, model_id)
    if out.ok:
        return
    raise CheckFailed(
        f"{out.model_id} cannot become {becomes}: its check failed{_why(out)}. Nothing changed; "
        f"`steward models check {out.model_id}` shows the details, --no-check (API: no_check) forces the change.",
        model_id=out.model_id, fix=out.fix, check=out.model_dump(mode="json"))


def _why(out: ModelCheckOut) -> str:
    """`` (error); fix: fix`` (the error left out when it says what the fix says)."""
    fix = (out.fix or "").rstrip(".")
    return f"; fix: {fix}" if (out.error or "").rstrip(".") == fix else f" ({out.error}); fix: {fix}"


def _host_refused(ctx: ToolContext, model_id: str) -> bool:
    """Whether ``model_id`` is at a host nobody approved (egress: ``providers.factory.get_provider`` refuses it)."""
    from modelsteward.providers.factory import get_provider

    model = ctx.steward.registry.get_model(model_id)
    if model.provider == "local":
        return False
    try:
        get_provider(model, ctx.steward.settings, registry=ctx.steward.registry)
    except PolicyDenied:
        return True
    except StewardError:
        return False  # no base URL and the like: the check says so
    return False


def require_checks(ctx: ToolContext, model_ids: Iterable[str | None], becomes: str, no_check: bool) -> None:
    """``require_check`` for each model named (none when ``no_check``), in order, each once."""
    if no_check:
        return
    for mid in dict.fromkeys(m for m in model_ids if m):
        require_check(ctx, mid, becomes)


def startup_problems(ctx: ToolContext, timeout_s: float = STARTUP_TIMEOUT_S) -> list[str]:
    """One line per live or fallback model whose check fails, the checks run side by side within about
    ``timeout_s`` in all.  Models whose key variable is unset are left out: the gateway's start-up
    warning already names that fix, and a check without the key could only fail."""
    from modelsteward.providers.factory import key_problem

    users: dict[str, set[str]] = {}
    for uc in ctx.steward.reader.use_cases():
        live = [a["model_id"] for a in uc.get("allocations") or [] if a.get("role") != "shadow"]
        for mid in live + list(uc.get("fallback") or []):
            users.setdefault(mid, set()).add(uc["name"])
    todo = []
    for mid in sorted(users):
        model = ctx.steward.registry.find_model(mid)
        if model is not None and key_problem(model) is None:
            todo.append(mid)
    if not todo:
        return []
    pool = ThreadPoolExecutor(max_workers=min(8, len(todo)), thread_name_prefix="steward-check")
    futures = {mid: pool.submit(_pre_traffic, ctx, mid, timeout_s) for mid in todo}
    wait(futures.values(), timeout=timeout_s + 1.0)
    pool.shutdown(wait=False, cancel_futures=True)
    lines = []
    for mid, fut in futures.items():
        why = f" (no answer within {timeout_s:g} s); fix: check the server is up and answers"
        if fut.done() and not fut.cancelled():
            try:
                out = fut.result()
            except Exception as exc:  # noqa: BLE001 - one check that cannot run must not hide the others
                why = f" (it could not run: {exc})"
            else:
                if out.ok:
                    continue
                why = _why(out)
        lines.append(f"requests to {mid} (use case {', '.join(sorted(users[mid]))}) will fail: its check failed{why}")
    return lines
