"""Rollout tools: deploy, rollout_status, rollout_advance, rollout_abort, rollback, guard_check,
retire_model, set_policy.  Mutating ones pass the policy engine first (tools.base.call_tool), with
the facts their rules need gathered here (``_deploy_facts``, ``advance_facts``: the use case's
traffic, the analysis of the waiting step, the promotion benefit).  When a rollout ends (completed,
aborted, rolled back, by a tool or by the guardrails) the tool expires the pending approvals of its
promotion (``_expire_promotion_approvals``); ``rollout/`` itself knows nothing of approvals."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, field_validator, \
    model_serializer, model_validator

from modelsteward.tools.base import InputModel, ToolContext, observed_use_case, tool

__all__ = [
    "DeployIn", "UseCaseIn", "AdvanceIn", "AbortIn", "RollbackIn", "GuardCheckIn", "RetireIn", "SetPolicyIn",
    "RolloutOut", "GuardOut", "RetireOut", "SetPolicyOut", "RolloutView", "AnalysisView", "RoutingView",
    "WindowView", "BenefitView",
]


class _In(InputModel):
    model_config = ConfigDict(extra="forbid")


class DeployIn(_In):
    use_case: str = Field(description="Use case name.")
    model_id: str = Field(description="Candidate model id, provider:model.")
    strategy: Literal["shadow", "canary", "full"] = Field(default="canary")
    steps: list[float] | None = Field(default=None, description="Canary steps in percent, ending at 100.")
    retire_previous: bool | None = Field(default=None, description="Retire the old current model on completion.")
    reason: str | None = None
    violations: list[int] | None = Field(default=None, description="Guardrail violations this deploy answers (an "
                                         "SLO switch): evidence, not part of what it does; the proposal is "
                                         "withdrawn once they clear.")
    no_check: bool = Field(default=False, description="Skip the model's check before it takes traffic (one tiny "
                           "completion; tools/checks.py); an agent's no_check needs a human approval.")


class UseCaseIn(_In):
    use_case: str


class AdvanceIn(_In):
    use_case: str
    resume: bool | None = Field(default=None, description="Resume a paused rollout (restarts its window).")
    no_check: bool = Field(default=False, description="Skip the candidate's check before a promotion to 100% "
                           "(tools/checks.py); an agent's no_check needs a human approval.")


class AbortIn(_In):
    use_case: str
    reason: str | None = None


class RollbackIn(_In):
    use_case: str
    snapshot_id: int | None = Field(default=None, description="Snapshot to restore; default: before the last rollout.")
    reason: str | None = None


class GuardCheckIn(_In):
    use_case: str | None = None


class RetireIn(_In):
    model_id: str
    reason: str | None = None


class AgentSettings(_In):
    """What the playbook planner does for one use case (config['agent'])."""

    rollout_strategy: Literal["shadow", "canary", "full"] | None = None
    fine_tune_min_feedback: int | None = Field(default=None, ge=1, description="New high-feedback logs before a fine-tune.")
    fine_tune: dict[str, Any] | None = Field(default=None, description="Extra fine_tune arguments (max_steps, ...).")
    evaluate: dict[str, Any] | None = Field(default=None, description="Extra evaluate arguments (samples, ...).")
    build_dataset: dict[str, Any] | None = Field(default=None, description="Extra build_dataset arguments (min_rows, ...).")
    rollout_fine_tunes_on_pass: bool | None = Field(
        default=None, description="Roll out a passing fine-tune of the current model trained on this use case's own "
        "traffic even without a measured quality gain (its point is specialisation).")


def _within_bounds(section: str, value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Refuse (as bad input, before any approval is asked) values looser than the section's hard bounds."""
    from modelsteward.bounds import SECTIONS, clamp_section

    if value is None:
        return value
    try:
        clamp_section(section, value, strict=True)  # unknown keys, non-numbers, negatives
    except Exception as exc:  # InvalidInput -> a validation error naming the field
        raise ValueError(str(getattr(exc, "message", exc))) from None
    for key, raw in value.items():
        b = SECTIONS[section][key]
        if b.clamp(float(raw)) != float(raw):
            side = "above" if b.kind == "max" else "below"
            raise ValueError(f"{section}.{key}={float(raw):g} is {side} its hard bound {b.hard:g} "
                             f"(it may only be tightened; default {b.default:g})")
    return value


