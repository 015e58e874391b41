"""Issue 14: promotion needs a benefit, quality is scored without leaning on the incumbent, self-hosted
models are not free, budget projections need a span, live models have absolute SLOs."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from rollout_helpers import CAND, STABLE, UC, add_rows, backdate_step, ctx, healthy_window, pass_eval, setup_use_case
from sqlalchemy import select
from typer.testing import CliRunner

from modelsteward.catalog.hosting import HARDWARE_PROFILES, cost_per_request
from modelsteward.catalog.rank import rank_use_case
from modelsteward.cli import app
from modelsteward.errors import ApprovalRequired, InvalidInput
from modelsteward.evals import EvalConfig, evaluate
from modelsteward.evals.benefit import judge_benefit
from modelsteward.fakes.judge import FakeJudge
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import DeploymentHistory, GuardrailViolation, utcnow
from modelsteward.tools import call_tool
from evals_helpers import PROMPTS, seed_logs, write_golden

# their models (openai:, openrouter:) answer the check a model passes before it takes traffic (tools/checks.py)
pytestmark = pytest.mark.usefixtures("hosted_upstream")

ANSWERS = dict(PROMPTS)


# ------------------------------------------------------------------------------------ the one rule
def _b(**kw):  # type: ignore[no-untyped-def]
    args = dict(quality_ratio=1.0, quality_ratio_lcb=0.97, method="golden", candidate_cost=1.0, baseline_cost=1.0)
    return judge_benefit(**{**args, **kw})


def test_the_benefit_rule() -> None:
    assert _b().verdict == "none"  # non-inferior, same cost: nothing to gain
    assert _b(candidate_cost=0.85).verdict == "cheaper"
    assert _b(candidate_cost=0.95).verdict == "none"  # cheaper by less than the 10 % margin
    assert _b(candidate_cost=0.5, quality_ratio_lcb=0.90).verdict == "none"  # cheap but possibly worse
    assert _b(quality_ratio_lcb=1.02).verdict == "better"
    # a gain on a signal that leans on no independent reference is no proof
    assert _b(quality_ratio_lcb=1.2, method="pairwise").verdict == "none"
    assert _b(quality_ratio_lcb=1.2, method="reference_logs", reference_models=1).verdict == "none"
    assert _b(quality_ratio_lcb=1.2, method="reference_logs", reference_models=2).verdict == "better"
    assert _b(quality_ratio_lcb=1.2, safe=False).verdict == "none"
    b = _b(candidate_cost=0.5)
    assert b.cost_ratio == 0.5 and "cheaper at equal quality" in b.rule and b.method == "golden"


# ------------------------------------------------------------------------------------ unbiased quality
def _qa(steward, fake: FakeJudge, tmp_path, golden: bool) -> None:  # type: ignore[no-untyped-def]
    reg = steward.registry
    for name in ("good", "echo"):
        reg.register_model("custom", name, base_url=fake.base_url)
    path = write_golden(tmp_path / "golden.jsonl", PROMPTS[:6]) if golden else None
    reg.add_use_case("qa", model="custom:good", golden_set_path=str(path) if path else None)
    seed_logs(steward, "qa", "custom:good", PROMPTS[6:] if golden else PROMPTS, feedback=1.0)


@pytest.mark.parametrize("golden", [True, False], ids=["golden_set", "pairwise"])
def test_an_echo_model_is_never_non_inferior_to_a_model_that_answers(steward, tmp_path, golden) -> None:  # type: ignore[no-untyped-def]
    answers = {"good": lambda q: ANSWERS.get(q, "I cannot help with that."), "echo": lambda q: q}
    with FakeJudge(answers=answers) as fake:
        _qa(steward, fake, tmp_path, golden)
        out = evaluate(steward, EvalConfig(use_case="qa", candidate="custom:echo", samples=4 if golden else 10,
                                           safety=False, mlflow=False))
    q = out.metrics["quality"]
    # the echo is degenerate (issue 26): it loses every item, whatever else scored it
    assert ("golden" in q["method"]) if golden else (q["method"] == "degenerate")
    assert q["candidate"] < q["baseline"]
    assert out.metrics["gate"]["quality"]["status"] == "fail" and not out.passed
    b = out.metrics["benefit"]
    assert b["verdict"] == "none" and b["quality_ratio_lcb"] < 0.95 and b["method"] == q["method"]


def test_a_model_that_matches_the_golden_set_better_is_recognised(steward, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # the incumbent echoes; the candidate answers: better, on a signal the incumbent did not write
    answers = {"good": lambda q: q, "echo": lambda q: ANSWERS.get(q, "I cannot help with that.")}
    with FakeJudge(answers=answers) as fake:
        _qa(steward, fake, tmp_path, True)
        out = evaluate(steward, EvalConfig(use_case="qa", candidate="custom:echo", samples=0, safety=False,
                                           mlflow=False))  # the golden set only
    assert out.metrics["quality"]["method"] == "golden"
    b = out.metrics["benefit"]
    assert out.passed and b["verdict"] == "better" and b["quality_ratio_lcb"] > 1


# ------------------------------------------------------------------------------------ promotion
def _canary_to_last_step(steward, feedback: tuple[float | None, float | None] = (None, None),  # type: ignore[no-untyped-def]
                         model: str = CAND) -> None:
    # the benefit rules are under test, not the model: the fine-tune's weights are fakes (no_check)
    call_tool("deploy", {"use_case": UC, "model_id": model, "strategy": "canary", "no_check": model != CAND},
              ctx(steward))
    for w in (5, 25, 50):
        backdate_step(steward, 60)
        add_rows(steward, model, "canary", 12, feedback=feedback[0])
        add_rows(steward, STABLE, "primary", 40, feedback=feedback[1])
        if w < 50:
            assert call_tool("rollout_advance", {"use_case": UC}, ctx(steward)).action == "advanced"


def test_a_fine_tune_gets_no_special_pass(steward) -> None:  # type: ignore[no-untyped-def]
    setup_use_case(steward, config={"agent": {"rollout_fine_tunes_on_pass": True}})
    steward.registry.register_model("local", "ft-1", kind="fine_tuned", status="candidate", parent_model_id=STABLE,
                                    price_in_per_m="1", price_out_per_m="2")
    pass_eval(steward, "local:ft-1", benefit="none")
    _canary_to_last_step(steward, feedback=(0.5, 0.5), model="local:ft-1")  # same feedback: no gain
    out = call_tool("rollout_advance", {"use_case": UC}, ctx(steward, "agent:run-1"))
    assert out.action == "no_gain" and out.analysis.benefit["verdict"] == "none"
    assert out.analysis.benefit["evidence"]["online"]["rule"].startswith("no gain shown online")
    assert steward.registry.get_model(STABLE).status == "current"
    assert steward.registry.get_model("local:ft-1").status == "candidate"


def test_a_canary_without_a_gain_is_not_promoted(steward) -> None:  # type: ignore[no-untyped-def]
    setup_use_case(steward)
    pass_eval(steward, benefit="none")  # non-inferior offline, nothing gained
    _canary_to_last_step(steward, feedback=(0.4, 0.5))  # canary feedback not above the stable model's
    out = call_tool("rollout_advance", {"use_case": UC}, ctx(steward, "agent:run-1"))  # no approval asked
    assert out.action == "no_gain" and out.message.startswith("no gain, kept the current model")
    assert out.rollout.state == "aborted" and out.rollout.outcome.startswith("no gain")
    assert steward.registry.routing_table(steward.registry.deployment(UC)) == [
        {"model_id": STABLE, "weight": 100.0, "role": "primary"}]
    assert steward.registry.get_model(STABLE).status == "current"
    cand = steward.registry.get_model(CAND)
    assert cand.status == "candidate" and cand.meta["no_gain"]["use_case"] == UC  # not rejected: no worse
    with session_scope(steward.sessions) as s:  # keeping the current model is no rollback: no cool-down
        actions = list(s.scalars(select(DeploymentHistory.action)))
    assert "rollout_no_gain" in actions and "rollback" not in actions
    st = call_tool("rollout_status", {"use_case": UC}, ctx(steward))
    assert "no gain, kept the current model" in st.message


def test_a_canary_with_a_significant_feedback_gain_goes_to_approval(steward) -> None:  # type: ignore[no-untyped-def]
    setup_use_case(steward)
    pass_eval(steward, benefit="none")
    _canary_to_last_step(steward, feedback=(0.9, 0.1))
    with pytest.raises(ApprovalRequired, match="better online"):
        call_tool("rollout_advance", {"use_case": UC}, ctx(steward, "agent:run-1"))


def test_an_offline_benefit_goes_to_approval_and_names_it(steward) -> None:  # type: ignore[no-untyped-def]
    setup_use_case(steward)
    pass_eval(steward, benefit="cheaper")
    _canary_to_last_step(steward)
    with pytest.raises(ApprovalRequired, match="benefit: cheaper"):
        call_tool("rollout_advance", {"use_case": UC}, ctx(steward, "agent:run-1"))


# ------------------------------------------------------------------------------------ hosting cost
def test_a_self_hosted_model_with_an_hourly_cost_is_not_free(steward) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    res = runner.invoke(app, ["models", "register", "ollama", "llama3.2", "--cost-per-hour", "2.40",
                              "--hardware", "gpu-small", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["metadata"]["hosting"] == {"hardware": "gpu-small", "cost_per_hour_usd": "2.40"}
    steward.registry.register_model("ollama", "qwen", kind="self_hosted")  # nothing configured: profile default
    m, d = steward.registry.get_model("ollama:llama3.2"), steward.registry.get_model("ollama:qwen")
    tps = HARDWARE_PROFILES["gpu-small"].tokens_per_s
    assert cost_per_request(m, (500, 200)) == pytest.approx(2.40 / 3600 * 200 / tps)
    assert cost_per_request(d, (500, 200)) == pytest.approx(HARDWARE_PROFILES["gpu-small"].cost_per_hour / 3600 * 200 / tps)
    # the ranker sees it: $/M output = 2.40 / 3600 / 60 * 1e6 at the default mix
    steward.registry.add_use_case("chat", description="")
    ranked = {r.model_id: r for r in rank_use_case(steward, "chat").ranked}
    assert ranked["ollama:llama3.2"].cost_per_m == pytest.approx(0.25 * 2.40 / 3600 / tps * 1e6, rel=1e-4)
    assert ranked["ollama:llama3.2"].cost_per_m > ranked["ollama:qwen"].cost_per_m > 0


def test_cost_rules_see_the_hosting_cost(steward) -> None:  # type: ignore[no-untyped-def]
    setup_use_case(steward, cand_price=("0.01", "0.01"))  # a cheap paid stable model (1, 2 USD/M)
    steward.registry.register_model("ollama", "big", kind="self_hosted", status="candidate",
                                    metadata={"hosting": {"cost_per_hour_usd": "40", "hardware": "gpu-large"}})
    pass_eval(steward, "ollama:big")
    with pytest.raises(ApprovalRequired, match="cost_increase"):
        call_tool("deploy", {"use_case": UC, "model_id": "ollama:big", "strategy": "canary",
                             "no_check": True}, ctx(steward))  # the cost rule is under test; no ollama runs here


@pytest.mark.parametrize("args,field", [
    (["--cost-per-hour", "-1"], "cost_per_hour"),
    (["--hosting-cost", "2.5"], "hosting_cost"),
    (["--hardware", "tpu"], "hardware"),
])
def test_bad_hosting_cost_is_refused_naming_the_field(steward, args, field) -> None:  # type: ignore[no-untyped-def]
    res = CliRunner().invoke(app, ["models", "register", "ollama", "bad", *args])
    assert res.exit_code != 0 and isinstance(res.exception, InvalidInput) and field in str(res.exception)
    assert steward.registry.find_model("ollama:bad") is None  # nothing half-written


def test_hosting_cost_with_a_unit(steward) -> None:  # type: ignore[no-untyped-def]
    res = CliRunner().invoke(app, ["models", "register", "ollama", "h", "--hosting-cost", "1.20/h", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["metadata"]["hosting"]["cost_per_hour_usd"] == "1.20"
    res = CliRunner().invoke(app, ["models", "register", "ollama", "t", "--hosting-cost", "0.30/M", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["price_out_per_m"] == "0.30"


# ------------------------------------------------------------------------------------ guardrails
def _guard(steward):  # type: ignore[no-untyped-def]
    return call_tool("guard_check", {"use_case": UC}, ctx(steward, "scheduler:guard"))


def test_a_chronically_failing_live_model_raises_an_slo_violation(steward) -> None:  # type: ignore[no-untyped-def]
    setup_use_case(steward)
    for hours in (6, 4, 2):  # failing 60 % of its calls for hours: its own baseline is as bad
        add_rows(steward, STABLE, "primary", 50, errors=30, ts=utcnow() - dt.timedelta(hours=hours))
    add_rows(steward, STABLE, "primary", 50, errors=30)
    out = _guard(steward)
    assert "error_rate_spike" not in {v["policy"] for v in out.violations}  # no spike against itself
    v = next(v for v in out.violations if v["policy"] == "slo_error_rate")
    assert v["model_id"] == STABLE and v["measured"] == pytest.approx(0.6) and v["threshold"] == pytest.approx(0.10)
    assert v["details"]["requests"] == 50 and v["details"]["errors"] == 30
    with session_scope(steward.sessions) as s:
        row = s.scalars(select(GuardrailViolation).where(GuardrailViolation.policy == "slo_error_rate")).one()
        assert row.model_id == STABLE and row.measured == pytest.approx(0.6)


def test_live_latency_and_cost_ceilings(steward) -> None:  # type: ignore[no-untyped-def]
    setup_use_case(steward, slo=200, config={"guardrails": {"slo_cost_per_request_usd": 0.01}})
    add_rows(steward, STABLE, "primary", 30, latency=900, cost=0.02)
    out = _guard(steward)
    got = {v["policy"]: v for v in out.violations}
    assert got["slo_p95_latency"]["measured"] == pytest.approx(900) and got["slo_p95_latency"]["threshold"] == 200
    assert got["slo_cost_per_request"]["measured"] == pytest.approx(0.02)


def test_a_latency_slo_of_zero_is_a_clear_error(steward) -> None:  # type: ignore[no-untyped-def]
    setup_use_case(steward)
    steward.registry.update_use_case(UC, requirements={"latency_slo_ms": 0})
    add_rows(steward, STABLE, "primary", 20)
    with pytest.raises(InvalidInput, match="latency_slo_ms must be a positive number"):
        _guard(steward)


def test_a_short_burst_does_not_project_a_budget_breach(steward) -> None:  # type: ignore[no-untyped-def]
    setup_use_case(steward, budget="100")
    add_rows(steward, STABLE, "primary", 1100, cost=0.002)  # $2.20 within seconds (~ $210/month at 15 min)
    assert [v for v in _guard(steward).violations if v["policy"] == "budget_burn"] == []


def test_a_budget_breach_does_not_pause_a_rollout_that_lowers_cost(steward) -> None:  # type: ignore[no-untyped-def]
    setup_use_case(steward, budget="10", cand_price=("0.5", "1"))  # the candidate costs half
    add_rows(steward, STABLE, "primary", 20, cost=0.05, ts=utcnow() - dt.timedelta(hours=2))
    pass_eval(steward)
    call_tool("deploy", {"use_case": UC, "model_id": CAND, "strategy": "canary"}, ctx(steward))
    v = next(v for v in _guard(steward).violations if v["policy"] == "budget_burn")
    assert v["severity"] == "warn" and "lowers the expected cost" in v["details"]["not_paused"]
    assert call_tool("rollout_status", {"use_case": UC}, ctx(steward)).rollout.state == "waiting"


def test_rollout_status_shows_the_pause_reason(steward) -> None:  # type: ignore[no-untyped-def]
    setup_use_case(steward, budget="10")  # same price: a breach pauses the canary
    add_rows(steward, STABLE, "primary", 20, cost=0.05, ts=utcnow() - dt.timedelta(hours=2))
    pass_eval(steward)
    call_tool("deploy", {"use_case": UC, "model_id": CAND, "strategy": "canary"}, ctx(steward))
    _guard(steward)
    st = call_tool("rollout_status", {"use_case": UC}, ctx(steward))
    assert st.rollout.state == "paused" and "budget_burn" in st.rollout.pause_reason
    assert "guardrail budget_burn" in st.message
    res = CliRunner().invoke(app, ["rollout", "status", "--use-case", UC])
    assert res.exit_code == 0 and "budget_burn" in res.stdout


def test_pairwise_sees_an_echo_wrapped_in_boilerplate() -> None:
    from modelsteward.evals.scorers import degenerate, pairwise_symmetric

    q = "What is the capital of France?"
    wrapped = f"[echo] model=echo time=2026-01-01 messages=1\nUser: {q}"
    assert degenerate(q, q) and degenerate(q, wrapped) and degenerate(q, "  ")
    assert degenerate(q, "The capital of France is Paris.") is None
    assert pairwise_symmetric(q, wrapped, "The capital of France is Paris.", 0.9, 0.7) == 0.0
    assert pairwise_symmetric(q, "Paris.", "The capital of France is Paris.", 0.6, 0.7) == 0.5  # a tie


def test_an_evaluation_prices_a_self_hosted_candidate_by_its_measured_throughput(steward, tmp_path) -> None:  # type: ignore[no-untyped-def]
    answers = {"good": lambda q: ANSWERS.get(q, "No idea."), "echo": lambda q: ANSWERS.get(q, "No idea.")}
    with FakeJudge(answers=answers) as fake:
        _qa(steward, fake, tmp_path, True)
        steward.registry.register_model("custom", "echo", kind="self_hosted",
                                        metadata={"hosting": {"cost_per_hour_usd": "3.60"}})
        out = evaluate(steward, EvalConfig(use_case="qa", candidate="custom:echo", samples=4, safety=False,
                                           mlflow=False))
    perf = out.metrics["performance"]["candidate"]
    host = steward.registry.get_model("custom:echo").meta["hosting"]
    assert host["measured_tokens_per_s"] == pytest.approx(perf["tokens_per_s"], rel=1e-3)
    assert host["measured_by_test_result"] == out.test_result_id
    assert perf["price_known"] and perf["cost_per_1k_usd"] > 0  # not free
    assert out.metrics["benefit"]["cost_ratio"] is None  # the paid baseline has no price: cost unknown
