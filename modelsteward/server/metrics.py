"""Prometheus ``/metrics``: traffic from the request-log store, routing and rollout state, API counters.

Decision: per-use-case traffic metrics (requests, errors, tokens, cost, latency histogram) are
derived from the log store at scrape time (all time, so counters only grow; shadow calls are
included and labelled by role), cached for ``cache_seconds`` so a scrape storm costs one DuckDB
query.  They are therefore the same for every replica: scrape one, or sum with care.  The API's
own request counters and latencies come from a middleware, and the mounted gateway's counters
(requests, errors, failed upstream attempts, shadow queue, spend) from its state, per process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from modelsteward.context import Steward
from modelsteward.storage import read
from modelsteward.storage.states import ACTIVE_ROLLOUT_STATES, ROLLOUT_STATES

__all__ = ["ServerMetrics", "LATENCY_BUCKETS_S"]

log = logging.getLogger(__name__)

LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _StewardCollector:
    """Collects log-derived and registry-derived families on each scrape."""

    def __init__(self, steward: Steward, cache_seconds: float, gateway: Any = None) -> None:
        self.steward = steward
        self.gateway = gateway
        self.cache_seconds = cache_seconds
        self._cache: tuple[float, list[Metric]] | None = None
        self._lock = threading.Lock()

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            now = time.monotonic()
            if self._cache is None or now - self._cache[0] > self.cache_seconds:
                fams: list[Metric] = []
                for part in (self._traffic, self._registry, self._gateway):
                    try:
                        fams.extend(part())
                    except Exception:  # noqa: BLE001 - a broken source must not break the scrape
                        log.exception("metrics source %s failed", part.__name__)
                        fams.append(_error_gauge(part.__name__.strip("_")))
                self._cache = (now, fams)
            return list(self._cache[1])

    def _traffic(self) -> list[Metric]:
        buckets = ", ".join(
            f"count(*) FILTER (WHERE latency_ms <= {b * 1000}) AS b{i}" for i, b in enumerate(LATENCY_BUCKETS_S)
        )
        rows = self.steward.logs.query(
            f"""SELECT use_case, model_id, coalesce(role, 'primary') AS role, count(*) AS n,
                       count(*) FILTER (WHERE status = 'error') AS errors,
                       coalesce(sum(input_tokens), 0) AS tin, coalesce(sum(output_tokens), 0) AS tout,
                       coalesce(sum(cost_usd), 0) AS cost, count(latency_ms) AS ln,
                       coalesce(sum(latency_ms), 0) / 1000.0 AS lsum, {buckets}
                FROM logs GROUP BY ALL ORDER BY 1, 2, 3"""
        )
        labels = ["use_case", "model", "role"]
        req = CounterMetricFamily("steward_requests", "Requests logged by the gateway.", labels=labels)
        err = CounterMetricFamily("steward_request_errors", "Requests that ended in an error.", labels=labels)
        tok = CounterMetricFamily("steward_tokens", "Tokens used.", labels=[*labels, "direction"])
        cost = CounterMetricFamily("steward_cost_usd", "Cost in US dollars.", labels=labels)
        lat = HistogramMetricFamily("steward_request_latency_seconds", "Request latency.", labels=labels)
        for r in rows:
            lv = [str(r["use_case"]), str(r["model_id"]), str(r["role"])]
            req.add_metric(lv, float(r["n"]))
            err.add_metric(lv, float(r["errors"]))
            tok.add_metric([*lv, "input"], float(r["tin"]))
            tok.add_metric([*lv, "output"], float(r["tout"]))
            cost.add_metric(lv, float(r["cost"]))
            cum = [(repr(b), float(r[f"b{i}"])) for i, b in enumerate(LATENCY_BUCKETS_S)]
            lat.add_metric(lv, [*cum, ("+Inf", float(r["ln"]))], sum_value=float(r["lsum"]))
        fb = GaugeMetricFamily("steward_feedback_mean", "Mean user feedback (-1..1) over the last 7 days.",
                               labels=labels)
        for r in self.steward.logs.stats(since="7d"):
            if r.get("mean_feedback") is not None:
                fb.add_metric([str(r["use_case"]), str(r["model_id"]), str(r["role"])], float(r["mean_feedback"]))
        return [req, err, tok, cost, lat, fb]

    def _registry(self) -> list[Metric]:
        weight = GaugeMetricFamily("steward_allocation_weight_percent", "Live routing weight of a model.",
                                   labels=["use_case", "model", "role"])
        state = GaugeMetricFamily("steward_rollout_state", "1 for the state each rollout is in.",
                                  labels=["use_case", "rollout", "candidate", "state"])
        step = GaugeMetricFamily("steward_rollout_step", "Index of the current step of each active rollout.",
                                 labels=["use_case", "rollout", "candidate"])
        pending = GaugeMetricFamily("steward_approvals_pending", "Approvals waiting for a decision.")
        for a in read.live_allocations(self.steward):
            weight.add_metric([a.use_case, a.model_id, a.role], a.weight)
        for r in read.rollouts(self.steward, limit=200):
            lv = [r.use_case or str(r.use_case_id), str(r.id), r.candidate_model_id]
            for st in ROLLOUT_STATES:
                state.add_metric([*lv, st], 1.0 if r.state == st else 0.0)
            if r.state in ACTIVE_ROLLOUT_STATES:
                step.add_metric(lv, float(r.step_index))
        pending.add_metric([], float(read.pending_approval_count(self.steward)))
        return [weight, state, step, pending]


    def _gateway(self) -> list[Metric]:
        """This process's gateway counters (requests, errors, failed attempts, shadows) and spend."""
        if self.gateway is None:
            return []
        st = self.gateway.status()
        fams: list[Metric] = []
        for key, value in sorted(st.items()):
            if isinstance(value, int) and not isinstance(value, bool) and key != "shadow_queue_depth":
                c = CounterMetricFamily(f"steward_gateway_{key}", f"Gateway counter {key} (this process).")
                c.add_metric([], float(value))
                fams.append(c)
        q = GaugeMetricFamily("steward_gateway_shadow_queue_depth", "Shadow requests waiting (this process).")
        q.add_metric([], float(st.get("shadow_queue_depth") or 0))
        spend = GaugeMetricFamily("steward_gateway_spend_month_usd", "Spend this month as the gateway counts it.",
                                  labels=["use_case"])
        for uc, usd in sorted((st.get("spend_month_to_date") or {}).items()):
            spend.add_metric([uc], float(usd or 0))
        return [*fams, q, spend]


def _error_gauge(source: str) -> Metric:
    g = GaugeMetricFamily("steward_metrics_source_error", "1 when a metrics source failed this scrape.",
                          labels=["source"])
    g.add_metric([source], 1.0)
    return g


class ServerMetrics:
    """One registry per app (tests build many apps in one process)."""

    def __init__(self, steward: Steward, cache_seconds: float = 10.0, gateway: Any = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_StewardCollector(steward, cache_seconds, gateway))
        self.api_requests = Counter(
            "steward_api_requests", "Management API and console requests.", ["method", "route", "status"],
            registry=self.registry,
        )
        self.api_latency = Histogram(
            "steward_api_request_seconds", "Management API and console latency.", ["method", "route"],
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.api_requests.labels(method, route, str(status)).inc()
        self.api_latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
