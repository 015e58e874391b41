"""The gateway's state and request logic: routing, attempts with fallback, shadows, logging.

``GatewayState`` is built once per process (``create_gateway_app`` or the server's lifespan) and
holds everything a request needs in memory: the routing snapshot (refreshed in the background,
so a deploy takes effect within ``refresh_s`` + one read), providers, per-model cooldowns, the
month-to-date spend, and the shadow queue.  Requests never touch the database.

Attempts: the picked model, then the other live models (primaries first), then the use case's
``fallback`` chain; each model gets ``1 + retries`` attempts (exponential backoff with jitter) on
retryable errors, models in cooldown are skipped (when every model is cooling, the first is
probed).  Every attempt is a log row: a failed attempt's ``request_id`` is ``<id>-a<n>``, the
answered one is ``<id>`` (the id the client sees, for feedback), shadows are ``<id>-s<n>``; the
metadata of each names ``primary_request_id``.  A pinned request (``use_case@model_id``) tries
only that model.

Log roles: ``primary`` / ``canary`` for the live model that was picked (or another live model
tried after it failed), ``shadow`` for mirrors, ``pinned`` for a pinned request and ``fallback``
for an answer (or failed attempt) from the use case's fallback chain; rollout analysis and the
evaluation replay read only ``primary`` / ``canary`` rows, so pinned and fallback traffic never
mixes into the live models' statistics.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import gc
import logging
import random
import sys
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from modelsteward.errors import StewardError, UpstreamError, close_matches
from modelsteward.exchange import answer_from_completion
from modelsteward.gateway.errors import GatewayError
from modelsteward.gateway.events import failure
from modelsteward.gateway.health import Cooldowns, Spend, month_start
from modelsteward.gateway.logrow import gateway_row
from modelsteward.gateway.options import GatewayOptions
from modelsteward.gateway.routing import (
    KeyInfo,
    ModelInfo,
    Route,
    RoutingSnapshot,
    fingerprint,
    load_snapshot,
    model_info,
)
from modelsteward.providers import ChatProvider, get_provider
from modelsteward.providers.factory import cache_generation

if TYPE_CHECKING:
    from modelsteward.context import Steward

__all__ = ["GatewayState", "GatewayOptions", "Served"]

log = logging.getLogger("modelsteward.gateway")

KEY_LOOKUPS_PER_S = 20.0  # registry look-ups for keys missing from the routing table (a token bucket)
KEY_LOOKUP_BURST = 40.0
KEY_MISS_TTL_S = 2.0  # a key the registry did not have is not looked up again for this long
KEY_MISSES_KEPT = 10_000
PROVIDER_REFUSAL_TTL_S = 1.0  # a model whose provider could not be made (host not approved, key refused) is
# not tried again for this long: the check reads the registry, on the event loop, so not once per request
OWNERS_KEPT = 200_000  # recent request ids whose owner is kept in memory (older ones: the log store)

LOOPBACK_NOTICE = (
    "gateway: no gateway keys exist, so only loopback clients (127.0.0.1, ::1) are served; "
    "create one with `steward keys create --name NAME [--use-case UC]`."
)


@dataclass
class Served:
    """The upstream answer of one request and who gave it."""

    response: dict[str, Any]
    model: ModelInfo
    role: str
    attempts: int
    latency_ms: float


def _role_after_failure(route: Route, model_id: str) -> str:
    """The log role of a model tried after the picked one failed: its live role (primary, canary),
    else ``fallback`` (the use case's fallback chain, or a model that only shadows), so fallback
    answers never count in the live models' statistics."""
    role = route.role_of(model_id)
    return role if role in ("primary", "canary") else "fallback"


class GatewayState:
    """Everything the gateway routes need, kept in memory; ``start()``/``stop()`` from a lifespan."""

    def __init__(self, steward: Steward, options: GatewayOptions | None = None, *, own_steward: bool = False) -> None:
        self.steward = steward
        self.settings = steward.settings
        self.opts = options or GatewayOptions.from_env()
        self.own_steward = own_steward
        self.snapshot = RoutingSnapshot.empty()
        self.cooldowns = Cooldowns(self.opts.cooldown_after, self.opts.cooldown_s)
        self.spend = Spend()
        self.max_request_bytes = self.settings.max_request_bytes
        self.counters: dict[str, int] = {
            "requests": 0, "errors": 0, "attempts_failed": 0, "shadow_enqueued": 0, "shadow_dropped": 0,
            "shadow_done": 0, "log_failures": 0, "refreshes": 0,
        }
        self._providers: dict[str, tuple[tuple[int, int], ChatProvider]] = {}  # memo of providers.factory's cache
        self._pinned: dict[str, ModelInfo] = {}
        self._refused: dict[str, tuple[tuple[int, int], float, StewardError]] = {}  # model id -> (stamp, when, why)
        # request id -> (use case, gateway key name or None) of recent answers, for feedback checks
        self._owners: OrderedDict[str, tuple[str, str | None]] = OrderedDict()
        # keys found in the registry after the routing table was loaded (cleared on each reload)
        self._fresh_keys: dict[str, KeyInfo] = {}
        self._key_misses: OrderedDict[str, float] = OrderedDict()  # key hash -> when the registry lacked it
        self._key_tokens, self._key_tokens_at = KEY_LOOKUP_BURST, time.monotonic()
        self._shadow_q: asyncio.Queue[tuple[Any, ...]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._logs: Any = None
        self.started = False

    # ------------------------------------------------------------------ lifecycle
    @property
    def logs(self) -> Any:
        if self._logs is None:
            self._logs = self.steward.logs
        return self._logs

    @property
    def loopback_only(self) -> bool:
        return not self.snapshot.any_keys

    async def start(self) -> None:
        """Load the routing table, seed the budget totals, start the refresher and shadow workers."""
        if self.started:
            return
        await asyncio.to_thread(lambda: self.logs)  # opens the store (replays orphaned write-ahead files)
        self.snapshot = await asyncio.to_thread(load_snapshot, self.steward.registry)
        self.spend.seed(await asyncio.to_thread(self._month_to_date))
        self._shadow_q = asyncio.Queue(maxsize=self.opts.shadow_queue)
        self._tasks = [asyncio.create_task(self._refresher(), name="gateway-refresh")]
        self._tasks += [
            asyncio.create_task(self._shadow_worker(), name=f"gateway-shadow-{i}") for i in range(self.opts.shadow_workers)
        ]
        self.started = True
        if self.opts.freeze_gc:
            # Everything loaded so far (ORM, pyarrow, duckdb ...) lives for the whole process: keep the
            # cyclic GC from rescanning it on the hot path (gen-2 passes otherwise stall requests ~100 ms).
            gc.collect()
            gc.freeze()
        self._warn_keys()
        if self.loopback_only:
            if logging.getLogger().handlers:
                log.warning(LOOPBACK_NOTICE)
            else:
                print(LOOPBACK_NOTICE, file=sys.stderr, flush=True)

    def _warn_keys(self) -> None:
        """One warning line per live or fallback model whose key variable is unset here (issue 29)."""
        from modelsteward.providers.factory import key_problem

        snap = self.snapshot
        users: dict[str, list[str]] = {}
        for route in snap.routes.values():
            for mid in [m for m, _, _ in route.live] + list(route.fallback):
                users.setdefault(mid, []).append(route.name)
        for mid, ucs in sorted(users.items()):
            info = snap.models.get(mid)
            problem = key_problem(info.row) if info is not None else None
            if problem:
                log.warning("gateway: requests to %s (use case %s) will fail: %s.", mid, ", ".join(sorted(set(ucs))),
                            problem)

    async def stop(self) -> None:
        """Drain the shadow queue (bounded wait), stop tasks, flush the log store, close HTTP pools."""
        if not self.started:
            return
        self.started = False
        if self._shadow_q is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._shadow_q.join(), self.opts.drain_timeout_s)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        from modelsteward.providers import close_sessions

        await close_sessions()
        if self.own_steward:
            await asyncio.to_thread(self.steward.close)
        elif self._logs is not None:
            await asyncio.to_thread(self._logs.flush)

    def _month_to_date(self) -> dict[str, float]:
        try:
            rows = self.logs.query(
                "SELECT use_case, SUM(cost_usd) AS usd FROM logs WHERE ts >= ? GROUP BY use_case", [month_start()]
            )
        except Exception:  # noqa: BLE001 - an unreadable store must not stop the gateway; start from 0
            log.exception("gateway: could not read month-to-date spend; budgets start from 0")
            return {}
        return {r["use_case"]: float(r["usd"] or 0) for r in rows}

    async def refresh(self, *, force: bool = False) -> bool:
        """Reload the routing snapshot when the registry changed; returns whether it did."""
        reg = self.steward.registry
        fp = await asyncio.to_thread(fingerprint, reg)
        if not force and fp == self.snapshot.fingerprint and time.monotonic() - self.snapshot.loaded_at < self.opts.full_reload_s:
            return False
        snap = await asyncio.to_thread(load_snapshot, reg)
        old = self.snapshot
        self.snapshot = snap
        self._fresh_keys = {}  # the new table has them (or they were revoked since)
        self._key_misses.clear()
        self._pinned.clear()
        for mid, info in snap.models.items():
            prev = old.models.get(mid)
            if prev is None or prev.row.updated_at != info.row.updated_at:
                self._providers.pop(mid, None)
        self.counters["refreshes"] += 1
        return True

    async def _refresher(self) -> None:
        while True:
            await asyncio.sleep(self.opts.refresh_s)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep serving the last good table
                log.exception("gateway: routing refresh failed; keeping the previous table")

    # ------------------------------------------------------------------ lookups
    def route_for(self, model_field: str) -> tuple[Route, str | None]:
        """``use_case`` or ``use_case@model_id`` -> (route, pinned model id or None); 404 when unknown."""
        name, _, pinned = model_field.partition("@")
        route = self.snapshot.routes.get(name)
        if route is None:
            known = sorted(self.snapshot.routes)
            raise GatewayError(
                404, f"Unknown use case {name!r}." + close_matches(name, known)
                + (f" Known use cases: {', '.join(known[:20])}." if 0 < len(known) and difflib.get_close_matches(
                    name, known, n=1, cutoff=0.5) else ""),
                code="model_not_found", param="model",
            )
        return route, (pinned or None)

    async def find_key(self, key_hash: str) -> KeyInfo | Literal["revoked", "unknown", "unchecked"]:
        """A key missing from the routing table, looked up in the registry.

        The table is reloaded every ``refresh_s``, so a key created a moment ago is not in it yet:
        rather than refuse it, the registry is asked.  Look-ups are rate-limited (a token bucket of
        ``KEY_LOOKUPS_PER_S``) and a hash the registry lacked is not asked about again for
        ``KEY_MISS_TTL_S``, so a client sending bad keys cannot load the database.  Returns the key,
        ``"revoked"``, ``"unknown"`` (the registry has no such key) or ``"unchecked"`` (rate-limited)."""
        from modelsteward.gateway.keys import find_key

        fresh = self._fresh_keys.get(key_hash)
        if fresh is not None:
            return fresh
        now = time.monotonic()
        missed = self._key_misses.get(key_hash)
        if missed is not None and now - missed < KEY_MISS_TTL_S:
            return "unknown"
        self._key_tokens = min(KEY_LOOKUP_BURST, self._key_tokens + (now - self._key_tokens_at) * KEY_LOOKUPS_PER_S)
        self._key_tokens_at = now
        if self._key_tokens < 1:
            return "unchecked"
        self._key_tokens -= 1
        row = await asyncio.to_thread(find_key, self.steward.registry, key_hash)
        if row is None:
            self._key_misses[key_hash] = now
            self._key_misses.move_to_end(key_hash)
            while len(self._key_misses) > KEY_MISSES_KEPT:
                self._key_misses.popitem(last=False)
            return "unknown"
        if row.revoked:
            return "revoked"
        info = self._fresh_keys[key_hash] = KeyInfo(name=row.name, use_cases=frozenset(row.use_cases or []))
        return info

    async def model(self, model_id: str) -> ModelInfo | None:
        info = self.snapshot.models.get(model_id) or self._pinned.get(model_id)
        if info is None:
            row = await asyncio.to_thread(self.steward.registry.find_model, model_id)
            if row is None:
                return None
            info = self._pinned[model_id] = model_info(row)
        return info

    async def provider(self, info: ModelInfo) -> ChatProvider:
        cached, stamp = self._providers.get(info.id), (id(info.row), cache_generation())
        if cached is not None and cached[0] == stamp:
            return cached[1]
        refused = self._refused.get(info.id)
        if refused is not None and refused[0] == stamp and time.monotonic() - refused[1] < PROVIDER_REFUSAL_TTL_S:
            raise refused[2].with_traceback(None)  # the same refusal, without re-reading the registry
        try:
            if info.provider == "local":  # may convert the base model or read adapters: off the loop
                prov = await asyncio.to_thread(get_provider, info.row, self.settings, registry=self.steward.registry)
            else:
                prov = get_provider(info.row, self.settings, registry=self.steward.registry)
        except StewardError as exc:
            self._refused[info.id] = (stamp, time.monotonic(), exc)
            raise
        self._refused.pop(info.id, None)
        self._providers[info.id] = (stamp, prov)
        return prov

    # ------------------------------------------------------------------ logging
    def log_row(self, row: dict[str, Any]) -> None:
        """Append one row (durable on return) and count its cost against the budget."""
        cost = row.get("cost_usd") or 0.0
        meta = row.get("metadata") or {}
        if "primary_request_id" not in meta:  # an answer the client saw (not a failed attempt or shadow)
            self._owners[row["request_id"]] = (row["use_case"], meta.get("key"))
            if len(self._owners) > OWNERS_KEPT:
                self._owners.popitem(last=False)
        try:
            self.logs.append(row)
        except Exception:  # noqa: BLE001 - a failed log write is counted, never fails the request
            self.counters["log_failures"] += 1
            log.exception("gateway: could not log request %s", row.get("request_id"))
        self.spend.add(row["use_case"], cost)

    def remember_owner(self, request_id: str, use_case: str, key: str | None) -> None:
        """Note who made a request before its row is logged (a stream's id is sent with its first
        bytes; its row is written when it ends), so feedback sent mid-stream is taken."""
        self._owners[request_id] = (use_case, key)
        if len(self._owners) > OWNERS_KEPT:
            self._owners.popitem(last=False)

    async def request_owner(self, request_id: str) -> tuple[str, str | None] | None:
        """(use case, gateway key name or None) of an answered request; None when no such request.

        Looked up in this process's recent answers (in memory, streams included from their first
        byte), else asked of the log store (``LogStore.request_key``: every replica's write-ahead
        files, then the segments).  A failed attempt or a shadow call is not an answer.
        """
        owner = self._owners.get(request_id)
        if owner is not None:
            return owner

        return await asyncio.to_thread(self.logs.request_key, request_id)

    # ------------------------------------------------------------------ attempts
    def _backoff(self, k: int) -> float:
        base = self.opts.backoff_s * (2**k)
        return base + random.uniform(0, base / 4)

    async def plan(self, route: Route, pinned: str | None, user: str | None) -> tuple[list[ModelInfo], str]:
        """The models to try, in order, and the role of the first; 503 when nothing is deployed."""
        if pinned:  # the client chose the model: its answers are not the live roles' traffic
            return [await self._pinned_model(route, pinned)], "pinned"
        picked = route.pick(user)
        if picked is None:
            raise GatewayError(
                503, f"Use case {route.name!r} has no model deployed (no live allocation); deploy one with "
                f"`steward deploy --use-case {route.name} --model MODEL_ID --strategy full`.",
                code="no_allocation", type_="server_error",
            )
        chain = []
        for mid in route.chain(picked[0]):
            info = self.snapshot.models.get(mid)
            if info is not None:
                chain.append(info)
        if not chain:
            raise GatewayError(503, f"Use case {route.name!r}: its models are missing from the registry.",
                               code="no_allocation", type_="server_error")
        return chain, picked[1]

    async def _pinned_model(self, route: Route, pinned: str) -> ModelInfo:
        """A pin reaches only a model that serves this use case: live (primary, canary) or in its fallback chain."""
        serving = [m for m, _, _ in route.live] + [m for m in route.fallback if m not in {x for x, _, _ in route.live}]
        info = self.snapshot.models.get(pinned)
        if pinned not in serving or info is None:
            known = info is not None or any(pinned == m for m, _ in route.shadows)
            if not known and await asyncio.to_thread(self.steward.registry.find_model, pinned) is None:
                raise GatewayError(404, f"Unknown model {pinned!r} pinned in {route.name}@{pinned}.",
                                   code="model_not_found", param="model")
            raise GatewayError(403, f"Model {pinned!r} does not serve use case {route.name!r}; a pin may name only "
                               f"its live or fallback models: {', '.join(serving) or 'none'}.",
                               code="model_not_allocated", param="model")
        status = getattr(info.row, "status", None)
        if status in ("retired", "rejected"):  # the summary; a model rejected elsewhere may serve here
            status = await asyncio.to_thread(self.steward.registry.status_on, pinned, route.name)
        if status in ("retired", "rejected"):
            raise GatewayError(403, f"Model {pinned!r} is {status}; it can no longer be pinned.",
                               code="model_not_allocated", param="model")
        return info

    def _candidates(self, chain: list[ModelInfo]) -> list[ModelInfo]:
        now = time.monotonic()
        ready = [m for m in chain if not self.cooldowns.cooling(m.id, now)]
        return ready or chain[:1]

    def _fail_row(self, route: Route, rid: str, n: int, info: ModelInfo, role: str, body: dict[str, Any],
                  exc: StewardError, latency_ms: float, ts: float, meta: dict[str, Any]) -> None:
        self.counters["attempts_failed"] += 1
        status = getattr(exc, "status", None)
        failure("upstream_failed", request_id=rid, use_case=route.name, model=info.id, status=status,
                latency_ms=latency_ms, error=exc.message, attempt=n, role=role)
        self.log_row(gateway_row(
            ts=ts, request_id=f"{rid}-a{n}", use_case=route.name, model_id=info.id, role=role, body=body,
            latency_ms=latency_ms, error=exc.message,
            metadata={**meta, "primary_request_id": rid, "attempt": n, "upstream_status": status}))

    async def _attempt_loop(self, route: Route, chain: list[ModelInfo], first_role: str, rid: str,
                            body: dict[str, Any], meta: dict[str, Any], call: Any) -> tuple[Any, ModelInfo, str, int, float, float]:
        """Run ``call(provider)`` over the chain; returns (result, model, role, attempt, t0, ts)."""
        last: StewardError | None = None
        tried: ModelInfo | None = None
        n = 0
        for info in self._candidates(chain):
            tried = info
            role = first_role if info is chain[0] else _role_after_failure(route, info.id)
            try:
                provider = await self.provider(info)
            except StewardError as exc:
                n += 1
                self._fail_row(route, rid, n, info, role, body, exc, 0.0, time.time(), meta)
                last = exc
                continue
            for k in range(self.opts.retries + 1):
                if n >= self.opts.max_attempts:
                    break
                n += 1
                ts, t0 = time.time(), time.perf_counter()
                try:
                    result = await call(provider)
                except UpstreamError as exc:
                    self._fail_row(route, rid, n, info, role, body, exc, (time.perf_counter() - t0) * 1000, ts, meta)
                    self.cooldowns.failure(info.id)
                    last = exc
                    if not exc.retryable or self.cooldowns.cooling(info.id) or k == self.opts.retries:
                        break
                    await asyncio.sleep(self._backoff(k))
                    continue
                except StewardError as exc:  # bad local config etc.: not the upstream's fault, no cooldown
                    self._fail_row(route, rid, n, info, role, body, exc, (time.perf_counter() - t0) * 1000, ts, meta)
                    last = exc
                    break
                self.cooldowns.success(info.id)
                return result, info, role, n, t0, ts
            if n >= self.opts.max_attempts:
                break
        self.counters["errors"] += 1
        status = getattr(last, "status", None)
        if isinstance(status, int) and status in (400, 422):  # the request itself was refused upstream
            err = GatewayError(400, f"Upstream refused the request: {last.message if last else ''}",
                               code="upstream_rejected")
        else:
            err = GatewayError(
                502, f"All upstreams failed for use case {route.name!r} after {n} attempt(s); last error: "
                f"{last.message if last else 'no model could be called'}",
                code="upstream_error", type_="api_error",
            )
        err.model = tried.id if tried is not None else None
        raise err

    async def complete(self, route: Route, pinned: str | None, body: dict[str, Any], rid: str,
                       meta: dict[str, Any]) -> Served:
        """Non-streaming request: attempts + fallback, log the answer, mirror to shadows."""
        self.counters["requests"] += 1
        chain, role = await self.plan(route, pinned, body.get("user"))
        resp, info, role, n, t0, ts = await self._attempt_loop(
            route, chain, role, rid, body, meta, lambda p: p.openai_completion(body))
        latency = (time.perf_counter() - t0) * 1000
        self.log_row(gateway_row(
            ts=ts, request_id=rid, use_case=route.name, model_id=info.id, role=role, body=body, latency_ms=latency,
            answer=answer_from_completion(resp), usage=resp.get("usage"), info=info,
            metadata={**meta, "attempt": n} if n > 1 else (meta or None)))
        if not pinned:
            self.mirror(route, body, rid)
        return Served(resp, info, role, n, latency)

    async def open_stream(self, route: Route, pinned: str | None, body: dict[str, Any], rid: str,
                          meta: dict[str, Any]) -> tuple[AsyncIterator[dict[str, Any]], dict[str, Any] | None, ModelInfo, str, int, float, float]:
        """Start a stream with fallback up to its first chunk: (rest, first chunk, model, role, attempt, t0, ts)."""
        self.counters["requests"] += 1
        chain, role = await self.plan(route, pinned, body.get("user"))

        async def first(p: ChatProvider) -> tuple[AsyncIterator[dict[str, Any]], dict[str, Any] | None]:
            it = p.openai_stream(body).__aiter__()
            try:
                return it, await it.__anext__()
            except StopAsyncIteration:
                return it, None

        (it, chunk), info, role, n, t0, ts = await self._attempt_loop(route, chain, role, rid, body, meta, first)
        if not pinned:
            self.mirror(route, body, rid)
        return it, chunk, info, role, n, t0, ts

    # ------------------------------------------------------------------ shadows
    def mirror(self, route: Route, body: dict[str, Any], rid: str) -> None:
        """Queue the request for each shadow model; a full queue drops (and counts) the mirror."""
        if not route.shadows or self._shadow_q is None:
            return
        for i, (mid, pct) in enumerate(route.shadows, 1):
            if pct <= 0 or (pct < 100 and random.random() * 100 >= pct):
                continue
            try:
                self._shadow_q.put_nowait((route.name, mid, body, rid, i))
                self.counters["shadow_enqueued"] += 1
            except asyncio.QueueFull:
                self.counters["shadow_dropped"] += 1

    async def _shadow_worker(self) -> None:
        assert self._shadow_q is not None
        q = self._shadow_q
        while True:
            item = await q.get()
            try:
                await self._shadow_one(*item)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a shadow never takes the gateway down
                log.exception("gateway: shadow call failed unexpectedly")
            finally:
                q.task_done()

    async def _shadow_one(self, use_case: str, model_id: str, body: dict[str, Any], rid: str, i: int) -> None:
        """Call a shadow model once (no retries, no fallback, outside cooldown accounting) and log it."""
        info = await self.model(model_id)
        ts, t0 = time.time(), time.perf_counter()
        answer, usage, error = None, None, None
        try:
            if info is None:
                raise UpstreamError(f"shadow model {model_id} is not in the registry", status=None, retryable=False)
            resp = await (await self.provider(info)).openai_completion(body)
            answer, usage = answer_from_completion(resp), resp.get("usage")
        except StewardError as exc:
            error = exc.message
        row = gateway_row(ts=ts, request_id=f"{rid}-s{i}", use_case=use_case, model_id=model_id, role="shadow",
                          body=body, latency_ms=(time.perf_counter() - t0) * 1000, answer=answer, usage=usage,
                          info=info, error=error, metadata={"primary_request_id": rid})
        self.log_row(row)
        self.counters["shadow_done"] += 1

    def status(self) -> dict[str, Any]:
        """Counters, cooldowns, spend and queue depth (for /metrics and health pages)."""
        return {
            **self.counters,
            "shadow_queue_depth": self._shadow_q.qsize() if self._shadow_q is not None else 0,
            "cooldowns": self.cooldowns.snapshot(),
            "spend_month_to_date": {uc: self.spend.spent(uc) for uc in self.snapshot.routes},
            "loopback_only": self.loopback_only,
            "use_cases": {name: r.version for name, r in self.snapshot.routes.items()},
        }
