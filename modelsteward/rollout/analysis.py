"""Step analysis: candidate vs stable over the window since the step started, Argo-style outcomes.

``successful`` (advance), ``failed`` (abort and roll back), ``inconclusive`` (keep waiting; after
``inconclusive_timeout_s`` the rollout pauses).

Decision (the issue is silent on it): a failure is declared as soon as the candidate has
``min_requests`` requests in the window, without waiting for ``min_duration_s`` (fail fast, so a
broken candidate is caught within one window); success needs both the requests and the duration.
A metric with no data on either side is not judged (noted in ``reasons``).

Answers by kind: the logged answers to requests that offer tools or ask for a JSON schema are
checked against their own request (``evals/kindrules.answer_violation``: a call to a function the
request did not offer, arguments breaking the function's schema, JSON breaking the response
schema).  Such an answer is as broken as an error for the application, so the step fails when the
candidate's share of them exceeds the stable model's by more than ``max_error_rate_increase``.

Before the final promotion the rollout asks :func:`promotion_benefit` whether there is anything
to gain (issue 14): passing every step only shows the candidate is no worse.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from modelsteward.rollout.metrics import (
    WindowMetrics,
    feedback_drop_p_value,
    feedback_gain_p_value,
    shadow_similarity,
    window_metrics,
)

if TYPE_CHECKING:
    from modelsteward.context import Steward
    from modelsteward.evals.benefit import Benefit
    from modelsteward.storage.views import RowView as Rollout  # a rollout row, read-only

__all__ = ["Analysis", "AnswerValidity", "answer_validity", "judge", "analyse_rollout", "promotion_benefit", "Outcome"]

Outcome = Literal["successful", "failed", "inconclusive"]


@dataclass
class Analysis:
    outcome: Outcome
    reasons: list[str] = field(default_factory=list)
    candidate: dict[str, Any] = field(default_factory=dict)
    stable: dict[str, Any] = field(default_factory=dict)
    similarity: float | None = None
    elapsed_s: float = 0.0
    step_index: int = 0
    weight: float = 0.0
    at: str = ""
    benefit: dict[str, Any] | None = None  # set before a promotion: the benefit it rests on
    # the rollout analysed (not in ``as_dict``: the record sits on that rollout): a caller's analysis
    # is acted on only for the rollout and step it was made of (``RolloutManager.advance``)
    rollout_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {
            "outcome": self.outcome, "reasons": list(self.reasons), "candidate": self.candidate,
            "stable": self.stable, "similarity": self.similarity, "elapsed_s": round(self.elapsed_s, 3),
            "step_index": self.step_index, "weight": self.weight, "at": self.at,
        }
        if self.benefit is not None:
            out["benefit"] = self.benefit
        return out


@dataclass
class AnswerValidity:
    """Logged tool-call / structured answers of one model in a window, checked against their requests."""

    checked: int = 0
    invalid: int = 0
    example: str | None = None  # the first problem found

    @property
    def rate(self) -> float | None:
        return self.invalid / self.checked if self.checked else None


def answer_validity(steward: Steward, use_case: str, since: dt.datetime, *, model_id: str | None,
                    roles: tuple[str, ...], limit: int = 5000) -> AnswerValidity:
    """Check the window's latest ``limit`` successful answers to tool / structured requests."""
    from modelsteward.evals.kindrules import answer_violation
    from modelsteward.exchange import request_kind, row_exchange

    if model_id is None:
        return AnswerValidity()
    marks = ", ".join("?" for _ in roles)
    rows = steward.logs.query(
        f"SELECT request, response, answer FROM logs WHERE use_case = ? AND ts >= ? AND model_id = ? "
        f"AND role IN ({marks}) AND status = 'ok' AND request IS NOT NULL ORDER BY ts DESC LIMIT ?",
        [use_case, since, model_id, *roles, limit])
    out = AnswerValidity()
    for row in rows:
        ex = row_exchange(row)
        if request_kind(ex["request"]) == "text" and not ex["answer"].get("tool_calls"):
            continue
        out.checked += 1
        problem = answer_violation(ex["request"], ex["answer"])
        if problem:
            out.invalid += 1
            out.example = out.example or problem
    return out


def _validity_failures(cand: AnswerValidity, stable: AnswerValidity, cfg: dict[str, Any]) -> list[str]:
    if cand.rate is None:
        return []
    srate = stable.rate or 0.0
    margin = float(cfg["max_error_rate_increase"])
    if cand.rate <= srate + margin:
        return []
    return [f"answers breaking their request (unknown function, arguments or JSON against the schema) on "
            f"{cand.rate:.1%} of {cand.checked} tool/structured answers > stable {srate:.1%} + {margin:.1%} "
            f"(e.g. {cand.example})"]


