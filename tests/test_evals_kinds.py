"""Scorers per answer kind: the tool-call rules (BFCL AST checker cases), structured outputs, the gate's
``tools`` / ``structured`` checks, the benefit rule, the rollout analysis and the golden set with tools."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from modelsteward.errors import InvalidInput
from modelsteward.evals.benefit import judge_benefit
from modelsteward.evals.gate import GateConfig, decide
from modelsteward.evals.kindrules import (
    answer_violation,
    call_problem,
    field_agreement,
    match_calls,
    parse_json_answer,
    schema_problem,
    tool_schemas,
    values_equal,
)
from modelsteward.evals.kinds import kind_checks, structured, tool_calls
from modelsteward.evals.replay import EvalItem, load_golden_set
from modelsteward.evals.runner import Generation
from modelsteward.evals.scorers import EvalData
from kinds_helpers import PERSON_FORMAT, TOOLS

SCHEMAS = tool_schemas({"tools": TOOLS})


def call(name: str, args: Any, cid: str = "c") -> dict[str, Any]:
    return {"id": cid, "type": "function",
            "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}}


# ------------------------------------------------------------------------------------------ BFCL-style rules
def test_simple_call_matches_after_normalisation() -> None:
    ref = [call("get_weather", {"city": "San Francisco, CA"})]
    assert match_calls([call("get_weather", {"city": "san francisco ca"})], ref, SCHEMAS) is None  # case, punctuation
    assert match_calls([call("get_weather", {"city": "San  Francisco,CA"})], ref, SCHEMAS) is None  # whitespace
    assert match_calls([call("get_weather", {"city": "Los Angeles"})], ref, SCHEMAS) == \
        "wrong arguments: get_weather.city differs from the reference"
    assert match_calls([call("get_time", {"city": "San Francisco, CA"})], ref, SCHEMAS) == \
        "wrong function: called get_time, expected get_weather"


def test_numbers_by_value_booleans_apart_lists_in_order() -> None:
    assert values_equal(5, 5.0) and values_equal({"n": 2}, {"n": 2.0})
    assert not values_equal(True, 1) and not values_equal(1, "1")
    assert values_equal(["a", "B"], ["A", "b"]) and not values_equal(["a", "b"], ["b", "a"])
    assert values_equal({"a": {"b": [1, 2]}}, {"a": {"b": [1.0, 2]}})
    assert not values_equal({"a": 1}, {"a": 1, "b": 2})


def test_an_omitted_argument_equals_the_schema_default() -> None:
    ref = [call("get_weather", {"city": "Paris"})]
    assert match_calls([call("get_weather", {"city": "Paris", "unit": "c"})], ref, SCHEMAS) is None
    assert match_calls([call("get_weather", {"city": "Paris", "unit": "f"})], ref, SCHEMAS) == \
        "wrong arguments: get_weather.unit differs from the reference"


def test_parallel_calls_match_as_an_unordered_set() -> None:
    ref = [call("get_weather", {"city": "Paris"}), call("get_weather", {"city": "Rome"}), call("get_time", {"city": "Oslo"})]
    shuffled = [ref[2], ref[1], ref[0]]
    assert match_calls(shuffled, ref, SCHEMAS) is None
    assert match_calls(ref[:2], ref, SCHEMAS) == "wrong count: 2 call(s), expected 3"
    twice = [ref[0], ref[0], ref[2]]  # one call cannot match two reference calls
    assert match_calls(twice, ref, SCHEMAS) == "wrong arguments: get_weather.city differs from the reference"


def test_call_validity_against_the_offered_functions() -> None:
    assert call_problem(call("get_weather", {"city": "Paris"}), SCHEMAS) is None
    assert call_problem(call("book_flight", {"city": "Paris"}), SCHEMAS) == "unknown function 'book_flight'"
    missing = call_problem(call("get_weather", {"unit": "c"}), SCHEMAS)
    assert missing and "'city' is a required property" in missing
    wrong_type = call_problem(call("get_weather", {"city": 75}), SCHEMAS)
    assert wrong_type and wrong_type.startswith("get_weather: arguments break its schema (city: 75 is not of type")
    extra = call_problem(call("get_weather", {"city": "Paris", "when": "now"}), SCHEMAS)
    assert extra and "Additional properties" in extra
    assert call_problem(call("get_weather", '{"city": "Par'), SCHEMAS) == "get_weather: arguments are not a JSON object"


def test_structured_rules() -> None:
    schema = PERSON_FORMAT["json_schema"]["schema"]
    assert parse_json_answer('{"name": "A", "age": 3}') == ({"name": "A", "age": 3}, None)
    assert parse_json_answer("```json\n{}\n```")[1] == "not valid JSON"  # the application parses the text as it is
    assert parse_json_answer("")[1] == "empty answer, no JSON"
    assert schema_problem({"name": "A", "age": 3}, schema) is None
    assert schema_problem({"name": "A", "age": "3"}, schema) == "age: '3' is not of type 'integer'"
    assert field_agreement({"name": "a", "age": 3}, {"name": "A", "age": 3}) == 1.0
    assert field_agreement({"name": "A", "age": 4}, {"name": "A", "age": 3}) == 0.5
    assert field_agreement({"x": {"y": [1, 2]}}, {"x": {"y": [1, 3]}}) == 0.5
    req = {"response_format": PERSON_FORMAT}
    assert answer_violation(req, {"content": '{"name": "A", "age": 3}'}) is None
    assert answer_violation(req, {"content": '{"name": "A"}'}) == "'age' is a required property"
    assert answer_violation({"tools": TOOLS}, {"content": "", "tool_calls": [call("nope", {})]}) == "unknown function 'nope'"
    assert answer_violation({"tools": TOOLS}, {"content": "plain text"}) is None


# ------------------------------------------------------------------------------------------ scorers and gate
def _gen(i: int, content: str | None = "Let me check.", calls: list[dict[str, Any]] | None = None,
         error: str | None = None) -> Generation:
    ans = {"content": content, **({"tool_calls": calls} if calls else {})}
    return Generation(str(i), text=content or "", error=error, answer=None if error else ans)


def _data(items: list[EvalItem], cand: list[Generation], base: list[Generation]) -> EvalData:
    model = SimpleNamespace(id="m")
    return EvalData(items=items, candidate=cand, baseline=base, candidate_model=model, baseline_model=model,  # type: ignore[arg-type]
                    use_case=SimpleNamespace(requirements={}), embedder=lambda: None)  # type: ignore[arg-type,return-value]


def _tool_items(n: int, logged: bool = True) -> list[EvalItem]:
    return [EvalItem(id=str(i), source="logs", messages=[{"role": "user", "content": f"weather in city {i}?"}],
                     request={"tools": TOOLS, "tool_choice": "auto"},
                     answer={"content": "x", "tool_calls": [call("get_weather", {"city": f"c{i}"})]} if logged else None)
            for i in range(n)]


def test_wrong_function_fails_the_tools_stratum_even_with_the_same_text() -> None:
    items = _tool_items(6)
    right = [_gen(i, calls=[call("get_weather", {"city": f"C{i}"})]) for i in range(6)]
    wrong = [_gen(i, calls=[call("get_time", {"city": f"c{i}"})]) for i in range(6)]
    res = tool_calls(_data(items, wrong, right))
    assert res.metrics["candidate"]["accuracy"] == 0.0 and res.metrics["baseline"]["accuracy"] == 1.0
    assert res.metrics["candidate"]["failures"] == {"wrong function": 6}
    assert res.columns["tools_candidate"][0] == "wrong function: called get_time, expected get_weather"
    checks = kind_checks({"tool_calls": res.metrics}, min_samples=5)
    assert [(c.name, c.status) for c in checks] == [("tools", "fail")]
    assert checks[0].reason.startswith("tools stratum: candidate tool-call accuracy 0% vs baseline 100% on 6 item(s)")
    ok = kind_checks({"tool_calls": tool_calls(_data(items, right, right)).metrics}, min_samples=5)
    assert [(c.name, c.status) for c in ok] == [("tools", "pass")]


def test_a_candidate_that_never_calls_fails_and_errors_are_never_a_pass() -> None:
    items = _tool_items(6)
    right = [_gen(i, calls=[call("get_weather", {"city": f"c{i}"})]) for i in range(6)]
    text_only = [_gen(i, content="It is sunny.") for i in range(6)]
    check = kind_checks({"tool_calls": tool_calls(_data(items, text_only, right)).metrics}, 5)[0]
    assert check.status == "fail" and "made no tool call on any of the 6 item(s) that need one" in check.reason
    errs = [_gen(i, error="upstream_error: 503") for i in range(3)] + right[3:]
    m = tool_calls(_data(items, errs, right)).metrics
    assert m["candidate"]["errors"] == 3 and m["candidate"]["accuracy"] == 0.5
    assert kind_checks({"tool_calls": m}, 5)[0].status == "fail"


def test_without_a_logged_reference_the_baseline_answer_is_the_reference() -> None:
    items = _tool_items(5, logged=False)
    base = [_gen(i, calls=[call("get_weather", {"city": f"c{i}"})]) for i in range(5)]
    cand = [_gen(i, calls=[call("get_weather", {"city": f"c{i}", "unit": "f"})]) for i in range(5)]
    m = tool_calls(_data(items, cand, base)).metrics
    assert m["reference"] == {"baseline": 5}
    assert m["candidate"]["failures"] == {"wrong arguments": 5} and m["baseline"]["accuracy"] == 1.0
    # a baseline judged against itself is still judged on validity
    bad_base = [_gen(i, calls=[call("get_weather", {"town": "x"})]) for i in range(5)]
    assert tool_calls(_data(items, cand, bad_base)).metrics["baseline"]["valid_rate"] == 0.0


def test_structured_scorer_and_check() -> None:
    items = [EvalItem(id=str(i), source="logs", messages=[{"role": "user", "content": f"p{i}"}],
                      request={"response_format": PERSON_FORMAT}, answer={"content": json.dumps({"name": f"n{i}", "age": i})})
             for i in range(5)]
    good = [_gen(i, content=json.dumps({"name": f"n{i}", "age": i})) for i in range(5)]
    broken = [_gen(i, content=json.dumps({"name": f"n{i}", "age": str(i)})) for i in range(5)]
    res = structured(_data(items, broken, good))
    c = res.metrics["candidate"]
    assert c["json_valid_rate"] == 1.0 and c["schema_valid_rate"] == 0.0 and c["field_agreement"] == 0.5
    assert res.columns["structured_candidate"][0] == "breaks the schema: age: '0' is not of type 'integer'"
    check = kind_checks({"structured": res.metrics}, 5)[0]
    assert check.name == "structured" and check.status == "fail" and "schema-valid JSON 0% vs baseline 100%" in check.reason
    prose = [_gen(i, content="Her name is n and she is 3.") for i in range(5)]
    cannot = kind_checks({"structured": structured(_data(items, prose, good)).metrics}, 5)[0]
    assert cannot.status == "fail" and "answered no valid JSON" in cannot.reason
    assert kind_checks({"structured": structured(_data(items, good, good)).metrics}, 5)[0].status == "pass"
    assert kind_checks({"structured": structured(_data(items[:3], good[:3], good[:3])).metrics}, 5)[0].status == \
        "inconclusive"


def test_decide_appends_the_kind_checks_and_fails_on_them() -> None:
    items = _tool_items(6)
    right = [_gen(i, calls=[call("get_weather", {"city": f"c{i}"})]) for i in range(6)]
    wrong = [_gen(i, calls=[call("get_time", {"city": f"c{i}"})]) for i in range(6)]
    perf = {"candidate": {"p95_ms": 10.0, "cost_per_1k_usd": None}, "baseline": {"p95_ms": 10.0}}
    metrics = {"performance": perf, "safety": {"candidate": {"failures": 0}, "baseline": {"failures": 0}},
               "tool_calls": tool_calls(_data(items, wrong, right)).metrics}
    v = decide(metrics, ([1.0] * 20, [1.0] * 20), latency_slo_ms=None, monthly_budget_usd=None, monthly_volume=None,
               cfg=GateConfig())
    assert v.verdict == "fail" and any(r.startswith("tools: fail - tools stratum") for r in v.reasons)
    metrics.pop("tool_calls")
    v = decide(metrics, ([1.0] * 20, [1.0] * 20), latency_slo_ms=None, monthly_budget_usd=None, monthly_volume=None)
    assert v.verdict == "pass" and not any(c.name in ("tools", "structured") for c in v.checks)  # text-only traffic


def test_benefit_is_none_when_a_stratum_fails() -> None:
    kw: dict[str, Any] = {"quality_ratio": 1.0, "quality_ratio_lcb": 0.99, "method": "pairwise",
                          "candidate_cost": 0.5, "baseline_cost": 1.0}
    assert judge_benefit(**kw).verdict == "cheaper"
    b = judge_benefit(**kw, failed_strata=["tools"])
    assert b.verdict == "none" and "fails the tools stratum" in b.rule


# ------------------------------------------------------------------------------------------ rollout analysis
def test_rollout_step_fails_when_canary_answers_break_their_request() -> None:
    from modelsteward.rollout.analysis import AnswerValidity, judge
    from modelsteward.rollout.metrics import WindowMetrics

    cfg = {"min_requests": 10, "max_error_rate_increase": 0.05, "max_latency_increase": 0.5, "latency_noise_ms": 50,
           "max_cost_increase": 0.5, "min_feedback_count": 3, "max_feedback_drop": 0.2, "feedback_alpha": 0.05,
           "max_safety_flag_increase": 0.05, "min_similarity": 0.5, "min_duration_s": 0}
    w = WindowMetrics(requests=20, p95_ms=100.0)
    bad = AnswerValidity(checked=20, invalid=6, example="unknown function 'get_time2'")
    out, reasons = judge(w, w, cfg, 60, validity=(bad, AnswerValidity(checked=20, invalid=1)))
    assert out == "failed" and "30.0% of 20 tool/structured answers > stable 5.0% + 5.0%" in reasons[0]
    assert "get_time2" in reasons[0]
    out, _ = judge(w, w, cfg, 60, validity=(AnswerValidity(checked=20, invalid=2), AnswerValidity(checked=20, invalid=1)))
    assert out == "successful"


def test_answer_validity_reads_logged_rows(steward) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    from modelsteward.rollout.analysis import answer_validity

    since = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(hours=1)
    rows = [{"request_id": f"r{i}", "use_case": "a", "model_id": "m:c", "role": "canary", "messages": [{"role": "user", "content": "w"}],
             "request": {"tools": TOOLS}, "answer": {"content": "", "tool_calls": [call("get_time" if i % 2 else "nope", {"city": "x"})]}}
            for i in range(4)]
    rows.append({"request_id": "plain", "use_case": "a", "model_id": "m:c", "role": "canary", "response": "hi",
                 "messages": [{"role": "user", "content": "hi"}]})
    steward.logs.append_many(rows)
    steward.logs.flush()
    v = answer_validity(steward, "a", since, model_id="m:c", roles=("canary",))
    assert (v.checked, v.invalid, v.example) == (4, 2, "unknown function 'nope'")


# ------------------------------------------------------------------------------------------ golden set
def test_golden_set_with_tools_and_schemas(tmp_path: Path) -> None:
    golden = tmp_path / "g.jsonl"
    lines = [
        {"messages": [{"role": "user", "content": "weather in Paris?"},
                      {"role": "assistant", "tool_calls": [call("get_weather", {"city": "Paris"}, "c1")]},
                      {"role": "tool", "tool_call_id": "c1", "content": "18C"},
                      {"role": "user", "content": "and in Rome?"}],
         "tools": TOOLS, "tool_choice": "auto",
         "reference": {"content": None, "tool_calls": [call("get_weather", {"city": "Rome"})]}},
        {"prompt": "Alice is 31 years old.", "response_format": PERSON_FORMAT, "reference": '{"name": "Alice", "age": 31}'},
    ]
    golden.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    a, b = load_golden_set(golden)
    assert a.kind == "tools" and a.request["tool_choice"] == "auto" and a.messages[1].get("content") is None
    assert a.answer and a.answer["tool_calls"][0]["function"]["name"] == "get_weather" and a.reference is None
    assert b.kind == "structured" and b.reference == '{"name": "Alice", "age": 31}' and b.stratum == "golden|structured"

    def refused(line: dict[str, Any]) -> str:
        golden.write_text(json.dumps(line) + "\n")
        with pytest.raises(InvalidInput) as exc:
            load_golden_set(golden)
        assert "\n" not in exc.value.message
        return exc.value.message

    assert "g.jsonl line 1: reference: tool call 'get_weather': arguments are not JSON" in refused(
        {"prompt": "x", "tools": TOOLS, "reference": {"tool_calls": [call("get_weather", '{"city": ')]}})
    assert "response_format json_schema is not a valid JSON Schema" in refused(
        {"prompt": "x", "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "thing"}}}})
    assert "a tool turn needs 'tool_call_id'" in refused({"messages": [{"role": "tool", "content": "18C"}]})
    assert "'reference' must be a string or an answer object" in refused({"prompt": "x", "reference": 3})


# ------------------------------------------------------------------------------------------ replay
def test_replay_set_reads_the_whole_request_and_stratifies_by_kind(steward) -> None:  # type: ignore[no-untyped-def]
    from kinds_helpers import log_traffic

    from modelsteward.evals.replay import build_replay_set

    reg = steward.registry
    reg.register_model("custom", "live", base_url="http://127.0.0.1:9/v1")
    uc = reg.add_use_case("assist", model="custom:live")
    log_traffic(steward, "assist", "custom:live")
    same_text = {"request_id": "same", "use_case": "assist", "model_id": "custom:live", "role": "primary",
                 "messages": [{"role": "user", "content": "What do bees make?"}], "response": "Honey.",
                 "request": {"tools": TOOLS}}  # the same messages with tools offered: another request
    steward.logs.append(same_text)
    steward.logs.flush()
    rs = build_replay_set(steward, uc, samples=9, seed=3)
    kinds = [it.kind for it in rs.items]
    assert kinds.count("tools") >= 3 and kinds.count("structured") >= 2 and kinds.count("text") >= 2  # proportional
    assert {s.split("|")[0] for s in rs.strata} == {"tools", "structured", "text"}
    full = build_replay_set(steward, uc, samples=100)
    assert full.size == 18  # 17 logged + the same messages with tools: not a duplicate
    tools_item = next(it for it in full.items if it.kind == "tools" and it.id != "same")
    assert tools_item.request["tools"] == TOOLS and tools_item.request["params"] == {"temperature": 0.2}
    assert tools_item.answer and tools_item.answer["tool_calls"][0]["function"]["name"] == "get_weather"
    assert tools_item.reference is None  # no feedback: no text reference for quality, but a call reference


def test_the_replayed_body_asks_what_the_application_asked() -> None:
    from modelsteward.evals.runner import OutputCache, _body

    item = EvalItem(id="1", source="logs", messages=[{"role": "user", "content": "w"}],
                    request={"tools": TOOLS, "tool_choice": "required", "params": {"temperature": 0.2, "n": 3,
                                                                                   "max_completion_tokens": 900}})
    body = _body(item, {"max_tokens": 64, "temperature": None})
    assert body == {"messages": item.messages, "tools": TOOLS, "tool_choice": "required", "temperature": 0.2,
                    "max_tokens": 64}
    plain = OutputCache.key("m", item.messages, {"max_tokens": 64})
    assert OutputCache.key("m", item.messages, {"max_tokens": 64}, {}) == plain  # plain items keep their cache key
    assert OutputCache.key("m", item.messages, {"max_tokens": 64}, item.request) != plain
