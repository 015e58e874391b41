"""One verdict per call (issue 27 item 4): the guard node's policy verdict and the facts it used travel
with the call, so one ``rollout_advance`` -- agent-driven or not -- analyses its window once, weighs
the benefit once and passes the policy engine once; a verdict never stands for another call."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from agent_helpers import shared_mlflow  # noqa: F401 - fixture
from langchain_core.messages import AIMessage, ToolMessage
from rollout_helpers import CAND, STABLE, UC, add_rows, backdate_step, ctx, healthy_window, pass_eval, setup_use_case

from modelsteward.errors import ApprovalRequired
from modelsteward.facts import VERDICT_MAX_AGE_S, Decision, Verdict, canonical_args
from modelsteward.policies import VerdictMismatch, enforce, judge
from modelsteward.policies.registry import RULES, Facts, Rule
from modelsteward.rollout import RolloutManager
from modelsteward.tools import call_tool
from modelsteward.tools.base import get_tool

# their models (openai:) answer the check a model passes before it takes traffic (tools/checks.py)
pytestmark = pytest.mark.usefixtures("hosted_upstream")


class Counts:
    """Spies on the three computations one advance must do at most once each."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import modelsteward.evals.benefit as benefit_mod
        import modelsteward.rollout.analysis as analysis_mod

        self.n = {"analysis": 0, "benefit": 0, "policy": {}}
        judge_window, online = analysis_mod.judge, benefit_mod.online_benefit

        def counted_judge(*a: Any, **kw: Any) -> Any:  # every window analysis ends in analysis.judge
            self.n["analysis"] += 1
            return judge_window(*a, **kw)

        def counted_online(*a: Any, **kw: Any) -> Any:  # every promotion benefit weighs the online one
            self.n["benefit"] += 1
            return online(*a, **kw)

        monkeypatch.setattr(analysis_mod, "judge", counted_judge)
        monkeypatch.setattr(benefit_mod, "online_benefit", counted_online)
        for name in ("rollout_advance", "deploy", "t_note"):
            if name in RULES:
                monkeypatch.setitem(RULES, name, self._counted_rule(RULES[name]))

    def _counted_rule(self, rule: Rule) -> Rule:
        def func(f: Facts, s: Any, args: dict[str, Any]) -> Any:
            self.n["policy"][rule.tool] = self.n["policy"].get(rule.tool, 0) + 1
            return rule(f, s, args)

        return Rule(rule.tool, func, rule.doc)

    def __call__(self) -> tuple[int, int, int]:
        return self.n["analysis"], self.n["benefit"], self.n["policy"].get("rollout_advance", 0)


@pytest.fixture
def st(steward):  # type: ignore[no-untyped-def]
    setup_use_case(steward)
    return steward


def _at_first_step(st: Any) -> None:
    pass_eval(st)
    call_tool("deploy", {"use_case": UC, "model_id": CAND, "strategy": "canary"}, ctx(st))
    healthy_window(st, 5)


def _at_last_step_without_gain(st: Any) -> None:
    """A canary whose next step is the promotion, with nothing to gain (the rule allows; the tool
    ends it "no gain"): the one path where a single advance analyses, weighs the benefit and passes."""
    pass_eval(st, benefit="none")
    call_tool("deploy", {"use_case": UC, "model_id": CAND, "strategy": "canary"}, ctx(st))
    for w in (5, 25, 50):
        backdate_step(st, 60)
        add_rows(st, CAND, "canary", 12, feedback=0.4)
        add_rows(st, STABLE, "primary", 40, feedback=0.5)
        if w < 50:
            assert call_tool("rollout_advance", {"use_case": UC}, ctx(st)).action == "advanced"