def judge(
    cand: WindowMetrics, stable: WindowMetrics, cfg: dict[str, Any], elapsed_s: float,
    *, similarity: float | None = None, similarity_pairs: int = 0, shadow: bool = False,
    validity: tuple[AnswerValidity, AnswerValidity] | None = None,
) -> tuple[Outcome, list[str]]:
    """Pure decision over window aggregates (``cfg``: the clamped ``rollout`` section).

    ``shadow``: the candidate only shadows, so its answers reach no user and get no feedback;
    feedback is then not compared (and the reasons say why).  ``validity``: the candidate's and
    the stable model's tool-call / structured answers checked against their requests."""
    failures: list[str] = []
    notes: list[str] = []
    unsure: list[str] = []  # a check that may yet fail: the window waits for more data
    min_req = int(cfg["min_requests"])
    enough = cand.requests >= min_req
    if enough:
        cer = cand.error_rate or 0.0
        ser = stable.error_rate or 0.0
        lim = ser + float(cfg["max_error_rate_increase"])
        if cer > lim:
            failures.append(f"error rate {cer:.1%} > stable {ser:.1%} + {float(cfg['max_error_rate_increase']):.1%}")
        if validity is not None:
            failures += _validity_failures(*validity, cfg)
        if cand.p95_ms is not None and stable.p95_ms is not None and stable.p95_ms > 0:
            lim_ms = max(stable.p95_ms * (1 + float(cfg["max_latency_increase"])),
                         stable.p95_ms + float(cfg["latency_noise_ms"]))
            if cand.p95_ms > lim_ms:
                failures.append(f"p95 latency {cand.p95_ms:.0f} ms > {lim_ms:.0f} ms (stable {stable.p95_ms:.0f} ms)")
        else:
            notes.append("latency not judged (no successful requests on one side)")
        if cand.cost_per_request is not None and stable.cost_per_request:
            lim_c = stable.cost_per_request * (1 + float(cfg["max_cost_increase"]))
            if cand.cost_per_request > lim_c:
                failures.append(
                    f"cost per request ${cand.cost_per_request:.6f} > ${lim_c:.6f} (stable ${stable.cost_per_request:.6f})"
                )
        min_fb = int(cfg["min_feedback_count"])
        if shadow:
            notes.append("feedback not compared in shadow: users never see shadow answers, so they get no "
                         "feedback (it is compared in the canary steps)")
        elif cand.feedback_count >= min_fb and stable.feedback_count >= min_fb:
            assert cand.mean_feedback is not None and stable.mean_feedback is not None
            if stable.mean_feedback - cand.mean_feedback > float(cfg["max_feedback_drop"]):
                p = feedback_drop_p_value(cand, stable)
                alpha = float(cfg["feedback_alpha"])
                if p < alpha:
                    failures.append(
                        f"mean feedback {cand.mean_feedback:.2f} < stable {stable.mean_feedback:.2f} - "
                        f"{float(cfg['max_feedback_drop']):.2f} (p={p:.3f} over {cand.feedback_count} / "
                        f"{stable.feedback_count} values)"
                    )
                else:  # a drop this few values cannot tell from noise: wait for more feedback
                    unsure.append(
                        f"feedback drop {stable.mean_feedback - cand.mean_feedback:.2f} not significant yet "
                        f"(p={p:.2f} >= {alpha:g} over {cand.feedback_count} / {stable.feedback_count} values)"
                    )
        else:
            notes.append(f"feedback not judged yet: {cand.feedback_count} value(s) on the candidate, "
                         f"{stable.feedback_count} on the stable model, {min_fb} needed on each")
        cfr = cand.flag_rate or 0.0
        sfr = (stable.flag_rate or 0.0) if stable.requests else 0.0
        if cand.flagged and cfr > sfr + float(cfg["max_safety_flag_increase"]):
            failures.append(f"safety flags on {cfr:.1%} of responses > stable {sfr:.1%} + {float(cfg['max_safety_flag_increase']):.1%}")
        if similarity is not None:
            if similarity < float(cfg["min_similarity"]):
                failures.append(
                    f"shadow outputs {similarity:.2f} similar to stable's < {float(cfg['min_similarity']):.2f} "
                    f"({similarity_pairs} pairs)"
                )
    if failures:
        return "failed", failures + notes
    waiting: list[str] = []
    if not enough:
        waiting.append(f"{cand.requests}/{min_req} candidate requests in the window")
    if elapsed_s < float(cfg["min_duration_s"]):
        waiting.append(f"{elapsed_s:.0f}/{float(cfg['min_duration_s']):.0f} s of the window elapsed")
    waiting += unsure
    if waiting:
        return "inconclusive", ["waiting: " + "; ".join(waiting)] + notes
    return "successful", [f"all checks passed on {cand.requests} candidate requests"] + notes


