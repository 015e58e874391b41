"""The playbook's rules, one at a time, on hand-made observations (the planner is a pure function
of the state and the bound tools)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from modelsteward.agent import PlaybookPlanner, agent_toolset
from modelsteward.agent.planners import deploy_decision

TOOLS = {k: v for k, v in agent_toolset().items() if k != "guard_check"}  # rule 0 tested on its own


def model(mid: str, *, status: str = "candidate", kind: str = "paid", price: float = 1.0,
          test: dict[str, Any] | None = None, shadow_passed: bool = False) -> dict[str, Any]:
    return {"id": mid, "status": status, "kind": kind, "price_in_per_m": price, "price_out_per_m": price,
            "parent_model_id": None, "description": "", "latest_test": test, "shadow_passed": shadow_passed}


def obs(**uc: Any) -> dict[str, Any]:
    base = {"name": "chat", "current_model": "openai:cur", "allocations": [], "deployment_version": 1,
            "models": [model("openai:cur", status="current", price=2.0)], "rollouts": [], "violations": [],
            "last_fine_tune": None, "pending_approvals": [], "new_feedback": {}, "agent_config": {}}
    base.update(uc)
    return {"use_cases": [base], "catalog": {"stale": False}, "pending_approvals": [], "errors": []}


def plan(observation: dict[str, Any], history: list[Any] | None = None, tools: dict[str, Any] | None = None) -> AIMessage:
    state = {"observation": observation, "messages": [HumanMessage("cycle"), *(history or [])], "use_case": None}
    return PlaybookPlanner().plan(state, tools or TOOLS)  # type: ignore[arg-type]


def calls(msg: AIMessage) -> list[tuple[str, dict[str, Any]]]:
    return [(c["name"], c["args"]) for c in msg.tool_calls]


def done(msg: AIMessage, payload: Any = None) -> list[Any]:
    """The history after ``msg``'s calls ran (with ``payload`` as each result)."""
    return [msg, *[ToolMessage(content="ok", tool_call_id=c["id"], artifact=payload) for c in msg.tool_calls]]


def ranking(*ids: str) -> dict[str, Any]:
    """A ``rank`` result as the tool returns it (its ``Ranking`` output model, dumped)."""
    from modelsteward.catalog.rank import RankedModel, Ranking

    ranked = [RankedModel(model_id=m, rank=i + 1, score=1.0 - i / 10, quality=0.8, quality_source="prior", cost_per_m=1.0,
                          cost_score=0.5, latency_ms=100.0, latency_source="prior", latency_score=0.5, confidence=0.5,
                          pareto=i == 0, reason="") for i, m in enumerate(ids)]
    return Ranking(use_case="chat", weights={}, input_share=0.5, mix_source="default", ranked=ranked).model_dump(mode="json")


def dataset(path: str, rows: int) -> dict[str, Any]:
    """A ``build_dataset`` result (its ``BuildDatasetOut``, dumped)."""
    from modelsteward.tools.training import BuildDatasetOut

    return BuildDatasetOut(use_case="chat", path=path, sha256="0" * 64, train_rows=rows, validation_rows=0, counts={},
                           window={}).model_dump(mode="json")


PASS = {"id": 4, "passed": True, "baseline": "openai:cur", "verdict": "pass", "samples": 40, "metrics": {}}
CHEAPER = {**PASS, "metrics": {"benefit": {"verdict": "cheaper", "rule": "non-inferior and 75% cheaper",
                                           "quality_ratio": 1.0, "quality_ratio_lcb": 0.97, "cost_ratio": 0.25,
                                           "method": "golden"}}}


def test_guard_check_comes_first_once() -> None:
    first = plan(obs(), tools=agent_toolset())
    assert calls(first) == [("guard_check", {})]
    assert "guard_check" not in [n for n, _ in calls(plan(obs(), done(first), tools=agent_toolset()))]


def test_severe_violation_rolls_back_or_aborts() -> None:
    v = {"policy": "error_rate", "severity": "rollback", "model_id": "openai:cand", "handled": False}
    assert calls(plan(obs(violations=[v]))) == [("rollback", {"use_case": "chat", "reason": "violation error_rate (rollback) on openai:cand"})]
    ro = {"id": 3, "candidate": "openai:cand", "strategy": "canary", "state": "waiting", "step_index": 0}
    assert calls(plan(obs(violations=[v], rollouts=[ro])))[0][0] == "rollout_abort"
    assert calls(plan(obs(violations=[{**v, "handled": True}]))) == []