class SetPolicyIn(_In):
    use_case: str
    policy: dict[str, Any] | None = Field(default=None, description="Thresholds of config['policy'].")
    rollout: dict[str, Any] | None = Field(default=None, description="Analysis settings of config['rollout'].")
    guardrails: dict[str, Any] | None = Field(default=None, description="Thresholds of config['guardrails'].")
    evaluation: dict[str, Any] | None = Field(default=None, description="Evaluation budget of config['evaluation'].")
    agent: AgentSettings | None = Field(default=None, description="Playbook settings of config['agent'].")

    @field_validator("evaluation")
    @classmethod
    def _evaluation_bounds(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return _within_bounds("evaluation", v)

    @model_validator(mode="after")
    def _known_and_within_bounds(self) -> SetPolicyIn:
        """Unknown settings and values looser than a hard bound are refused when the change is
        requested (InvalidInput), not after a person approved it."""
        from modelsteward.bounds import SECTIONS, clamp_section, validate_steps

        for section in SECTIONS:
            new = getattr(self, section, None)
            if new:
                clamp_section(section, new, strict=True)
                if section == "rollout" and "steps" in new:
                    validate_steps(new["steps"])
        return self


class _View(BaseModel):
    """A read shape handed up from ``rollout/``: its known fields typed; a key the layer below adds
    later is kept (``extra="allow"``), never silently dropped from the documented JSON."""

    model_config = ConfigDict(extra="allow")
    # keys the layer below writes only when there is something to say: left out when None (as before)
    _omit_none: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")  # not annotated: the JSON schema stays the model's own
    def _drop_absent(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        out = handler(self)
        return {k: v for k, v in out.items() if not (v is None and k in self._omit_none)}


class RoutingView(_View):
    """One row of a routing table."""

    model_id: str
    weight: float
    role: str


class WindowView(_View):
    """One model's aggregates over an analysis window (``rollout.metrics.WindowMetrics.as_dict``)."""

    requests: int = 0
    errors: int = 0
    p95_ms: float | None = None
    cost_per_request: float | None = None
    mean_feedback: float | None = None
    feedback_count: int = 0
    feedback_var: float | None = None
    flagged: int = 0
    cost_usd: float = 0.0
    error_rate: float | None = None
    flag_rate: float | None = None


class BenefitView(_View):
    """The benefit a decision rests on (``evals.benefit.Benefit``): cheaper | better | none."""

    verdict: str = "none"
    rule: str = ""
    quality_ratio: float | None = None
    quality_ratio_lcb: float | None = None
    cost_ratio: float | None = None
    method: str = ""


class AnalysisView(_View):
    """One analysis of a rollout step (``rollout.analysis.Analysis.as_dict``)."""

    outcome: str
    reasons: list[str] = Field(default_factory=list)
    candidate: WindowView = Field(default_factory=WindowView)
    stable: WindowView = Field(default_factory=WindowView)
    similarity: float | None = None
    elapsed_s: float = 0.0
    step_index: int = 0
    weight: float = 0.0
    at: str = ""
    benefit: dict[str, Any] | None = Field(default=None, description="Set before a promotion: the benefit it rests "
                                           "on (its verdict, the offline and online evidence).")
    _omit_none: ClassVar[frozenset[str]] = frozenset({"benefit"})


class RolloutView(_View):
    """A rollout as ``rollout.manager.rollout_dict`` describes it."""

    id: int
    use_case_id: int | None = None
    candidate: str
    stable: str | None = None
    strategy: str
    steps: list[float] = Field(default_factory=list)
    step_index: int = 0
    weight: float | None = None
    state: str
    step_started_at: str | None = None
    snapshot_id: int | None = None
    actor: str | None = None
    reason: str | None = None
    events: list[dict[str, Any]] = Field(default_factory=list, description="The rollout's event log (analyses, "
                                         "pauses, rollbacks; heterogeneous by ``event``).")
    created_at: str | None = None
    pause_reason: str | None = None
    outcome: str | None = None
    history_id: int | None = None
    _omit_none: ClassVar[frozenset[str]] = frozenset({"history_id"})


class RolloutOut(BaseModel):
    use_case: str
    action: str = Field(description="deployed | status | advanced | completed | waiting | paused | resumed | rolled_back"
                        " | no_gain (every step passed but nothing to gain: the current model is kept)")
    message: str = ""
    version: int | None = None
    routing: list[RoutingView] = Field(default_factory=list)
    rollout: RolloutView | None = None
    analysis: AnalysisView | None = None
    snapshot_id: int | None = None
    changed: bool | None = None


class GuardOut(BaseModel):
    checked: list[str]
    violations: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    proposals: list[dict[str, Any]] = Field(default_factory=list, description="Pending proposals answering a "
                                            "violation that this check updated (evidence) or withdrew (cause cleared).")


class RetireOut(BaseModel):
    model_id: str
    status: str
    changed: bool
    removed_from: list[str]


class SetPolicyOut(BaseModel):
    use_case: str
    config: dict[str, Any]
    notes: list[str]


def _mgr(ctx: ToolContext):  # type: ignore[no-untyped-def]
    from modelsteward.rollout import RolloutManager

    return RolloutManager(ctx.steward, clock=ctx.clock)


def _version(ctx: ToolContext, use_case: str) -> int:
    return ctx.steward.registry.deployment(use_case).version


def _shadow_percent(ctx: ToolContext, inp: DeployIn) -> float | None:
    from sqlalchemy import select

    from modelsteward.policies.rules import shadow_share
    from modelsteward.storage.db import session_scope
    from modelsteward.storage.models import UseCase

    with session_scope(ctx.steward.sessions) as s:
        uc = s.scalar(select(UseCase).where(UseCase.name == inp.use_case))
        return None if uc is None else shadow_share(s, uc, inp.model_id, ctx.clock())[0]


def _routing_changed(inp: Any, before: dict[str, Any], after: dict[str, Any]) -> tuple[bool, str]:
    """A routing change shows as a new deployment version or a changed rollout (a deploy also as its model live)."""
    b, a = observed_use_case(before, inp.use_case), observed_use_case(after, inp.use_case)
    changed = b.get("deployment_version") != a.get("deployment_version") or b.get("rollouts") != a.get("rollouts")
    live = [x["model_id"] for x in a.get("allocations", [])]
    ok = changed or (isinstance(inp, DeployIn) and inp.model_id in live)
    return ok, f"routing v{b.get('deployment_version')} -> v{a.get('deployment_version')}; live: {live}"


def _usage(ctx: ToolContext, use_case: str) -> dict[str, float]:
    from modelsteward.rollout.metrics import usage

    return usage(ctx.steward, use_case)


def _deploy_facts(ctx: ToolContext, inp: DeployIn) -> dict[str, Any]:
    """The ``deploy`` rule's budget and cost checks read the use case's traffic, its capability
    check what that traffic needs of a model."""
    from modelsteward.catalog.compat import infer_requirements

    return {"usage": _usage(ctx, inp.use_case), "traffic_needs": infer_requirements(ctx.steward, inp.use_case)}


def advance_facts(ctx: ToolContext, use_case: str, analysis: Any = None) -> dict[str, Any]:
    """What the ``rollout_advance`` rule reads: for a waiting canary, the analysis of its step (the one
    given: the tool re-checks with the analysis it acts on), the promotion benefit when the next
    step is 100 %, and the use case's traffic."""
    from modelsteward.bounds import section_of
    from modelsteward.rollout.analysis import analyse_rollout, promotion_benefit
    from sqlalchemy import select

    from modelsteward.storage.db import session_scope
    from modelsteward.storage.models import Rollout, UseCase

    with session_scope(ctx.steward.sessions) as s:
        uc = s.scalar(select(UseCase).where(UseCase.name == use_case))
        ro = None if uc is None else s.scalars(
            select(Rollout).where(Rollout.use_case_id == uc.id, Rollout.state == "waiting")).first()
    if uc is None or ro is None or ro.strategy == "shadow":
        return {}  # the rule has nothing to check
    cfg = section_of(uc.config, "rollout")
    facts: dict[str, Any] = {"analysis": analysis or analyse_rollout(ctx.steward, ro, cfg, ctx.clock(), uc.name)}
    steps = [float(x) for x in ro.steps or []]
    nxt = ro.step_index + 1
    if facts["analysis"].outcome != "successful" or nxt >= len(steps):
        return facts
    if steps[nxt] >= 100.0 and ro.strategy == "canary":
        facts["benefit"] = promotion_benefit(ctx.steward, ro, cfg, uc.name)[0]
    facts["usage"] = _usage(ctx, uc.name)
    return facts


def _expire_promotion_approvals(ctx: ToolContext, use_case: str) -> None:
    """A use case with no active rollout has no promotion left to approve: pending (or approved,
    unexecuted) ``rollout_advance`` approvals of it expire, naming the rollout that ended."""
    from modelsteward.policies import approvals
    from modelsteward.storage.states import ACTIVE_ROLLOUT_STATES
    from sqlalchemy import select

    from modelsteward.storage.db import session_scope
    from modelsteward.storage.models import Rollout, UseCase

    with session_scope(ctx.steward.sessions) as s:
        uc = s.scalar(select(UseCase).where(UseCase.name == use_case))
        if uc is None:
            return
        last = s.scalars(select(Rollout).where(Rollout.use_case_id == uc.id).order_by(Rollout.id.desc())).first()
        if last is None or last.state in ACTIVE_ROLLOUT_STATES:
            return
        approvals.expire_for(s, "rollout_advance", use_case, f"rollout {last.id} {last.state.replace('_', ' ')}")


def _check_deploy(ctx: ToolContext, inp: DeployIn) -> None:
    """The candidate's check before it takes traffic (shadow included: it costs a call per mirrored
    request), unless ``no_check``; runs before the policies (``tools/checks.py``)."""
    from modelsteward.tools.checks import require_checks

    require_checks(ctx, [inp.model_id], f"a {inp.strategy} of {inp.use_case!r}", inp.no_check)


@tool("deploy", input_model=DeployIn, output_model=RolloutOut, mutating=True, facts=_deploy_facts,
      check=_check_deploy, verify=_routing_changed)
def deploy(ctx: ToolContext, inp: DeployIn) -> RolloutOut:
    """Start a shadow, canary or full rollout of a candidate model on a use case.  A shadow of a
    model with no passing evaluation mirrors at most ``unevaluated_shadow_percent`` of requests."""
    res = _mgr(ctx).deploy(
        inp.use_case, inp.model_id, inp.strategy, actor=ctx.actor, reason=inp.reason or "",
        steps=inp.steps, retire_previous=bool(inp.retire_previous),
        shadow_percent=_shadow_percent(ctx, inp) if inp.strategy == "shadow" else None,
    )
    _expire_promotion_approvals(ctx, inp.use_case)  # a full switch ends its rollout at once
    ro = res["rollout"]
    msg = (f"{inp.strategy} rollout {ro['id']} of {inp.model_id} on {inp.use_case}: "
           + ("completed" if ro["state"] == "completed" else f"step 0 ({ro['steps'][0]:g}%) live, waiting for analysis"))
    return RolloutOut(use_case=inp.use_case, action="deployed", message=msg, version=_version(ctx, inp.use_case),
                      routing=res["routing"], rollout=ro, snapshot_id=ro["snapshot_id"])


@tool("rollout_status", input_model=UseCaseIn, output_model=RolloutOut, mutating=False)
def rollout_status(ctx: ToolContext, inp: UseCaseIn) -> RolloutOut:
    """The use case's active (or latest) rollout, its events and the live routing table."""
    st = ctx.steward.reader.rollout_status(inp.use_case)
    ro = st["rollout"]
    msg = "no rollout yet" if ro is None else (
        f"rollout {ro['id']} ({ro['strategy']} of {ro['candidate']}) {ro['state']} at step {ro['step_index']}"
        + (f" ({ro['weight']:g}%)" if ro.get("weight") is not None else "")
        + (f": {ro['pause_reason']}" if ro.get("pause_reason") else "")
        + (f": {ro['outcome']}" if ro.get("outcome") and ro["state"] != "paused" else "")
    )
    return RolloutOut(use_case=inp.use_case, action="status", message=msg, version=st["version"],
                      routing=st["routing"], rollout=ro)


def _check_promotion(ctx: ToolContext, inp: AdvanceIn) -> None:
    """Before an advance that would promote a canary to 100 % (the candidate becomes the live model):
    the candidate's check, before the policies, so no approval is asked for a model that cannot
    answer (tools/checks.py).  A failing check refuses it only when the advance would promote (the
    step's analysis successful and a benefit worth it): a failed analysis rolls the canary back, an
    inconclusive one waits, no gain keeps the current model, and a check never stands in their way."""
    from modelsteward.errors import CheckFailed
    from modelsteward.tools.checks import require_checks

    ro = ctx.steward.reader.rollout_status(inp.use_case)["rollout"]
    steps = [float(x) for x in (ro or {}).get("steps") or []]
    if inp.no_check or ro is None or ro["state"] != "waiting" or ro["strategy"] != "canary" \
            or ro["step_index"] + 1 >= len(steps) or steps[ro["step_index"] + 1] < 100.0:
        return
    try:
        require_checks(ctx, [ro["candidate"]], f"live on {inp.use_case!r} (promotion to 100%)", False)
    except CheckFailed:
        facts = advance_facts(ctx, inp.use_case)
        analysis, benefit = facts.get("analysis"), facts.get("benefit")
        if analysis is not None and analysis.outcome == "successful" and benefit is not None and benefit.worth_it:
            raise


@tool("rollout_advance", input_model=AdvanceIn, output_model=RolloutOut, mutating=True,
      facts=lambda ctx, inp: advance_facts(ctx, inp.use_case), check=_check_promotion, verify=_routing_changed)
def rollout_advance(ctx: ToolContext, inp: AdvanceIn) -> RolloutOut:
    """Analyse the current canary step and advance (successful), roll back (failed) or wait (inconclusive)."""
    args = inp.model_dump(mode="json")

    def gate(analysis: Any) -> None:
        # Raising traffic: re-check the policies with the analysis acted on, unless a human approval
        # of this very call was consumed on the way in.  Promotion never happens without one.
        if "rollout_advance" in ctx.approved_actions:
            return
        from modelsteward.policies import enforce

        enforce(ctx, "rollout_advance", args, facts=advance_facts(ctx, inp.use_case, analysis))

    res = _mgr(ctx).advance(inp.use_case, actor=ctx.actor, resume=bool(inp.resume), gate=gate)
    _expire_promotion_approvals(ctx, inp.use_case)
    an = res.get("analysis")
    reasons = "; ".join(an["reasons"]) if an else ""
    msg = res.get("message") or reasons or res["action"]  # the action is its own field: not repeated here
    rb = res.get("rollback") or {}
    st = ctx.steward.reader.rollout_status(inp.use_case)
    return RolloutOut(use_case=inp.use_case, action=res["action"], message=msg, version=st["version"],
                      routing=st["routing"], rollout=res.get("rollout") or st["rollout"], analysis=an,
                      snapshot_id=rb.get("snapshot_id"), changed=rb.get("changed"))


@tool("rollout_abort", input_model=AbortIn, output_model=RolloutOut, mutating=True, verify=_routing_changed)
def rollout_abort(ctx: ToolContext, inp: AbortIn) -> RolloutOut:
    """Abort the active rollout and restore the routing from before it."""
    rb = _mgr(ctx).abort(inp.use_case, actor=ctx.actor, reason=inp.reason or "aborted by " + ctx.actor)
    _expire_promotion_approvals(ctx, inp.use_case)
    return RolloutOut(use_case=inp.use_case, action="rolled_back", message=f"restored snapshot {rb['snapshot_id']}",
                      version=rb["version"], routing=rb["routing"], rollout=rb["rollout"],
                      snapshot_id=rb["snapshot_id"], changed=rb["changed"])


@tool("rollback", input_model=RollbackIn, output_model=RolloutOut, mutating=True, verify=_routing_changed)
def rollback(ctx: ToolContext, inp: RollbackIn) -> RolloutOut:
    """Restore a snapshot's routing table and config exactly (default: before the last rollout); idempotent."""
    from modelsteward.rollout import RollbackManager

    rb = RollbackManager(ctx.steward, clock=ctx.clock).rollback(
        inp.use_case, actor=ctx.actor, reason=inp.reason or "", snapshot_id=inp.snapshot_id,
    )
    _expire_promotion_approvals(ctx, inp.use_case)
    msg = (f"restored snapshot {rb['snapshot_id']} (verified)" if rb["changed"]
           else f"already at snapshot {rb['snapshot_id']}; nothing changed")
    return RolloutOut(use_case=inp.use_case, action="rolled_back", message=msg, version=rb["version"],
                      routing=rb["routing"], rollout=rb["rollout"], snapshot_id=rb["snapshot_id"], changed=rb["changed"])


@tool("guard_check", input_model=GuardCheckIn, output_model=GuardOut, mutating=True)
def guard_check(ctx: ToolContext, inp: GuardCheckIn) -> GuardOut:
    """Read recent log analytics, record guardrail violations and act on them (warn, pause, roll back, disable)."""
    from modelsteward.rollout import GuardrailsMonitor

    res = GuardrailsMonitor(ctx.steward, clock=ctx.clock).check(inp.use_case, actor=ctx.actor)
    for name in res["checked"]:  # a guardrail may have rolled a rollout back
        _expire_promotion_approvals(ctx, name)
    return GuardOut(**res, proposals=_maintain_proposals(ctx, res["checked"]))


def _maintain_proposals(ctx: ToolContext, names: list[str]) -> list[dict[str, Any]]:
    """Pending proposals answering a violation: new evidence added, or withdrawn once the cause cleared
    for a whole guardrail window (``policies/proposals.py``)."""
    import datetime as dt

    from sqlalchemy import select

    from modelsteward.bounds import section_of
    from modelsteward.policies import proposals
    from modelsteward.storage.db import session_scope
    from modelsteward.storage.models import UseCase

    out: list[dict[str, Any]] = []
    with session_scope(ctx.steward.sessions) as s:
        for uc in s.scalars(select(UseCase).where(UseCase.name.in_(names))):
            window = dt.timedelta(minutes=float(section_of(uc.config, "guardrails")["window_minutes"]))
            out += [{"use_case": uc.name, **p} for p in proposals.maintain(s, uc.id, ctx.clock(), window)]
    return out


@tool("retire_model", input_model=RetireIn, output_model=RetireOut, mutating=True)
def retire_model(ctx: ToolContext, inp: RetireIn) -> RetireOut:
    """Retire a model (refused while it serves live traffic; a current model needs an approval)."""
    return RetireOut(**_mgr(ctx).retire(inp.model_id, actor=ctx.actor, reason=inp.reason or ""))


@tool("set_policy", input_model=SetPolicyIn, output_model=SetPolicyOut, mutating=True)
def set_policy(ctx: ToolContext, inp: SetPolicyIn) -> SetPolicyOut:
    """Change a use case's policy, rollout or guardrail thresholds (always needs an approval; values
    looser than a hard bound are refused)."""
    from modelsteward.errors import InvalidInput
    from modelsteward.bounds import SECTIONS, clamp_section, validate_steps

    uc = ctx.steward.registry.get_use_case(inp.use_case)
    cfg = dict(uc.config or {})
    notes: list[str] = []
    for section in SECTIONS:
        new = getattr(inp, section)
        if new is None:
            continue
        merged = {**(cfg.get(section) or {}), **new}
        _, sec_notes = clamp_section(section, merged, strict=True)
        if sec_notes:
            raise InvalidInput(f"Refused: {'; '.join(sec_notes)}.")
        if section == "rollout" and "steps" in merged:
            pol = clamp_section("policy", (cfg.get("policy") or {}) | (inp.policy or {}))[0]
            merged["steps"] = validate_steps(merged["steps"], float(pol["max_step_points"]))
        cfg[section] = merged
        notes.append(f"{section}: {', '.join(f'{k}={v}' for k, v in new.items())}")
    if inp.agent is not None:
        new_agent = inp.agent.model_dump(exclude_none=True)
        cfg["agent"] = {**(cfg.get("agent") or {}), **new_agent}
        notes.append(f"agent: {', '.join(f'{k}={v}' for k, v in new_agent.items())}")
    ctx.steward.registry.update_use_case(inp.use_case, config=cfg)
    return SetPolicyOut(use_case=inp.use_case, config=cfg, notes=notes)
