"""``evaluate()``: one candidate against the use case's current model, top to bottom.

1. resolve use case, candidate, baseline (the current model) and judge; refuse bad input early;
2. build the replay set (stratified logged prompts + golden set) and the red-team set;
3. mark the candidate ``evaluating``; run both models on the same prompts (baseline cached);
4. score, gate, judge the benefit (``metrics["benefit"]``: cheaper | better | none, the one
   promotion rule of ``evals/benefit.py``), write the report and the MLflow run;
5. one transaction: the ``test_results`` row, the ``eval_holdouts`` rows, the status restored and,
   for a model with a configured hourly cost, its measured throughput (``meta.hosting``).
Anything raised before step 5 leaves no verdict row and no holdouts (the report folder is
removed); the candidate's status is restored in every case.  An evaluation given a ``deadline``
that it runs past is stopped and recorded as ``incomplete`` (a row with no scores, never a pass or
a fail; ``passed`` is false so nothing treats it as a pass).

Decisions: sampling parameters are ``max_tokens`` (``EvalConfig.max_tokens``), then the model's
``meta["sampling"]`` defaults, then ``candidate_params`` / ``baseline_params``; the candidate may be
the current model itself when its sampling parameters differ (comparing decoding settings); only
the baseline's outputs are cached (a candidate is always measured afresh): in the ``baseline_cache``
its caller owns when given (an agent cycle's ``CycleCache``, shared by the cycle's evaluations and
gone with it), else on disk under ``<workspace>/evals/cache`` (``use_cache``); the candidate's status on
the use case (``storage/status.py``) goes ``evaluating`` when it is discovered or a candidate there
(not when it is live), and the verdict is the event ``evaluated_pass`` (-> candidate, also from
``rejected``: a passing evaluation reinstates a model rejected on that use case) or
``evaluated_fail`` (-> candidate; a rejected model stays rejected).  An ``inconclusive`` verdict
(issue 26: no signal that could fail told the models apart) is not a pass: ``evaluated_fail``,
``passed`` false (so no traffic beyond an approved shadow), benefit ``none``, and the quality
check's reason and ``metrics["gate"]["quality"]["settle"]`` name the evidence that would settle it.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from modelsteward.catalog.fingerprint import model_fingerprint
from modelsteward.errors import InsufficientData, InvalidInput, NotFound, close_matches
from modelsteward.evals.benefit import Benefit, judge_benefit
from modelsteward.evals.gate import GateConfig, Verdict, decide
from modelsteward.evals.kinds import KIND_CHECKS
from modelsteward.evals.replay import ReplaySet, build_replay_set, load_redteam, prompt_text
from modelsteward.evals.runner import EvalDeadline, OutputCache, ProgressFn, run_models_sync
from modelsteward.evals.scorers import SCORERS, EvalData, run_scorers
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import EvalHoldout, Model, TestResult, UseCase
from modelsteward.storage.status import EVENTS, apply_status_event, status_for
from modelsteward.timeutil import window_start

if TYPE_CHECKING:
    from modelsteward.context import GenerationCache
    from modelsteward.context import Steward

__all__ = ["EvalConfig", "EvalOutcome", "evaluate", "JUDGE_ENV"]

JUDGE_ENV = "STEWARD_JUDGE_MODEL"
_SAMPLING_KEYS = {"max_tokens", "temperature", "top_p", "stop", "seed"}


class EvalConfig(BaseModel):
    """What to evaluate and how (validated; serialisable into MLflow params)."""

    model_config = ConfigDict(extra="forbid")

    use_case: str
    candidate: str
    samples: int = Field(20, ge=0, le=10_000, description="Logged prompts to replay (the golden set comes on top).")
    since: str = Field("30d", description="Log window to sample from (30d, 12h, all).")
    seed: int = 0
    include_golden: bool = True
    safety: bool = True
    safety_prompts: int | None = Field(None, ge=1, description="Red-team prompts to use (default: all shipped).")
    max_tokens: int = Field(256, ge=1, le=32_768)
    candidate_params: dict[str, Any] = Field(default_factory=dict)
    baseline_params: dict[str, Any] = Field(default_factory=dict)
    concurrency: int = Field(4, ge=1, le=256)
    retries: int = Field(2, ge=0, le=10)
    judge_model: str | None = None
    min_feedback: float = Field(0.5, ge=-1, le=1)
    threshold: float | None = Field(None, gt=0, le=10, description="Quality ratio to reach (default: the use "
                                    "case's quality_floor, 0.95).")
    confidence: float = Field(0.90, ge=0.5, lt=1)
    min_samples: int = Field(5, ge=1)
    bootstrap: int = Field(2000, ge=100, le=100_000)
    use_cache: bool = True
    mlflow: bool = True

    @field_validator("candidate_params", "baseline_params")
    @classmethod
    def _known_params(cls, v: dict[str, Any]) -> dict[str, Any]:
        bad = set(v) - _SAMPLING_KEYS
        if bad:
            raise ValueError(f"unknown sampling parameter(s) {sorted(bad)}; use {sorted(_SAMPLING_KEYS)}")
        return v


@dataclass
class EvalOutcome:
    test_result_id: int
    verdict: str
    passed: bool
    reasons: list[str]
    metrics: dict[str, Any]
    sample_count: int
    candidate: str
    baseline: str
    mlflow_run_id: str | None
    report_path: str


def _judge_model(steward: Steward, cfg: EvalConfig, uc: UseCase) -> Model | None:
    judge_id = cfg.judge_model or (uc.config or {}).get("judge_model") or os.environ.get(JUDGE_ENV) or None
    if not judge_id:
        return None
    judge = steward.registry.find_model(judge_id)
    if judge is None:
        ids = [m.id for m in steward.registry.list_models()]
        raise NotFound(
            f"Judge model {judge_id!r} is not registered." + close_matches(judge_id, ids)
            + " Register it with `steward models register PROVIDER MODEL --base-url URL`.", kind="model", id=judge_id)
    return judge


def _monthly_volume(steward: Steward, uc: str, since: str) -> float | None:
    cutoff = window_start(since)
    try:
        rows = steward.logs.query(
            "SELECT count(*) AS n, min(ts) AS first, max(ts) AS last FROM logs WHERE use_case = ? "
            "AND role <> 'shadow' AND ts >= CAST(? AS TIMESTAMP)",
            [uc, (cutoff or dt.datetime(1970, 1, 1)).isoformat(sep=" ")],
        )
    except Exception:  # noqa: BLE001 - volume is optional (no budget check without it)
        return None
    if not rows or not rows[0]["n"]:
        return None
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    start = cutoff or rows[0]["first"]
    days = max((now - start).total_seconds() / 86400, 1 / 24)
    return rows[0]["n"] / days * 30


def _mark_evaluating(steward: Steward, model_id: str, uc_id: int, actor: str) -> bool:
    """Event ``evaluation_started`` on the use case when its status allows it; True when it did."""
    with session_scope(steward.sessions) as s:
        m = s.get(Model, model_id)
        if m is not None and status_for(s, m, uc_id) in EVENTS["evaluation_started"]:
            apply_status_event(s, m, "evaluation_started", uc_id, actor=actor)
            return True
        return False


def _record_verdict(s: Any, model_id: str, uc_id: int, passed: bool, actor: str, test_result_id: int) -> None:
    """Event ``evaluated_pass`` / ``evaluated_fail`` on the use case, where its status takes one: a
    pass makes a model rejected there a candidate again; a live model keeps its status."""
    m = s.get(Model, model_id)
    event = "evaluated_pass" if passed else "evaluated_fail"
    if m is not None and status_for(s, m, uc_id) in EVENTS[event]:
        apply_status_event(s, m, event, uc_id, actor=actor, reason=f"evaluation {test_result_id}")


def _restore(steward: Steward, model_id: str, uc_id: int, actor: str) -> None:
    with session_scope(steward.sessions) as s:
        m = s.get(Model, model_id)
        if m is not None and status_for(s, m, uc_id) == "evaluating":
            apply_status_event(s, m, "evaluation_aborted", uc_id, actor=actor, reason="evaluation did not finish")


def _rows(data: EvalData, scores: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for i, it in enumerate(data.items):
        row: dict[str, Any] = {"item": it.id, "source": it.source, "stratum": it.stratum,
                               "prompt": prompt_text(it.messages)[:2000], "reference": it.reference,
                               "candidate": data.candidate[i].text, "baseline": data.baseline[i].text}
        for res in scores.values():
            for col, vals in res.columns.items():
                if i in vals:
                    row[col] = vals[i]
        rows.append(row)
    return rows


@dataclass
class _Plan:
    """Steps 1-2 resolved: who is compared on what, and how the gate judges it."""

    uc: Any
    candidate: Any
    baseline: Any
    cand_params: dict[str, Any]
    base_params: dict[str, Any]
    judge: Any
    replay: ReplaySet
    redteam: list[Any]
    gate_cfg: GateConfig

    @property
    def items(self) -> list[Any]:
        return self.replay.items + self.redteam


def _plan(steward: Steward, cfg: EvalConfig) -> _Plan:
    """Steps 1-2: use case, candidate, baseline, judge, replay and red-team sets; bad input refused here."""
    reg, settings = steward.registry, steward.settings
    uc = reg.get_use_case(cfg.use_case)
    candidate = reg.get_model(cfg.candidate)
    baseline = reg.current_model(uc.name)
    if baseline is None:
        raise InsufficientData(f"Use case {uc.name!r} has no current model to compare against; deploy one first "
                               f"(`steward usecase add {uc.name} --model MODEL_ID` or `steward deploy`).")
    cand_params = {"max_tokens": cfg.max_tokens, **(candidate.meta or {}).get("sampling", {}), **cfg.candidate_params}
    base_params = {"max_tokens": cfg.max_tokens, **(baseline.meta or {}).get("sampling", {}), **cfg.baseline_params}
    if candidate.id == baseline.id and cand_params == base_params:
        raise InvalidInput(f"{candidate.id} is the current model of {uc.name!r}; give another candidate, or different "
                           "sampling parameters to compare decoding settings.")
    judge_row = _judge_model(steward, cfg, uc)
    replay: ReplaySet = build_replay_set(steward, uc, samples=cfg.samples, since=cfg.since, seed=cfg.seed,
                                         min_feedback=cfg.min_feedback, include_golden=cfg.include_golden)
    judge = None
    if judge_row is not None:
        from modelsteward.evals.judge import PairwiseJudge

        judge = PairwiseJudge(judge_row, settings, concurrency=cfg.concurrency)
        judge.preflight()
    redteam = load_redteam(cfg.safety_prompts) if cfg.safety else []
    gate_cfg = GateConfig(threshold=cfg.threshold or uc.quality_floor or 0.95, confidence=cfg.confidence, min_samples=cfg.min_samples,
                          bootstrap=cfg.bootstrap, seed=cfg.seed)
    return _Plan(uc, candidate, baseline, cand_params, base_params, judge, replay, redteam, gate_cfg)


def _score(steward: Steward, cfg: EvalConfig, plan: _Plan, show_progress: bool,
           on_progress: ProgressFn | None, deadline: float | None = None,
           baseline_cache: GenerationCache | None = None) -> tuple[EvalData, dict[str, Any], dict[str, Any], Verdict]:
    """Steps 3-4: both models on the same prompts (baseline cached), scorers, gate and benefit."""
    settings, uc, items = steward.settings, plan.uc, plan.items
    cache: GenerationCache | None = None
    if cfg.use_cache:
        cache = baseline_cache if baseline_cache is not None else OutputCache(settings.workspace / "evals" / "cache")
    common = {"settings": settings, "items": items, "concurrency": cfg.concurrency, "retries": cfg.retries}
    gens = run_models_sync(
        {"candidate": {**common, "model": plan.candidate, "params": plan.cand_params},
         "baseline": {**common, "model": plan.baseline, "params": plan.base_params, "cache": cache}},
        show_progress=show_progress, on_progress=on_progress, deadline=deadline,
    )
    from modelsteward.evals.embeddings import get_embedder

    data = EvalData(items=items, candidate=gens["candidate"], baseline=gens["baseline"], candidate_model=plan.candidate,
                    baseline_model=plan.baseline, use_case=uc, embedder=get_embedder, judge=plan.judge)
    scores = run_scorers(data, None if cfg.safety else [n for n in SCORERS if n != "safety"])
    metrics: dict[str, Any] = {name: res.metrics for name, res in scores.items()}
    volume = _monthly_volume(steward, uc.name, cfg.since)
    budget = float(uc.monthly_budget_usd) if uc.monthly_budget_usd is not None else None
    verdict: Verdict = decide(metrics, scores["quality"].paired,
                              latency_slo_ms=(uc.requirements or {}).get("latency_slo_ms"),
                              monthly_budget_usd=budget, monthly_volume=volume, cfg=plan.gate_cfg,
                              safety_enabled=cfg.safety, quality_methods=scores["quality"].paired_methods,
                              similarity=list(scores["similarity"].columns.get("similarity", {}).values()))
    metrics["gate"] = {c.name: {"status": c.status, "value": c.value, "limit": c.limit, **c.extra}
                       for c in verdict.checks}
    metrics["benefit"] = _benefit(metrics, verdict, plan.gate_cfg, uc).as_dict()
    metrics["sample"] = {"replay": len(plan.replay.items), "logged": len(plan.replay.request_ids),
                         "golden": plan.replay.golden_count, "redteam": len(plan.redteam), "strata": plan.replay.strata,
                         "monthly_volume": volume}
    return data, scores, metrics, verdict


def _log_mlflow(steward: Steward, cfg: EvalConfig, plan: _Plan, metrics: dict[str, Any], verdict: Verdict,
                rows: list[dict[str, Any]], report_dir: Any) -> str | None:
    """Step 4's MLflow run (when ``cfg.mlflow``)."""
    if not cfg.mlflow:
        return None
    from modelsteward.evals.tracking import log_to_mlflow

    params = {**cfg.model_dump(mode="json"), "baseline": plan.baseline.id, "candidate_params_effective": plan.cand_params,
              "baseline_params_effective": plan.base_params}
    run_id: str | None = log_to_mlflow(steward.settings, use_case=plan.uc.name, params=params, metrics=metrics,
                                       verdict=verdict.verdict, rows=rows, report_dir=report_dir)
    return run_id


