"""Read-side helpers shared by the console and the API: time series over the logs, eval scores."""

from __future__ import annotations

import datetime as dt
import decimal
import math
from typing import Any

from modelsteward.catalog.rank import quality_measured
from modelsteward.context import Steward
from modelsteward.errors import NotFound
from modelsteward.storage import read
from modelsteward.timeutil import window_start

__all__ = ["jsonable", "jsonable_rows", "traffic_series", "eval_series", "BUCKETS"]

BUCKETS = {"1h": ("minute", "5 minutes"), "24h": ("hour", "1 hour"), "7d": ("hour", "6 hours"), "30d": ("day", "1 day")}


def jsonable(v: Any) -> Any:
    if isinstance(v, (dt.datetime, dt.date)):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return v


def jsonable_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: jsonable(v) for k, v in r.items()} for r in rows]


def traffic_series(steward: Steward, use_case: str, window: str = "7d") -> list[dict[str, Any]]:
    """Per time bucket (live traffic, shadow excluded): requests, canary share (%), errors, cost,
    p95 latency, feedback."""
    _, width = BUCKETS.get(window, BUCKETS["7d"])
    sql = f"""
        SELECT time_bucket(INTERVAL '{width}', ts) AS t,
               count(*) AS requests,
               100.0 * count(*) FILTER (WHERE role = 'canary') / count(*) AS canary_pct,
               count(*) FILTER (WHERE status = 'error') AS errors,
               coalesce(sum(cost_usd), 0) AS cost_usd,
               quantile_cont(latency_ms, 0.95) FILTER (WHERE status = 'ok') AS p95_ms,
               avg(feedback) AS feedback
        FROM logs
        WHERE use_case = ? AND role <> 'shadow' AND ts >= ?
        GROUP BY 1 ORDER BY 1
    """
    return jsonable_rows(steward.logs.query(sql, [use_case, window_start(window)]))


def _score(metrics: dict[str, Any]) -> float | None:
    """The headline score of an evaluation: ``quality`` (or ``candidate.quality``) when present; none
    for a score that measured nothing (a judge-less pairwise tie, ``catalog.rank.quality_measured``)."""
    if not quality_measured(metrics):
        return None
    for key in ("quality", "candidate_quality", "score"):
        v = metrics.get(key)
        if isinstance(v, (int, float)):
            return float(v)
        if isinstance(v, dict):
            for sub in ("candidate", "mean", "value"):
                if isinstance(v.get(sub), (int, float)):
                    return float(v[sub])
    cand = metrics.get("candidate")
    if isinstance(cand, dict) and isinstance(cand.get("quality"), (int, float)):
        return float(cand["quality"])
    return None


def eval_series(steward: Steward, use_case: str, limit: int = 200) -> list[dict[str, Any]]:
    """Evaluations of a use case, oldest first: time, candidate, verdict, headline quality score."""
    try:
        rows = read.evaluations(steward, use_case=use_case, limit=limit)
    except NotFound:
        return []
    return [
        {"t": r.created_at.replace(tzinfo=None).isoformat(), "candidate": r.candidate_model_id, "verdict": r.verdict,
         "passed": r.passed, "score": _score(r.metrics or {}), "samples": r.sample_count}
        for r in reversed(rows)
    ]