def test_active_rollout_is_advanced_once_and_paused_left_alone() -> None:
    ro = {"id": 3, "candidate": "openai:cand", "strategy": "canary", "state": "waiting", "step_index": 1}
    first = plan(obs(rollouts=[ro], models=[model("openai:cur", status="current"), model("openai:x")]))
    assert calls(first) == [("rollout_advance", {"use_case": "chat"})]
    again = plan(obs(rollouts=[ro]), done(first))
    assert calls(again) == []  # once per run; no rank/evaluate/deploy while a rollout runs
    paused = plan(obs(rollouts=[{**ro, "state": "paused"}]))
    assert calls(paused) == [] and "paused" in str(paused.content)


def test_stale_catalog_is_scanned_then_candidates_ranked_then_evaluated_in_rank_order() -> None:
    models = [model("openai:cur", status="current", price=2.0), model("openai:a"), model("openai:b"), model("openai:c")]
    o = obs(models=models)
    o["catalog"]["stale"] = True
    first = plan(o)
    assert calls(first)[0][0] == "scan"
    second = plan(o, done(first))
    assert calls(second) == [("rank", {"use_case": "chat"})]
    hist = done(first) + done(second, ranking("openai:c", "openai:a", "openai:b"))
    third = plan(o, hist)
    assert calls(third) == [("evaluate", {"use_case": "chat", "model_id": "openai:c"})]
    fourth = plan(o, hist + done(third))
    assert calls(fourth) == [("evaluate", {"use_case": "chat", "model_id": "openai:a"})]
    assert calls(plan(o, hist + done(third) + done(fourth))) == []  # two evaluations per run at most


def test_eval_arguments_come_from_the_use_case_config() -> None:
    o = obs(models=[model("openai:cur", status="current"), model("openai:a")],
            agent_config={"evaluate": {"samples": 7, "bogus": 1}})
    hist = done(plan(o))
    assert calls(plan(o, hist)) == [("evaluate", {"use_case": "chat", "model_id": "openai:a", "samples": 7})]


def test_passing_cheaper_candidate_goes_shadow_then_canary() -> None:
    cheap = model("openai:a", price=0.5, test=CHEAPER)
    o = obs(models=[model("openai:cur", status="current", price=2.0), cheap])
    hist = done(plan(o))  # rank
    assert calls(plan(o, hist)) == [("deploy", {"use_case": "chat", "model_id": "openai:a", "strategy": "shadow"})]
    o2 = obs(models=[model("openai:cur", status="current", price=2.0), {**cheap, "shadow_passed": True}])
    assert calls(plan(o2, done(plan(o2))))[0][1]["strategy"] == "canary"


def test_no_rollout_for_a_dearer_equal_candidate_or_with_a_pending_approval() -> None:
    dear = model("openai:a", price=5.0, test=PASS)
    o = obs(models=[model("openai:cur", status="current", price=2.0), dear])
    assert calls(plan(o, done(plan(o)))) == []
    better = {**dear, "latest_test": {**PASS, "metrics": {"benefit": {"verdict": "better", "rule": "lcb > 1"}}}}
    o = obs(models=[model("openai:cur", status="current", price=2.0), better], pending_approvals=[7])
    assert calls(plan(o, done(plan(o)))) == []


def test_fine_tune_after_enough_feedback() -> None:
    o = obs(models=[model("local:base", status="current", kind="self_hosted", price=0)],
            new_feedback={"logs": 500, "high_feedback": 300}, agent_config={"fine_tune": {"max_steps": 5}})
    first = plan(o)
    assert calls(first) == [("build_dataset", {"use_case": "chat", "min_feedback": 0.5})]
    second = plan(o, done(first, dataset("/ws/datasets/x", 250)))
    assert calls(second) == [("fine_tune", {"use_case": "chat", "base": "local:base", "dataset": "/ws/datasets/x",
                                            "max_steps": 5})]
    few = obs(models=o["use_cases"][0]["models"], new_feedback={"high_feedback": 10})
    assert calls(plan(few)) == []


def test_no_fine_tune_in_the_run_that_ended_a_rollout() -> None:
    ro = {"id": 3, "candidate": "local:ft", "strategy": "canary", "state": "waiting", "step_index": 3}
    models = [model("local:base", status="current", kind="self_hosted", price=0)]
    during = obs(models=models, rollouts=[ro], new_feedback={"high_feedback": 300})
    advance = plan(during)
    assert calls(advance) == [("rollout_advance", {"use_case": "chat"})]
    after = obs(models=models, new_feedback={"high_feedback": 300})  # the advance promoted: no active rollout
    msg = plan(after, done(advance))
    assert calls(msg) == [] and "fine-tuning waits for new feedback" in str(msg.content)
    assert calls(plan(after)) == [("build_dataset", {"use_case": "chat", "min_feedback": 0.5})]  # next run: go


