"""`steward scan` / `steward rank` and the `scan` / `rank` tools."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelsteward.cli import app
from modelsteward.errors import InvalidInput, NotFound
from modelsteward.fakes.catalogs import FakeCatalog
from modelsteward.tools.base import ToolContext, call_tool, get_tool

REPO = Path(__file__).resolve().parents[1]


def test_tools_are_registered_with_the_right_mutability(steward) -> None:
    assert get_tool("scan").mutating is True
    assert get_tool("rank").mutating is False
    ctx = ToolContext(steward=steward, actor="test")
    with pytest.raises(InvalidInput, match="timeout_s"):
        call_tool("scan", {"provider": "local", "timeout_s": -1}, ctx)
    with pytest.raises(InvalidInput, match="known providers"):
        call_tool("scan", {"provider": "nope"}, ctx)
    with pytest.raises(NotFound):
        call_tool("scan", {"provider": "local", "use_case": "missing"}, ctx)
    with pytest.raises(NotFound):
        call_tool("rank", {"use_case": "missing"}, ctx)


def test_scan_tool_with_use_case_reports_compatibility(steward) -> None:
    steward.registry.add_use_case("tiny", description="", requirements={"min_context": 4096})
    ctx = ToolContext(steward=steward, actor="test")
    out = call_tool("scan", {"provider": "local", "use_case": "tiny"}, ctx)
    assert out.sources[0].status == "ok"  # type: ignore[attr-defined]
    assert "local:smollm2-135m-instruct" in out.compatibility.compatible  # type: ignore[attr-defined]


def test_cli_scan_and_rank_json(steward, monkeypatch: pytest.MonkeyPatch) -> None:
    entries = [{"id": f"acme/m{i}", "context_length": 8000 * (i + 1),
                "pricing": {"prompt": f"0.00000{i + 1}", "completion": f"0.00000{2 * i + 2}"},
                "supported_parameters": ["tools"] if i % 2 else []} for i in range(4)]
    steward.registry.add_use_case("chat", description="", requirements={"requires": ["tools"]})
    runner = CliRunner()
    with FakeCatalog("openrouter", data={"data": entries}) as fake:
        monkeypatch.setenv("STEWARD_OPENROUTER_BASE_URL", fake.scanner_base)
        res = runner.invoke(app, ["scan", "--provider", "openrouter", "--use-case", "chat", "--json"])
        assert res.exit_code == 0, res.output
        out = json.loads(res.stdout)
        src = out["sources"][0]
        assert src["provider"] == "openrouter" and src["status"] == "ok" and src["seen"] == 4
        assert sorted(out["compatibility"]["compatible"]) == ["openrouter:acme/m1", "openrouter:acme/m3"]
        table = runner.invoke(app, ["scan", "--provider", "openrouter"])
        assert table.exit_code == 0 and "openrouter" in table.stdout and "Catalog scan" in table.stdout
    res = runner.invoke(app, ["rank", "--use-case", "chat", "--json"])
    assert res.exit_code == 0, res.output
    ranking = json.loads(res.stdout)
    assert [m["model_id"] for m in ranking["ranked"]][0] == "openrouter:acme/m1"  # cheaper, same prior quality
    assert {m["model_id"] for m in ranking["ranked"]} == {"openrouter:acme/m1", "openrouter:acme/m3"}
    assert ranking["pareto_front"] and "default mix" in ranking["mix_source"]
    text = runner.invoke(app, ["rank", "--use-case", "chat", "--weights", "quality=2,cost=2"])
    assert text.exit_code == 0 and "normalised" in text.stdout and "Pareto front" in text.stdout


def _steward(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = "from modelsteward.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=120)


def test_cli_unknown_provider_and_bad_input_exit_non_zero(settings) -> None:
    env = {**os.environ, "STEWARD_HOME": str(settings.home)}
    res = _steward("scan", "--provider", "openruoter", env=env)
    assert res.returncode == 2 and res.stdout == ""
    line = res.stderr.strip()
    assert "\n" not in line and "Unknown provider 'openruoter'" in line
    for name in ("openrouter", "openai", "anthropic", "google", "huggingface", "ollama", "local", "all"):
        assert name in line
    res = _steward("rank", "--use-case", "nope", env=env)
    assert res.returncode != 0 and "Unknown use case 'nope'" in res.stderr
