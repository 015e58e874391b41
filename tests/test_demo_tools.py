"""The demo's tool-using use case (issue 24 item 8): tool calls and JSON answers sent with the
official openai SDK through `steward serve` are logged whole, replayed with their tools, and the
wrong tool caller fails its strata while the right one passes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from modelsteward.demo.run import _free_port, _Server
from modelsteward.demo.tools import CANDIDATES, WEATHER, run_tool_use_case
from modelsteward.exchange import row_exchange
from modelsteward.tools import call_tool
from modelsteward.tools.base import ToolContext

pytestmark = pytest.mark.slow


class _Demo:
    def __init__(self, steward: Any) -> None:
        self.steward = steward
        self.ctx = ToolContext(steward=steward, actor="cli:demo")
        self.console = Console(record=True, width=200)

    def call(self, name: str, args: dict[str, Any]) -> Any:
        return call_tool(name, args, self.ctx)

    def say(self, text: str) -> None:
        self.console.print(text)


def test_the_tool_use_case_goes_through_gateway_replay_and_gate(steward: Any, tmp_path: Path) -> None:
    server = _Server(_free_port(), tmp_path / "serve.log")
    server.start()
    try:
        demo = _Demo(steward)
        out = run_tool_use_case(demo, server.url, upstream_port=_free_port(), requests=15)
    finally:
        server.stop()
    assert out["traffic"]["errors"] == 0, out["traffic"]
    assert out["traffic"]["tool_calls"] == 10 and out["traffic"]["json"] == 5
    rows = [row_exchange(r) for r in steward.logs.query(
        "SELECT * FROM logs WHERE use_case = ? AND role = 'primary'", [WEATHER])]
    tool_rows = [r for r in rows if r["request"].get("tools")]
    assert len(tool_rows) == 10 and all(r["answer"].get("tool_calls") for r in tool_rows)
    assert sum(1 for r in rows if r["request"].get("response_format")) == 5
    by = {e["candidate"]: e for e in out["evaluations"]}
    lite, wrong = by[CANDIDATES[0]], by[CANDIDATES[1]]
    assert wrong["verdict"] == "fail" and wrong["strata"] == {"tools": "fail", "structured": "fail"}
    assert lite["strata"] == {"tools": "pass", "structured": "pass"} and lite["verdict"] != "fail"