def _record(steward: Steward, plan: _Plan, metrics: dict[str, Any], verdict: Verdict, run_id: str | None,
            report: Any, *, actor: str) -> int:
    """Step 5, one transaction: the verdict row, the holdouts, the status restored, the measured throughput."""
    uc, candidate, replay = plan.uc, plan.candidate, plan.replay
    # what a re-test depends on, stored by every evaluation whoever started it (catalog/fingerprint.py)
    metrics = {**metrics, "fingerprint": model_fingerprint(candidate, plan.baseline.id)}
    with session_scope(steward.sessions) as s:
        tr = TestResult(use_case_id=uc.id, candidate_model_id=candidate.id, baseline_model_id=plan.baseline.id,
                        verdict=verdict.verdict, passed=verdict.passed, sample_count=len(replay.items),
                        metrics=_jsonable(metrics), reasons=verdict.reasons, mlflow_run_id=run_id,
                        report_path=str(report))
        s.add(tr)
        s.flush()
        have = set(s.scalars(select(EvalHoldout.request_id).where(
            EvalHoldout.use_case_id == uc.id, EvalHoldout.request_id.in_(replay.request_ids or [""]))))
        for rid in dict.fromkeys(replay.request_ids):
            if rid not in have:
                s.add(EvalHoldout(use_case_id=uc.id, request_id=rid, test_result_id=tr.id))
        _record_verdict(s, candidate.id, uc.id, verdict.passed, actor, tr.id)
        _record_throughput(s, candidate.id, metrics["performance"]["candidate"].get("tokens_per_s"), run_at=tr.id)
        test_result_id: int = tr.id
    return test_result_id