def analyse_rollout(steward: Steward, ro: Rollout, cfg: dict[str, Any], now: dt.datetime, use_case: str) -> Analysis:
    """Read the window since the current step started and judge it."""
    since = ro.step_started_at or ro.created_at
    elapsed = max(0.0, (now - since).total_seconds())
    shadow = ro.strategy == "shadow"
    cand = window_metrics(
        steward, use_case, since, model_id=ro.candidate_model_id, roles=("shadow",) if shadow else ("canary", "primary"),
    )
    stable = (
        window_metrics(steward, use_case, since, model_id=ro.stable_model_id, roles=("primary",))
        if ro.stable_model_id else WindowMetrics()
    )
    sim, pairs = (None, 0)
    if shadow:
        sim, pairs = shadow_similarity(steward, use_case, ro.candidate_model_id, since)
    valid = (answer_validity(steward, use_case, since, model_id=ro.candidate_model_id,
                             roles=("shadow",) if shadow else ("canary", "primary")),
             answer_validity(steward, use_case, since, model_id=ro.stable_model_id, roles=("primary",)))
    outcome, reasons = judge(cand, stable, cfg, elapsed, similarity=sim, similarity_pairs=pairs, shadow=shadow,
                             validity=valid)
    if shadow and sim is None and outcome == "successful":
        outcome, reasons = "inconclusive", ["waiting: no shadow/primary response pairs to compare yet", *reasons[1:]]
    steps = list(ro.steps or [])
    return Analysis(
        outcome=outcome, reasons=reasons, similarity=sim,
        candidate={**cand.as_dict(), "answers_checked": valid[0].checked, "answers_invalid": valid[0].invalid},
        stable={**stable.as_dict(), "answers_checked": valid[1].checked, "answers_invalid": valid[1].invalid},
        elapsed_s=elapsed, step_index=ro.step_index,
        weight=float(steps[ro.step_index]) if ro.step_index < len(steps) else 0.0,
        at=now.isoformat(timespec="seconds"), rollout_id=ro.id,
    )


def promotion_benefit(steward: Steward, ro: Rollout, cfg: dict[str, Any], use_case: str) -> tuple[Benefit, dict[str, Any]]:
    """The benefit a promotion to 100 % rests on (``evals/benefit.py``, the one rule): the offline one
    of the candidate's latest passing evaluation against the stable model (cheaper at equal quality, or
    better on an independent signal), else a significant feedback gain over the whole canary.
    Returns the deciding benefit and the evidence (both verdicts)."""
    from modelsteward.evals.benefit import benefit_of, online_benefit
    from modelsteward.storage.evaluations import latest_passing

    tr = latest_passing(steward.sessions, ro.use_case_id, ro.candidate_model_id, ro.stable_model_id)
    offline = benefit_of(tr.metrics) if tr is not None else None
    tr_id = tr.id if tr is not None else None
    since = ro.created_at
    cand = window_metrics(steward, use_case, since, model_id=ro.candidate_model_id, roles=("canary",))
    stable = window_metrics(steward, use_case, since, model_id=ro.stable_model_id, roles=("primary",))
    min_fb = int(cfg["min_feedback_count"])
    p = None
    if cand.feedback_count >= min_fb and stable.feedback_count >= min_fb:
        p = feedback_gain_p_value(cand, stable)
    online = online_benefit(cand_mean=cand.mean_feedback, stable_mean=stable.mean_feedback,
                            cand_n=cand.feedback_count, stable_n=stable.feedback_count, p_value=p,
                            alpha=float(cfg["feedback_alpha"]), min_count=min_fb)
    evidence = {"offline": offline.as_dict() if offline else None, "test_result_id": tr_id,
                "online": online.as_dict(), "online_p_value": p, "canary_since": since.isoformat(timespec="seconds")}
    chosen = offline if offline is not None and offline.worth_it else online
    return chosen, evidence
