"""Windowed log analytics the rollout analysis, the guardrails and the cost policies read.

All windows are naive-UTC datetimes, like the log store's ``ts``.  A row counts as safety-flagged
when its ``metadata`` has ``"flagged": true`` or a non-empty ``"safety_flags"`` list.  Similarity of
shadow outputs is a cheap lexical one: mean token-set Jaccard of the shadow and primary responses
to the same request (the shadow row's ``metadata.primary_request_id``, as the gateway writes it,
else the same ``request_id``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelsteward.context import Steward

__all__ = [
    "WindowMetrics",
    "feedback_drop_p_value",
    "feedback_gain_p_value",
    "window_metrics",
    "shadow_similarity",
    "lexical_similarity",
    "usage",
    "cost_per_request",
    "DEFAULT_TOKENS",
]

# Assumed request size when the use case has no logged traffic yet (input, output tokens).
DEFAULT_TOKENS = (500.0, 200.0)

_FLAGGED = (
    "(coalesce(json_extract_string(metadata, '$.flagged'), 'false') = 'true' "
    "OR coalesce(json_array_length(json_extract(metadata, '$.safety_flags')), 0) > 0)"
)


@dataclass
class WindowMetrics:
    """Aggregates of one model (and role) over a window."""

    requests: int = 0
    errors: int = 0
    p95_ms: float | None = None
    cost_per_request: float | None = None
    mean_feedback: float | None = None
    feedback_count: int = 0
    feedback_var: float | None = None  # sample variance of the feedback values (None below two values)
    flagged: int = 0
    cost_usd: float = 0.0

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def flag_rate(self) -> float | None:
        return self.flagged / self.requests if self.requests else None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["error_rate"] = self.error_rate
        d["flag_rate"] = self.flag_rate
        return d


def _welch_greater(a: WindowMetrics, b: WindowMetrics) -> float:
    """One-sided Welch t-test p-value for "a's mean feedback is above b's" (scipy)."""
    import math

    from scipy.stats import ttest_ind_from_stats

    assert a.mean_feedback is not None and b.mean_feedback is not None
    diff = a.mean_feedback - b.mean_feedback
    n1, n2 = max(a.feedback_count, 2), max(b.feedback_count, 2)
    v1, v2 = a.feedback_var or 0.0, b.feedback_var or 0.0
    if v1 / n1 + v2 / n2 == 0.0:  # constant samples: the difference is certain
        return 0.0 if diff > 0 else 1.0
    res = ttest_ind_from_stats(a.mean_feedback, math.sqrt(v1), n1, b.mean_feedback, math.sqrt(v2), n2,
                               equal_var=False, alternative="greater")
    return float(res.pvalue)


def feedback_drop_p_value(cand: WindowMetrics, stable: WindowMetrics) -> float:
    """One-sided Welch t-test p-value for "the candidate's mean feedback is below stable's".

    Feedback is a handful of -1..1 votes per window; a mean drop over the threshold on five
    values is often noise (Kayenta-style canary judges test before they fail a canary).  Callers
    judge only with ``min_feedback_count`` (at least 3) values on each side.  Equal, constant
    samples give 1.0; different constant samples give 0.0.
    """
    return _welch_greater(stable, cand)


def feedback_gain_p_value(cand: WindowMetrics, stable: WindowMetrics) -> float:
    """The same test the other way: p-value for "the candidate's mean feedback is above stable's"
    (the online benefit a canary must show before promotion when the evaluation showed none)."""
    return _welch_greater(cand, stable)


def window_metrics(
    steward: Steward, use_case: str, since: dt.datetime, until: dt.datetime | None = None,
    *, model_id: str | None = None, roles: tuple[str, ...] | None = None,
) -> WindowMetrics:
    """Aggregates over ``since <= ts < until`` for one use case (optionally one model / roles)."""
    # imported history is not this deployment's traffic (unless imported --as-evidence): no rollout or guard evidence
    where = ["use_case = ?", "ts >= ?", "coalesce(NOT starts_with(origin, 'import:'), TRUE)"]
    params: list[Any] = [use_case, since]
    if until is not None:
        where.append("ts < ?")
        params.append(until)
    if model_id is not None:
        where.append("model_id = ?")
        params.append(model_id)
    if roles:
        where.append("role IN (" + ", ".join("?" for _ in roles) + ")")
        params.extend(roles)
    sql = f"""
        SELECT count(*) AS n,
               count(*) FILTER (WHERE status = 'error') AS errors,
               quantile_cont(latency_ms, 0.95) FILTER (WHERE status = 'ok') AS p95,
               avg(cost_usd) FILTER (WHERE status = 'ok') AS cpr,
               coalesce(sum(cost_usd), 0) AS cost,
               avg(feedback) AS fb, count(feedback) AS fb_n, var_samp(feedback) AS fb_var,
               count(*) FILTER (WHERE {_FLAGGED}) AS flagged
        FROM logs WHERE {' AND '.join(where)}
    """
    row = steward.logs.query(sql, params)[0]
    return WindowMetrics(
        requests=int(row["n"] or 0), errors=int(row["errors"] or 0),
        p95_ms=None if row["p95"] is None else float(row["p95"]),
        cost_per_request=None if row["cpr"] is None else float(row["cpr"]),
        mean_feedback=None if row["fb"] is None else float(row["fb"]),
        feedback_count=int(row["fb_n"] or 0), feedback_var=None if row["fb_var"] is None else float(row["fb_var"]),
        flagged=int(row["flagged"] or 0), cost_usd=float(row["cost"] or 0.0),
    )


_TOKEN = re.compile(r"\w+", re.UNICODE)


def lexical_similarity(a: str | None, b: str | None) -> float:
    """Token-set Jaccard similarity in 0..1 (two empty texts are identical)."""
    ta = set(_TOKEN.findall((a or "").lower()))
    tb = set(_TOKEN.findall((b or "").lower()))
    if not ta and not tb:
        return 1.0
    return len(ta & tb) / len(ta | tb)


def shadow_similarity(
    steward: Steward, use_case: str, candidate: str, since: dt.datetime, *, limit: int = 500
) -> tuple[float | None, int]:
    """Mean similarity of the candidate's shadow responses to the primary's, per shared request id."""
    rows = steward.logs.query(
        """
        SELECT s.response AS shadow, p.response AS primary_response
        FROM logs s JOIN logs p
          ON p.request_id = coalesce(json_extract_string(s.metadata, '$.primary_request_id'), s.request_id)
        WHERE s.use_case = ? AND p.use_case = ? AND s.ts >= ? AND s.model_id = ? AND s.role = 'shadow'
          AND p.role <> 'shadow' AND s.status = 'ok' AND p.status = 'ok'
        ORDER BY s.ts DESC LIMIT ?
        """,
        [use_case, use_case, since, candidate, limit],
    )
    if not rows:
        return None, 0
    sims = [lexical_similarity(r["shadow"], r["primary_response"]) for r in rows]
    return sum(sims) / len(sims), len(sims)


def usage(steward: Steward, use_case: str, days: float = 7.0) -> dict[str, float]:
    """Requests in the last ``days`` (primary and canary, not shadow), mean tokens, projected per month."""
    since = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(days=days)
    row = steward.logs.query(
        "SELECT count(*) AS n, avg(input_tokens) AS tin, avg(output_tokens) AS tout, min(ts) AS first "
        "FROM logs WHERE use_case = ? AND ts >= ? AND role <> 'shadow'",
        [use_case, since],
    )[0]
    n = int(row["n"] or 0)
    span_days = days
    if n and row["first"] is not None:
        # Scale by the span actually covered (at least one hour) so a young use case is not under-counted.
        covered = (dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - row["first"]).total_seconds() / 86400
        span_days = min(days, max(covered, 1 / 24))
    return {
        "requests": float(n),
        "input_tokens": float(row["tin"]) if row["tin"] is not None else DEFAULT_TOKENS[0],
        "output_tokens": float(row["tout"]) if row["tout"] is not None else DEFAULT_TOKENS[1],
        "monthly_requests": n * 30.0 / span_days if n else 0.0,
    }


def cost_per_request(model: Any, tokens: tuple[float, float]) -> float | None:
    """Expected USD per request: list prices, or for self-hosted and fine-tuned models their hosting
    cost (cost per hour over throughput, a hardware profile's default when unset: never free);
    ``None`` when a paid model has no price.  See ``catalog/hosting.py``."""
    from modelsteward.catalog.hosting import cost_per_request as _cpr

    return _cpr(model, tokens)
