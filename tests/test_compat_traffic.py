"""Compatibility from traffic: what a use case's logged requests need (tools, JSON, images) is required of candidates."""

from __future__ import annotations

import json

import pytest

from modelsteward.catalog.compat import Requirements, check_compatibility, infer_requirements
from modelsteward.errors import PolicyDenied
from modelsteward.tools.base import ToolContext, call_tool
from training_helpers import log_row

# their models (openai:, openrouter:) answer the check a model passes before it takes traffic (tools/checks.py)
pytestmark = pytest.mark.usefixtures("hosted_upstream")

TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
IMAGE = [{"role": "user", "content": [{"type": "text", "text": "what is it?"},
                                      {"type": "image_url", "image_url": {"url": "https://x.example/cat.png"}}]}]


def _traffic(steward) -> None:  # type: ignore[no-untyped-def]
    steward.registry.add_use_case("vision", description="looks at pictures")
    rows = [log_row(f"p{i}", f"plain {i}", "ok", use_case="vision") for i in range(5)]
    rows += [log_row(f"t{i}", f"tool {i}", "", use_case="vision", request={"tools": TOOLS}) for i in range(3)]
    rows += [log_row(f"i{i}", "img", "a cat", use_case="vision", messages=IMAGE) for i in range(2)]
    rows += [log_row(f"s{i}", "img", "a cat", use_case="vision", messages=IMAGE, role="shadow") for i in range(4)]
    steward.logs.append_many(rows)
    steward.logs.flush()
    steward.registry.register_model("openrouter", "acme/text-only", capabilities=["text"])
    steward.registry.register_model("openrouter", "acme/omni", capabilities=["text", "tools", "image_input"])


def test_requirements_inferred_from_logs_filter_candidates(steward) -> None:  # type: ignore[no-untyped-def]
    _traffic(steward)
    needs = infer_requirements(steward, "vision")
    # shadow calls repeat requests: not counted
    assert needs["requests"] == 10
    assert needs["capabilities"] == {"tools": {"requests": 3, "share": 0.3}, "vision": {"requests": 2, "share": 0.2}}
    req = Requirements.from_use_case({}).with_traffic(needs, "vision")
    res = check_compatibility(steward.registry.list_models(), req)
    assert res.compatible == ["openrouter:acme/omni"]
    [rej] = res.rejected
    assert rej.reasons == [
        "use case vision's traffic uses tools (30% of requests); model openrouter:acme/text-only has no tool support",
        "use case vision's traffic uses images (20% of requests); model openrouter:acme/text-only is text-only"]
    # without traffic nothing is required
    assert check_compatibility(steward.registry.list_models(), {}).rejected == []


def test_usecase_show_json_has_inferred_requirements(steward, settings) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from modelsteward.cli import app

    _traffic(steward)
    steward.close()
    res = CliRunner().invoke(app, ["usecase", "show", "vision", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["inferred_requirements"]["capabilities"]["vision"] == {"requests": 2, "share": 0.2}
    res = CliRunner().invoke(app, ["usecase", "show", "vision"])
    assert "traffic needs: tools (30%), vision (20%) of 10 requests in 30d" in res.output


def test_deploying_a_text_only_model_for_image_traffic_is_denied(steward) -> None:  # type: ignore[no-untyped-def]
    _traffic(steward)
    ctx = ToolContext(steward, actor="cli:alice")
    with pytest.raises(PolicyDenied) as err:
        call_tool("deploy", {"use_case": "vision", "model_id": "openrouter:acme/text-only", "strategy": "shadow"}, ctx)
    assert ("use case vision's traffic uses images (20% of requests); model openrouter:acme/text-only is text-only"
            in err.value.message)