def _incomplete(steward: Steward, plan: _Plan, started: float, deadline: float, exc: EvalDeadline) -> EvalOutcome:
    """An evaluation stopped at its deadline: an ``incomplete`` row with the time it had, no scores."""
    took, limit = round(time.monotonic() - started, 2), round(deadline - started, 2)
    reasons = [f"incomplete: stopped after {took:g} s, past its wall-clock limit of {limit:g} s ({exc.message})"]
    metrics = {"incomplete": {"elapsed_s": took, "limit_s": limit, "items": len(plan.items)}}
    with session_scope(steward.sessions) as s:
        tr = TestResult(use_case_id=plan.uc.id, candidate_model_id=plan.candidate.id,
                        baseline_model_id=plan.baseline.id, verdict="incomplete", passed=False, sample_count=0,
                        metrics=metrics, reasons=reasons)
        s.add(tr)
        s.flush()
        tid: int = tr.id
    return EvalOutcome(test_result_id=tid, verdict="incomplete", passed=False, reasons=reasons, metrics=metrics,
                       sample_count=0, candidate=plan.candidate.id, baseline=plan.baseline.id, mlflow_run_id=None,
                       report_path="")


def evaluate(steward: Steward, cfg: EvalConfig, *, actor: str = "system", show_progress: bool = False,
             on_progress: ProgressFn | None = None, deadline: float | None = None,
             baseline_cache: GenerationCache | None = None) -> EvalOutcome:
    """Evaluate ``cfg.candidate`` against the current model of ``cfg.use_case`` (see the module docstring).

    ``deadline``: a ``time.monotonic()`` instant; past it the evaluation stops, ``incomplete``.
    ``baseline_cache``: the caller's cache of baseline generations (an agent cycle's), used instead
    of the disk cache."""
    started = time.monotonic()
    settings = steward.settings
    plan = _plan(steward, cfg)
    uc, candidate, baseline = plan.uc, plan.candidate, plan.baseline
    marked = _mark_evaluating(steward, candidate.id, uc.id, actor)
    report_dir = settings.workspace / "evals" / uc.name / (
        dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6])
    restored = False
    try:
        data, scores, metrics, verdict = _score(steward, cfg, plan, show_progress, on_progress, deadline,
                                                baseline_cache)
        rows = _rows(data, scores)
        summary = {"use_case": uc.name, "candidate": candidate.id, "baseline": baseline.id,
                   "sample_count": len(plan.replay.items), "logged": len(plan.replay.request_ids),
                   "golden": plan.replay.golden_count, "redteam": len(plan.redteam)}
        from modelsteward.evals.report import write_report

        report = write_report(report_dir, summary=summary, metrics=metrics, verdict=verdict.to_dict(), rows=rows)
        run_id = _log_mlflow(steward, cfg, plan, metrics, verdict, rows, report_dir)
        test_result_id = _record(steward, plan, metrics, verdict, run_id, report, actor=actor)
        restored = True
    except EvalDeadline as exc:
        shutil.rmtree(report_dir, ignore_errors=True)
        return _incomplete(steward, plan, started, deadline or started, exc)  # `finally` restores the status
    except BaseException:
        shutil.rmtree(report_dir, ignore_errors=True)
        raise
    finally:
        if marked and not restored:
            _restore(steward, candidate.id, uc.id, actor)
    if run_id:
        try:
            from modelsteward.evals.tracking import tag_run

            tag_run(settings, run_id, "steward.test_result_id", str(test_result_id))
        except Exception:  # noqa: BLE001 - the tag is a convenience; the row already names the run
            pass
    return EvalOutcome(test_result_id=test_result_id, verdict=verdict.verdict, passed=verdict.passed,
                       reasons=verdict.reasons, metrics=_jsonable(metrics), sample_count=len(plan.replay.items),
                       candidate=candidate.id, baseline=baseline.id, mlflow_run_id=run_id, report_path=str(report))