def test_missing_tools_are_skipped_and_named() -> None:
    o = obs(models=[model("openai:cur", status="current"), model("openai:a")])
    tools = {k: v for k, v in TOOLS.items() if k not in ("rank", "evaluate")}
    msg = plan(o, tools=tools)
    assert calls(msg) == [] and "tool rank missing" in str(msg.content)


def test_a_rollout_needs_a_stated_benefit() -> None:
    """Passed (non-inferior) is not enough: the evaluation must state cheaper or better; a missing
    benefit (older rows) counts as none, even for a cheaper price.  A fine-tune may go to a canary."""
    cur = model("openai:cur", price=2.0)
    d = deploy_decision(model("x", price=1.0, test=CHEAPER), cur, "chat")
    assert d.taken and d.rule == "benefit.cheaper" and d.numbers["cost_ratio"] == 0.25
    assert "test #4" in d.evidence[0]
    assert deploy_decision(model("x", price=3.0, test={**PASS, "metrics": {"benefit": {"verdict": "better"}}}),
                           cur, "chat").rule == "benefit.better"
    for test in (PASS, {**PASS, "metrics": {"benefit": {"verdict": "none", "rule": "not cheaper by 10%"}}}):
        d = deploy_decision(model("x", price=0.01, test=test), cur, "chat")
        assert not d.taken and d.rule == "benefit.none"
    ft = {**model("local:ft", kind="fine_tuned", test=PASS), "parent_model_id": "openai:cur"}
    assert deploy_decision(ft, cur, "chat").rule == "benefit.fine_tune_canary"


def test_no_benefit_is_a_declined_deploy_decision_in_the_message() -> None:
    o = obs(models=[model("openai:cur", status="current", price=2.0), model("openai:a", price=0.5, test=PASS)])
    msg = plan(o, done(plan(o)))
    assert calls(msg) == []
    recs = msg.additional_kwargs["decisions"]
    assert [(r["kind"], r["taken"], r["rule"], r["model_id"]) for r in recs] == [("deploy", False, "benefit.none", "openai:a")]


def test_fine_tune_goes_to_canary_not_full() -> None:
    ft = {**model("local:ft", kind="fine_tuned", test=PASS), "parent_model_id": "openai:cur"}
    o = obs(models=[model("openai:cur", status="current", price=2.0), ft], agent_config={"rollout_strategy": "full"})
    assert calls(plan(o, done(plan(o)))) == [("deploy", {"use_case": "chat", "model_id": "local:ft", "strategy": "canary"})]


SLO = {"id": 9, "policy": "slo_error_rate", "severity": "warn", "model_id": "openai:cur", "handled": False,
       "measured": 0.6, "threshold": 0.05, "action": "warn"}


def test_slo_violation_on_the_live_model_proposes_a_switch_to_a_passing_fallback() -> None:
    fb = model("openai:fb", test=PASS)
    o = obs(models=[model("openai:cur", status="current", price=2.0), fb], violations=[SLO], fallback=["openai:fb"])
    msg = plan(o)
    ((name, args),) = calls(msg)
    assert name == "deploy" and args["model_id"] == "openai:fb" and args["strategy"] == "full"
    assert "slo_error_rate" in args["reason"] and "violation #9" in args["reason"]
    (rec,) = msg.additional_kwargs["decisions"]
    assert rec["kind"] == "switch" and rec["rule"] == "slo.switch" and rec["numbers"]["measured"] == 0.6


def test_slo_switch_evaluates_an_untested_fallback_first_and_warns_without_one() -> None:
    o = obs(models=[model("openai:cur", status="current"), model("openai:fb")], violations=[SLO], fallback=["openai:fb"])
    assert calls(plan(o)) == [("evaluate", {"use_case": "chat", "model_id": "openai:fb"})]
    sick = {**SLO, "id": 10, "model_id": "openai:fb"}  # the fallback breaks an SLO too: not healthy
    o = obs(models=[model("openai:cur", status="current"), model("openai:fb", test=PASS)], violations=[SLO, sick],
            fallback=["openai:fb"])
    msg = plan(o)
    assert not any(n == "deploy" for n, _ in calls(msg))
    assert any(r["kind"] == "switch" and not r["taken"] and r["rule"] == "slo.no_alternative"
               for r in msg.additional_kwargs["decisions"])


