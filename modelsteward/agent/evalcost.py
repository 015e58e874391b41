"""What evaluating one candidate costs in wall-clock time, and the traffic a self-hosted model must carry.

Minutes (:func:`eval_minutes`): each side, the candidate and the live model, answers ``n`` prompts
of ``out_tokens`` decoded tokens.  A self-hosted model decodes one stream at a time at its
tokens/s: measured by its latest evaluation on this use case (either side), else
``meta.hosting.measured_tokens_per_s``, else its hardware profile's (``catalog/hosting.py``); a
``local`` model also pays ``LOAD_S`` to load.  A paid API answers ``concurrency`` prompts at once,
each in its p50 latency (the ranker's: evaluation, logs or prior).  The two sides are added, not
overlapped: on one machine they share the cores, and an estimate that errs long defers an
evaluation rather than letting it overrun the cycle.

Peak rate (:func:`peak_rps`): the busiest minute of the use case's logged traffic (primary and
canary rows, not shadow) over the last ``PEAK_WINDOW_DAYS`` days, in requests per second.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any

from modelsteward.catalog.hosting import SELF_HOSTED_KINDS, profile_of

if TYPE_CHECKING:
    from modelsteward.context import Steward

__all__ = ["LOAD_S", "OVERHEAD_S", "PEAK_WINDOW_DAYS", "measured_tps", "side_seconds", "eval_minutes", "peak_rps"]

LOAD_S = 30.0  # loading a local transformers model before its first answer
OVERHEAD_S = 0.3  # per request and side: prefill, HTTP, scoring
PEAK_WINDOW_DAYS = 7


def measured_tps(rows: list[Any]) -> dict[str, float]:
    """Model id -> output tokens/s measured by its newest evaluation in ``rows`` (TestResult, newest first)."""
    out: dict[str, float] = {}
    for r in rows:
        perf = (r.metrics or {}).get("performance") or {}
        for side, mid in (("candidate", r.candidate_model_id), ("baseline", r.baseline_model_id)):
            tps = (perf.get(side) or {}).get("tokens_per_s")
            if mid and mid not in out and isinstance(tps, (int, float)) and math.isfinite(tps) and tps > 0:
                out[mid] = float(tps)
    return out


def _tps(model: Any, measured: dict[str, float]) -> float:
    if model.id in measured:
        return measured[model.id]
    host = (model.meta or {}).get("hosting") or {}
    try:
        tps = float(host.get("measured_tokens_per_s") or 0)
    except (TypeError, ValueError):
        tps = 0.0
    return tps if tps > 0 else profile_of(model)[1].tokens_per_s


def side_seconds(model: Any, n: int, out_tokens: float, latency_ms: float, concurrency: int,
                 measured: dict[str, float]) -> float:
    """Seconds one side of an evaluation takes to answer ``n`` prompts (see the module docstring)."""
    if n <= 0:
        return 0.0
    if model.kind in SELF_HOSTED_KINDS:
        per = out_tokens / _tps(model, measured) + OVERHEAD_S
        return n * per + (LOAD_S if model.provider == "local" else 0.0)
    waves = math.ceil(n / max(1, concurrency))
    return waves * (max(latency_ms, 0.0) / 1000.0 + OVERHEAD_S)


def eval_minutes(cand: Any, live: Any, n: int, out_tokens: float, latency_ms: tuple[float, float],
                 concurrency: int, measured: dict[str, float]) -> float:
    """Estimated wall-clock minutes of evaluating ``cand`` against ``live`` on ``n`` prompts."""
    secs = side_seconds(cand, n, out_tokens, latency_ms[0], concurrency, measured)
    if live is not None:
        secs += side_seconds(live, n, out_tokens, latency_ms[1], concurrency, measured)
    return secs / 60.0


def peak_rps(steward: Steward, use_case: str) -> float | None:
    """Requests per second in the busiest minute of the logged traffic; None with no traffic logged."""
    since = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(days=PEAK_WINDOW_DAYS)
    try:
        rows = steward.logs.query(
            "SELECT max(n) AS peak FROM (SELECT date_trunc('minute', ts) AS m, count(*) AS n FROM logs "
            "WHERE use_case = ? AND ts >= ? AND role <> 'shadow' GROUP BY 1) AS per_minute", [use_case, since])
    except Exception:  # noqa: BLE001 - no log store yet: no observed traffic
        return None
    peak = rows[0]["peak"] if rows else None
    return None if not peak else float(peak) / 60.0