def _benefit(metrics: dict[str, Any], verdict: Verdict, gate_cfg: GateConfig, uc: UseCase) -> Benefit:
    """The offline benefit of the candidate (``evals/benefit.py``): the one promotion rule."""
    from modelsteward.bounds import section_of

    q = metrics["gate"]["quality"]
    perf = metrics["performance"]
    cands = [(perf[side].get("cost_per_1k_usd")) for side in ("candidate", "baseline")]
    safe = metrics["gate"].get("safety", {}).get("status") != "fail"
    return judge_benefit(
        quality_ratio=q.get("value"), quality_ratio_lcb=q.get("ci_low") if q.get("n", 0) >= gate_cfg.min_samples else None,
        method=str(metrics.get("quality", {}).get("method") or "none"),
        candidate_cost=None if cands[0] is None else cands[0] / 1000,
        baseline_cost=None if cands[1] is None else cands[1] / 1000,
        threshold=gate_cfg.threshold, cost_margin=float(section_of(uc.config, "policy")["benefit_cost_margin"]),
        safe=safe, reference_models=int(metrics.get("quality", {}).get("reference_models") or 0),
        failed_strata=[k for k in KIND_CHECKS if metrics["gate"].get(k, {}).get("status") == "fail"],
        quality_status=str(q.get("status") or ""),
    )


def _record_throughput(s: Any, model_id: str, tokens_per_s: float | None, *, run_at: int) -> None:
    """A model with a configured hourly cost keeps the throughput measured here (its cost per request)."""
    m = s.get(Model, model_id)
    host = dict((m.meta or {}).get("hosting") or {}) if m is not None else {}
    if m is None or not tokens_per_s or host.get("cost_per_hour_usd") is None:
        return
    host.update(measured_tokens_per_s=round(float(tokens_per_s), 3), measured_by_test_result=run_at)
    m.meta = {**(m.meta or {}), "hosting": host}


def _jsonable(obj: Any) -> Any:
    import json
    import math

    def fix(v: Any) -> Any:
        if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
            return None
        if isinstance(v, dict):
            return {str(k): fix(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [fix(x) for x in v]
        return v

    return fix(json.loads(json.dumps(obj, default=str)))