def test_a_turned_down_switch_is_not_proposed_again_for_the_same_violation() -> None:
    fb = model("openai:fb", test=PASS)
    v = {**SLO, "at": "2026-12-01T08:00:00"}
    no = {"id": 3, "action": "deploy", "model_id": "openai:fb", "status": "rejected", "at": "2026-12-01T08:10:00"}
    o = obs(models=[model("openai:cur", status="current", price=2.0), fb], violations=[v], fallback=["openai:fb"],
            declined_approvals=[no])
    msg = plan(o)
    assert "deploy" not in [n for n, _ in calls(msg)]
    (rec,) = msg.additional_kwargs["decisions"]
    assert rec["rule"] == "slo.switch_turned_down" and not rec["taken"] and "approval #3" in rec["summary"]
    newer = {**v, "at": "2026-12-01T09:00:00"}  # a later violation: proposed again
    o["use_cases"][0]["violations"] = [newer]
    assert calls(plan(o))[0][0] == "deploy"


def test_rollout_results_become_decisions() -> None:
    from modelsteward.agent.decisions import from_rollout_result
    from modelsteward.tools.rollout import RolloutOut

    def out(**kw: Any) -> RolloutOut:
        return RolloutOut.model_validate({"use_case": "chat", **kw})

    ro = {"id": 2, "candidate": "local:ft", "strategy": "canary", "step_index": 3, "weight": 100.0, "state": "completed"}
    done_ = from_rollout_result({"use_case": "chat"},
                                out(action="completed", message="completed", rollout=ro,
                                    analysis={"outcome": "successful", "reasons": ["all checks passed"],
                                              "candidate": {"requests": 40}}))
    assert done_ is not None and (done_.kind, done_.rule, done_.numbers["candidate_requests"]) == ("promote", "rollout.successful", 40)
    shadow = from_rollout_result({"use_case": "chat"}, out(action="completed", rollout={**ro, "strategy": "shadow"}))
    assert shadow is not None and shadow.kind == "advance"
    back = from_rollout_result({"use_case": "chat"}, out(action="rolled_back", rollout=ro))
    assert back is not None and back.kind == "rollback"
    assert from_rollout_result({}, out(action="deployed")) is None


def test_results_are_read_through_the_tools_output_models_not_guessed() -> None:
    """A rank result that is not a ``Ranking`` orders nothing (the old walk took any string with a colon),
    and a dataset result without a ``BuildDatasetOut`` shape starts no fine-tune."""
    models = [model("openai:cur", status="current", price=2.0), model("openai:a"), model("openai:b"), model("openai:c")]
    o = obs(models=models)
    first = plan(o)
    assert calls(first) == [("rank", {"use_case": "chat"})]
    loose = {"ranked": [{"id": "openai:c"}], "notes": ["openai:b looks good"]}
    assert calls(plan(o, done(first, loose))) == [("evaluate", {"use_case": "chat", "model_id": "openai:a"})]
    assert calls(plan(o, done(first, ranking("openai:c")))) == [("evaluate", {"use_case": "chat", "model_id": "openai:c"})]
    ft = obs(models=[model("local:base", status="current", kind="self_hosted", price=0)],
             new_feedback={"high_feedback": 300})
    built = plan(ft)
    assert calls(plan(ft, done(built, {"path": "/ws/datasets/x"}))) == []


def test_each_tool_says_how_its_change_is_verified() -> None:
    """The graph's verify step asks the tool's own ``verify`` hook (no branching on tool names)."""
    from modelsteward.agent.graph import _check

    tools = agent_toolset()
    before = obs(deployment_version=1)
    after = obs(deployment_version=2, allocations=[{"model_id": "openai:a", "weight": 100.0, "role": "primary"}])
    item = {"id": "c1", "name": "deploy", "args": {"use_case": "chat", "model_id": "openai:a", "strategy": "full"}}
    assert _check(tools["deploy"], item, before, after)["status"] == "confirmed"
    assert _check(tools["deploy"], item, before, before)["status"] == "not_visible"
    ev = {"id": "c2", "name": "evaluate", "args": {"use_case": "chat", "model_id": "openai:a"}}
    tested = obs(models=[model("openai:a", test=PASS)])
    assert _check(tools["evaluate"], ev, before, tested) == {"id": "c2", "name": "evaluate", "status": "confirmed",
                                                           "detail": "latest test of openai:a: pass"}
    assert _check(tools["evaluate"], ev, before, before)["status"] == "not_visible"
    guard = {"id": "c3", "name": "guard_check", "args": {}}
    assert tools["guard_check"].verify is None and _check(tools["guard_check"], guard, before, after)["status"] == "n/a"