# ---------------------------------------------------------------------------------------- CLI / API
def test_a_cli_advance_analyses_once_and_passes_the_policies_once(st, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _at_first_step(st)
    count = Counts(monkeypatch)
    out = call_tool("rollout_advance", {"use_case": UC}, ctx(st))
    assert out.action == "advanced" and out.rollout.step_index == 1
    assert count() == (1, 0, 1)


def test_a_cli_promotion_without_gain_weighs_the_benefit_once(st, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _at_last_step_without_gain(st)
    count = Counts(monkeypatch)
    out = call_tool("rollout_advance", {"use_case": UC}, ctx(st))
    assert out.action == "no_gain" and out.analysis.benefit["verdict"] == "none"
    assert out.analysis.benefit["evidence"]["online"]["rule"]  # the evidence judged travelled to the record
    assert count() == (1, 1, 1)


def test_the_tool_body_alone_still_passes_the_policies_before_raising_traffic(st, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Without a verdict (no policy pass on the way in) the manager analyses itself, and the tool
    passes the policies with that analysis before traffic goes up: a promotion still needs an approval."""
    from modelsteward.tools.rollout import AdvanceIn, rollout_advance

    pass_eval(st)
    call_tool("deploy", {"use_case": UC, "model_id": CAND, "strategy": "canary"}, ctx(st))
    for w in (5, 25, 50):
        healthy_window(st, w)
        if w < 50:
            call_tool("rollout_advance", {"use_case": UC}, ctx(st))
    count = Counts(monkeypatch)
    with pytest.raises(ApprovalRequired, match="promotion_to_100"):
        rollout_advance(ctx(st), AdvanceIn(use_case=UC))
    assert count()[2] == 1 and RolloutManager(st).active(UC).step_index == 2


# ---------------------------------------------------------------------------------------- the agent
class _Scripted:
    """A planner that proposes ``calls`` once, then stops."""

    name = "scripted"

    def __init__(self, calls: list[tuple[str, dict[str, Any]]]) -> None:
        self.calls = calls

    def tool_names(self, available: Any) -> list[str]:
        return sorted({n for n, _ in self.calls})

    def plan(self, state: Any, tools: Any) -> AIMessage:
        if any(isinstance(m, ToolMessage) for m in state["messages"]):
            return AIMessage(content="done")
        return AIMessage(content="", tool_calls=[{"name": n, "args": a, "id": f"call_{i}"}
                                                 for i, (n, a) in enumerate(self.calls)])


def _journal(st: Any, run_id: int) -> list[dict[str, Any]]:
    from modelsteward.storage.db import session_scope
    from modelsteward.storage.models import AgentRun

    with session_scope(st.sessions) as s:
        return list(s.get(AgentRun, run_id).steps or [])


def test_an_agent_advance_analyses_once_and_passes_the_policies_once(st, monkeypatch, shared_mlflow) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from modelsteward.agent import run_agent

    _at_first_step(st)
    count = Counts(monkeypatch)
    res = run_agent(st, planner=_Scripted([("rollout_advance", {"use_case": UC})]))
    tool = [e for e in _journal(st, res.run_id) if e.get("kind") == "tool"]
    assert [(e["name"], e["ok"]) for e in tool] == [("rollout_advance", True)], tool
    assert RolloutManager(st).active(UC).step_index == 1
    assert count() == (1, 0, 1)  # the guard judged; act, the tool and the manager reused its verdict


def test_an_agent_promotion_without_gain_weighs_the_benefit_once(st, monkeypatch, shared_mlflow) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from modelsteward.agent import run_agent

    _at_last_step_without_gain(st)
    count = Counts(monkeypatch)
    run_agent(st, planner=_Scripted([("rollout_advance", {"use_case": UC})]))
    assert RolloutManager(st).latest(UC).state == "aborted"  # "no gain, kept the current model"
    assert count() == (1, 1, 1)


def test_an_agent_verdict_is_dropped_once_another_change_ran(st, monkeypatch, shared_mlflow) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """Two calls judged together: after the first mutating call ran, the second's verdict judged a world
    that changed, so the second call is judged again."""
    import agent_helpers  # noqa: F401 - registers the test tool t_note

    from modelsteward.agent import run_agent

    _at_first_step(st)
    count = Counts(monkeypatch)
    run_agent(st, planner=_Scripted([("t_note", {"text": "first"}), ("rollout_advance", {"use_case": UC})]))
    assert RolloutManager(st).active(UC).step_index == 1
    assert count.n["policy"] == {"t_note": 1, "rollout_advance": 2}
    assert count()[0] == 2  # the judged analysis was not trusted either


# ---------------------------------------------------------------------------------------- the binding
def _shadow_deploy_verdict(st: Any) -> tuple[Verdict, dict[str, Any]]:
    pass_eval(st)
    spec = get_tool("deploy")
    args = {"use_case": UC, "model_id": CAND, "strategy": "shadow"}
    inp = spec.input_model.model_validate(args)
    v = judge(ctx(st), "deploy", inp.model_dump(mode="json"), facts=spec.facts(ctx(st), inp))
    assert v.decision.verdict == "allow"
    return v, args


def test_a_verdict_for_other_arguments_is_judged_again(st, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """An allow for a shadow deploy handed in with a full deploy (100 % at once) must not stand in
    for it: the call is judged again and needs its approval."""
    v, args = _shadow_deploy_verdict(st)
    count = Counts(monkeypatch)
    with pytest.raises(ApprovalRequired, match="promotion_to_100"):
        call_tool("deploy", {**args, "strategy": "full"}, ctx(st), verdict=v)
    assert count.n["policy"] == {"deploy": 1}
    assert st.registry.routing_table(st.registry.deployment(UC)) == [
        {"model_id": STABLE, "weight": 100.0, "role": "primary"}]
    with pytest.raises(VerdictMismatch, match="other arguments"):  # the engine refuses it outright
        enforce(ctx(st), "deploy", get_tool("deploy").input_model.model_validate({**args, "strategy": "full"})
                .model_dump(mode="json"), verdict=v)


def test_a_fitting_verdict_is_acted_on_without_judging_again(st, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    v, args = _shadow_deploy_verdict(st)
    count = Counts(monkeypatch)
    out = call_tool("deploy", args, ctx(st), verdict=v)
    assert out.rollout.strategy == "shadow" and count.n["policy"] == {}


@pytest.mark.parametrize("change, why", [
    ("tool", "tool 'deploy', not 'rollback'"),
    ("actor", "by 'cli:alice', not 'agent:run-1'"),
    ("approval", "under approval None, not 7"),
    ("stale", f"at most {VERDICT_MAX_AGE_S:g} s"),
    ("future", "after now"),
])
def test_a_verdict_is_bound_to_tool_actor_approval_and_clock(st, change, why) -> None:  # type: ignore[no-untyped-def]
    v, args = _shadow_deploy_verdict(st)
    a = get_tool("deploy").input_model.model_validate(args).model_dump(mode="json")
    assert canonical_args(a) == v.args
    kw: dict[str, Any] = {"actor": v.actor, "approval_id": v.approval_id, "workspace": v.workspace, "now": v.at}
    tool = "deploy"
    if change == "tool":
        tool = "rollback"
    elif change == "actor":
        kw["actor"] = "agent:run-1"
    elif change == "approval":
        kw["approval_id"] = 7
    elif change == "stale":
        kw["now"] = v.at + dt.timedelta(seconds=VERDICT_MAX_AGE_S + 1)
    else:
        kw["now"] = v.at - dt.timedelta(seconds=1)
    assert v.misfit("deploy", a, **{**kw, "actor": v.actor, "approval_id": v.approval_id, "now": v.at}) is None
    assert why in (v.misfit(tool, a, **kw) or "")


def test_a_stale_verdict_is_judged_again_by_the_calls_clock(st, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    v, args = _shadow_deploy_verdict(st)
    count = Counts(monkeypatch)
    later = ctx(st, clock=lambda: v.at + dt.timedelta(seconds=VERDICT_MAX_AGE_S + 5))
    call_tool("deploy", args, later, verdict=v)
    assert count.n["policy"] == {"deploy": 1}


def test_the_facts_are_typed(st) -> None:  # type: ignore[no-untyped-def]
    """``Facts.analysis`` / ``Facts.benefit`` are protocols the domain's classes meet; anything else is
    refused when the facts are built, naming the fact."""
    from modelsteward.evals.benefit import Benefit
    from modelsteward.facts import AnalysisFact, BenefitFact
    from modelsteward.rollout.analysis import Analysis

    assert isinstance(Analysis(outcome="successful"), AnalysisFact)
    assert isinstance(Benefit("none", "no gain", None, None, None, ""), BenefitFact)
    now = dt.datetime(2026, 1, 1)
    with pytest.raises(TypeError, match="'analysis' must meet AnalysisFact"):
        Facts(steward=st, actor="cli:a", now=now, analysis={"outcome": "successful"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'benefit' must meet BenefitFact"):
        Facts(steward=st, actor="cli:a", now=now, benefit="better")  # type: ignore[arg-type]


def test_a_verdicts_facts_cannot_be_changed_after_it_was_judged() -> None:
    v = Verdict(tool="t", args="{}", actor="a", approval_id=None, workspace="w", at=dt.datetime(2026, 1, 1),
                decision=Decision("allow"), facts={"usage": {"requests": 1.0}})
    with pytest.raises(TypeError):
        v.facts["usage"] = {}  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.decision = Decision("deny")  # type: ignore[misc]
