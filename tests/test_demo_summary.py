"""The demo's screen lines come from each agent step's typed output (read through the tool's output
model), not from its shortened result text."""

from __future__ import annotations

from typing import Any

from modelsteward.demo.run import _summary
from modelsteward.tools.evals import EvaluateOut
from modelsteward.tools.rollout import RolloutOut


def _step(name: str, out: Any) -> dict[str, Any]:
    payload = out.model_dump(mode="json")
    # the journal's text is cut at 2,000 characters: nothing can be read from it reliably
    return {"kind": "tool", "name": name, "ok": True, "result": "{...truncated", "output": payload}


def test_evaluation_and_rollout_lines_come_from_the_typed_output() -> None:
    ev = EvaluateOut(test_result_id=3, use_case="story", candidate="local:ft", baseline="local:base", verdict="pass",
                     passed=True, reasons=["quality ratio 1.02"] + ["x" * 3000], sample_count=12, metrics={},
                     report_path="/r.html")
    line = _summary(_step("evaluate", ev))
    assert line.startswith("local:ft: PASS — quality ratio 1.02")
    ro = RolloutOut(use_case="story", action="advanced", message="step 1 (50%) live",
                    rollout={"id": 1, "candidate": "local:ft", "strategy": "canary", "state": "waiting"})
    assert _summary(_step("rollout_advance", ro)) == "advanced: step 1 (50%) live"


def test_a_step_without_output_or_a_failed_one_shows_its_text() -> None:
    assert _summary({"name": "evaluate", "ok": False, "error": "invalid_input: nope"}) == "invalid_input: nope"
    assert _summary({"name": "evaluate", "ok": True, "result": '{"verdict": "pass"}'}) == '{"verdict": "pass"}'
    bad = {"name": "evaluate", "ok": True, "result": "text", "output": {"verdict": "pass"}}  # not an EvaluateOut
    assert _summary(bad) == "text"
