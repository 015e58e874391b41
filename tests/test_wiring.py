"""The composition root (issue 27 item 3): the tools reach the agent because an entry point called
``wire()``, never because some module imported ``agent.runner`` for its side effect."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelsteward.tools import wiring as tool_wiring
from modelsteward.tools.base import ToolContext, call_tool
from modelsteward.tools.observation import Observation
from modelsteward.wiring import wire

PKG = Path(__file__).resolve().parents[1] / "modelsteward"


@pytest.fixture
def unwired() -> Iterator[None]:
    old = tool_wiring.uninstall()
    try:
        yield
    finally:
        if old is not None:
            tool_wiring.install(old)
        else:
            wire()


def _setup(steward) -> None:  # type: ignore[no-untyped-def]
    steward.registry.add_use_case("story", description="Tell stories.")


def test_a_tool_that_needs_the_agent_fails_clearly_unwired(steward, unwired) -> None:  # type: ignore[no-untyped-def]
    _setup(steward)
    ctx = ToolContext(steward=steward, actor="tester")
    for name, args in (("show_status", {}), ("agent_run", {"goal": "look around"})):
        with pytest.raises(tool_wiring.NotWired) as err:
            call_tool(name, args, ctx)
        assert err.value.code == "not_wired"
        assert "modelsteward.wiring.wire()" in err.value.message and repr(name) in err.value.message


def test_the_same_tool_works_after_wire(steward, unwired) -> None:  # type: ignore[no-untyped-def]
    _setup(steward)
    wire()
    out = call_tool("show_status", {"use_case": "story"}, ToolContext(steward=steward, actor="tester"))
    assert isinstance(out.observation, Observation)  # type: ignore[attr-defined]
    uc = out.observation.use_case("story")  # type: ignore[attr-defined]
    assert uc is not None and uc.name == "story" and uc.description == "Tell stories."


def test_deciding_an_approval_a_run_waits_on_fails_unwired_before_recording(steward, unwired) -> None:  # type: ignore[no-untyped-def]
    from modelsteward.storage.db import session_scope
    from modelsteward.storage.models import AgentRun, Approval

    _setup(steward)
    with session_scope(steward.sessions) as s:
        run = AgentRun(trigger="api", goal="g", status="waiting_approval", planner="playbook", thread_id="t1")
        s.add(run)
        s.flush()
        a = Approval(action="rollout_advance", arguments={"use_case": "story"}, reason="r", requester="agent",
                     status="pending", agent_run_id=run.id, thread_id="t1")
        s.add(a)
        s.flush()
        approval_id = a.id
    with pytest.raises(tool_wiring.NotWired):
        call_tool("approval_decide", {"approval_id": approval_id, "decision": "approve"},
                  ToolContext(steward=steward, actor="alice"))
    with session_scope(steward.sessions) as s:
        assert s.get(Approval, approval_id).status == "pending"  # nothing was decided


def test_no_module_imports_the_agent_for_its_side_effect() -> None:
    """No ``from modelsteward.agent import runner  # noqa: F401`` (or the like) is left anywhere."""
    offenders = []
    for path in PKG.rglob("*.py"):
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("modelsteward.agent"):
                line = text.splitlines()[node.lineno - 1]
                if "noqa: F401" in line:
                    offenders.append(f"{path.relative_to(PKG.parent)}:{node.lineno}: {line.strip()}")
            if isinstance(node, ast.Import) and any(a.name.startswith("modelsteward.agent") for a in node.names):
                offenders.append(f"{path.relative_to(PKG.parent)}:{node.lineno}")
    assert offenders == []


def test_every_entry_point_calls_wire() -> None:
    for rel in ("cli/__init__.py", "server/app.py", "server/controlloop.py", "demo/run.py"):
        assert "wire()" in (PKG / rel).read_text(), rel


def test_wiring_costs_a_cli_command_nothing() -> None:
    """The CLI wires before every command, --help included: wire() imports neither the agent, nor
    pydantic, nor the workspace context (the read commands' light path stays light)."""
    import subprocess
    import sys

    code = ("import sys; import modelsteward.cli; before = set(sys.modules); from modelsteward.wiring import wire; "
            "wire(); print(sorted(set(sys.modules) - before))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PKG.parent).stdout
    new = ast.literal_eval(out.strip())
    assert set(new) <= {"modelsteward.tools", "modelsteward.tools.wiring", "modelsteward.wiring"}, new
