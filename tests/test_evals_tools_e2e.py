"""End to end: logged tool-using and json_schema traffic is replayed whole by ``steward eval``; a
candidate that calls the wrong function, or returns JSON breaking the schema, fails the gate on the
``tools`` / ``structured`` strata although its text is the same; the right one passes those checks."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from kinds_helpers import PERSON_FORMAT, TOOLS, ToolUpstream, log_traffic

pytestmark = pytest.mark.slow  # loads the embedding model for the text scorers


def _eval(candidate: str) -> dict:  # type: ignore[type-arg]
    from modelsteward.cli import app

    res = CliRunner().invoke(app, ["eval", "--use-case", "assist", "--candidate", candidate, "--samples", "40",
                                   "--no-safety", "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_eval_replays_tools_and_schemas_and_gates_by_answer_kind(steward) -> None:  # type: ignore[no-untyped-def]
    with ToolUpstream() as up:
        reg = steward.registry
        for name in ("live-right", "cand-right", "cand-wrong"):
            reg.register_model("custom", name, base_url=up.base_url)
        reg.add_use_case("assist", model="custom:live-right")
        logged = log_traffic(steward, "assist", "custom:live-right")

        wrong = _eval("custom:cand-wrong")
        sent = [r for r in up.requests if r["model"] == "cand-wrong"]
        right = _eval("custom:cand-right")
        from modelsteward.cli import app

        human = CliRunner().invoke(app, ["eval", "--use-case", "assist", "--candidate", "custom:cand-wrong",
                                         "--samples", "40", "--no-safety"])
    assert "tool-call accuracy (6 items)" in human.stdout and "schema-valid JSON (6 items)" in human.stdout

    # replayed as the application called: tools, tool choice, response format and logged sampling params
    assert len(sent) == len(logged)
    tool_reqs = [r for r in sent if "tools" in r]
    assert len(tool_reqs) == 6 and all(r["tools"] == TOOLS and r["tool_choice"] == "auto" for r in tool_reqs)
    assert all(r["temperature"] == 0.2 for r in tool_reqs)
    assert all(r["messages"][0]["role"] == "system" for r in tool_reqs)
    schema_reqs = [r for r in sent if "response_format" in r]
    assert len(schema_reqs) == 6 and all(r["response_format"] == PERSON_FORMAT for r in schema_reqs)
    assert all("tools" not in r and "response_format" not in r for r in sent if r not in tool_reqs + schema_reqs)

    assert wrong["verdict"] == "fail"
    gate = wrong["metrics"]["gate"]
    assert gate["tools"]["status"] == "fail" and gate["structured"]["status"] == "fail"
    assert any(r.startswith("tools: fail - tools stratum: candidate tool-call accuracy 0% vs baseline 100% on 6 item(s)")
               for r in wrong["reasons"]), wrong["reasons"]
    assert any(r.startswith("structured: fail - structured stratum: candidate schema-valid JSON 0% vs baseline 100%")
               for r in wrong["reasons"]), wrong["reasons"]
    tc = wrong["metrics"]["tool_calls"]
    assert tc["reference"] == {"logs": 6} and tc["candidate"]["failures"] == {"wrong function": 6}
    assert wrong["metrics"]["structured"]["candidate"]["json_valid_rate"] == 1.0  # JSON, but not the schema's
    assert wrong["metrics"]["benefit"]["verdict"] == "none"
    # the text alone would not tell: the tool-call answers read nearly the same
    assert wrong["metrics"]["similarity"]["rouge_l"] > 0.8

    assert right["metrics"]["gate"]["tools"]["status"] == "pass"
    assert right["metrics"]["gate"]["structured"]["status"] == "pass"
    assert right["metrics"]["tool_calls"]["candidate"]["accuracy"] == 1.0
    assert right["metrics"]["structured"]["candidate"]["field_agreement"] == 1.0
    assert {k.split("|")[0] for k in right["metrics"]["sample"]["strata"]} == {"tools", "structured", "text"}
