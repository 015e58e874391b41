"""Helpers for the rollout and policy tests: a use case with a stable model and a candidate,
passing evaluations, log rows written straight into the log store, and a backdated step start."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from modelsteward.context import Steward
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import Rollout, TestResult, UseCase, utcnow
from modelsteward.tools.base import ToolContext

UC = "chat"
STABLE = "openai:stable-model"
CAND = "openai:cand-model"


def setup_use_case(steward: Steward, *, config: dict[str, Any] | None = None, budget: Any = None,
                   cand_price: tuple[str, str] = ("1", "2"), slo: float | None = None) -> None:
    reg = steward.registry
    reg.register_model("openai", "stable-model", price_in_per_m="1", price_out_per_m="2", status="candidate")
    reg.register_model("openai", "cand-model", price_in_per_m=cand_price[0], price_out_per_m=cand_price[1],
                       status="candidate")
    reg.add_use_case(UC, description="test", model=STABLE, monthly_budget_usd=budget,
                     requirements={"latency_slo_ms": slo} if slo else None)
    cfg = {"rollout": {"min_requests": 10, "min_duration_s": 30}}
    for k, v in (config or {}).items():
        cfg[k] = {**cfg.get(k, {}), **v}
    reg.update_use_case(UC, config=cfg)


def pass_eval(steward: Steward, model_id: str = CAND, *, age_days: float = 0.0, passed: bool = True,
              benefit: str | None = "better") -> None:
    """A test result; ``benefit`` is the offline benefit it records (evals/benefit.py), None for none."""
    metrics: dict[str, Any] = {}
    if benefit is not None:
        metrics["benefit"] = {"verdict": benefit, "rule": f"{benefit} (test fixture)", "quality_ratio": 1.1,
                              "quality_ratio_lcb": 1.05 if benefit == "better" else 0.97,
                              "cost_ratio": 0.5 if benefit == "cheaper" else 1.0, "method": "golden"}
    with session_scope(steward.sessions) as s:
        uc = s.query(UseCase).filter_by(name=UC).one()
        s.add(TestResult(use_case_id=uc.id, candidate_model_id=model_id, baseline_model_id=STABLE,
                         verdict="pass" if passed else "fail", passed=passed, sample_count=50, metrics=metrics,
                         reasons=[], created_at=utcnow() - dt.timedelta(days=age_days)))


def ctx(steward: Steward, actor: str = "cli:alice", **kw: Any) -> ToolContext:
    return ToolContext(steward=steward, actor=actor, **kw)


def add_rows(steward: Steward, model_id: str, role: str, n: int, *, errors: int = 0, latency: float = 100.0,
             cost: float = 0.001, feedback: float | None = None, flagged: int = 0, response: str = "hello world",
             ts: dt.datetime | None = None, request_ids: list[str] | None = None, use_case: str = UC) -> list[str]:
    """Write ``n`` log rows (the first ``errors`` of them failed) with timestamps just before ``ts``."""
    now = ts or utcnow()
    rows, ids = [], []
    for i in range(n):
        rid = request_ids[i] if request_ids else uuid.uuid4().hex
        ids.append(rid)
        err = i < errors
        rows.append({
            "ts": now - dt.timedelta(milliseconds=10 * (n - i)), "request_id": rid, "use_case": use_case,
            "model_id": model_id, "role": role, "messages": [{"role": "user", "content": "hi"}],
            "response": None if err else response, "input_tokens": 500, "output_tokens": 200,
            "latency_ms": latency, "cost_usd": cost, "status": "error" if err else "ok",
            "error": "boom" if err else None, "feedback": feedback,
            "metadata": {"safety_flags": ["toxicity"]} if i >= n - flagged else {},
        })
    steward.logs.append_many(rows)
    return ids


def backdate_step(steward: Steward, seconds: float, use_case: str = UC) -> None:
    """Pretend the active rollout's current step started ``seconds`` ago."""
    with session_scope(steward.sessions) as s:
        uc = s.query(UseCase).filter_by(name=use_case).one()
        ro = s.query(Rollout).filter(Rollout.use_case_id == uc.id, Rollout.state.in_(("waiting", "paused"))).one()
        ro.step_started_at = utcnow() - dt.timedelta(seconds=seconds)


def healthy_window(steward: Steward, weight: float, n_cand: int = 12) -> None:
    """A passing analysis window for the active canary step: backdated start, healthy rows on both sides."""
    backdate_step(steward, 60)
    add_rows(steward, CAND, "canary", n_cand)
    add_rows(steward, STABLE, "primary", max(n_cand, int(n_cand * (100 - weight) / max(weight, 1))))
