"""Issue 29: the model check runs by itself before a model takes traffic, and at ``steward serve`` start-up.

A deploy (every strategy), a use case's first model or fallback, a new fallback and a canary's promotion
to 100 % are refused when the model's check fails (CLI: exit 1, one line naming the fix; API: 424 JSON
with ``details.fix``); nothing changes.  ``--no-check`` / ``no_check`` forces it; an agent's ``no_check``
needs a human approval (policy ``agent_no_check``).  The upstream is the project's fake
(``fakes.upstream.InstantUpstream``) in ``v1_only`` mode: like vLLM it answers only ``/v1/...``, so a
base URL registered without ``/v1`` gets 404 and the check says "add /v1".
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rollout_helpers import CAND, UC, ctx, healthy_window, pass_eval, setup_use_case
from server_helpers import bearer, make_tokens
from sqlalchemy import func, select

from modelsteward.errors import ApprovalRequired, CheckFailed
from modelsteward.fakes.upstream import InstantUpstream
from modelsteward.providers import clear_provider_cache
from modelsteward.server import create_app
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import Approval, PolicyDecision, Rollout, UseCase
from modelsteward.tools import call_tool

STEWARD = [sys.executable, "-m", "modelsteward"]
NO_V1 = "custom:no-v1"
GOOD = "custom:good"


@pytest.fixture
def upstream() -> Iterator[InstantUpstream]:
    with InstantUpstream(v1_only=True) as up:
        clear_provider_cache()
        yield up
    clear_provider_cache()


@pytest.fixture
def st(steward: Any, upstream: InstantUpstream) -> Any:
    """Use case ``chat`` live on a model that answers; ``custom:no-v1`` registered without ``/v1``."""
    reg = steward.registry
    root = upstream.url.removesuffix("/v1")
    reg.register_model("custom", "good", base_url=upstream.url, price_in_per_m="1", price_out_per_m="1")
    reg.register_model("custom", "no-v1", base_url=root, price_in_per_m="1", price_out_per_m="1")
    reg.add_use_case(UC, description="test", model=GOOD)
    return steward


def _world(steward: Any) -> tuple[Any, ...]:
    """Everything a refused change must leave as it was."""
    with session_scope(steward.sessions) as s:
        counts = tuple(s.scalar(select(func.count()).select_from(t)) for t in (Rollout, Approval, PolicyDecision,
                                                                               UseCase))
    uc = steward.registry.get_use_case(UC)
    return counts, steward.registry.deployment(UC).version, list(uc.fallback or [])


def _cli(settings: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STEWARD_HOME": str(settings.home)}
    return subprocess.run([*STEWARD, *args], capture_output=True, text=True, env=env, timeout=180)


def test_cli_deploy_without_v1_is_refused_naming_the_fix_and_no_check_forces_it(st: Any, settings: Any,
                                                                               upstream: InstantUpstream) -> None:
    pass_eval(st, NO_V1)
    before = _world(st)
    r = _cli(settings, "deploy", "--use-case", UC, "--model", NO_V1, "--strategy", "canary")
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error (check_failed): custom:no-v1"), r.stderr
    assert f"add /v1 to the base URL ({upstream.url})" in lines[0] and "--no-check" in lines[0], lines
    assert _world(st) == before  # no rollout, approval, policy decision, routing change
    r = _cli(settings, "deploy", "--use-case", UC, "--model", NO_V1, "--strategy", "canary", "--no-check", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["action"] == "deployed" and NO_V1 in [a["model_id"] for a in out["routing"]], out


def test_every_strategy_is_checked_and_a_passing_model_deploys(st: Any) -> None:
    before = _world(st)
    for strategy in ("shadow", "canary", "full"):  # shadow too: it costs a call per mirrored request
        with pytest.raises(CheckFailed, match="add /v1") as exc:
            call_tool("deploy", {"use_case": UC, "model_id": NO_V1, "strategy": strategy}, ctx(st))
        assert exc.value.details["fix"].startswith("add /v1") and exc.value.http_status == 424
    assert _world(st) == before
    st.registry.register_model("custom", "other", base_url=st.registry.get_model(GOOD).base_url)
    pass_eval(st, "custom:other")
    out = call_tool("deploy", {"use_case": UC, "model_id": "custom:other", "strategy": "canary"}, ctx(st))
    assert out.action == "deployed"


def test_use_case_model_and_fallbacks_are_checked(st: Any) -> None:
    st.registry.add_use_case("spare", description="no live routing: a fallback change needs no approval")
    before = _world(st)
    with pytest.raises(CheckFailed, match="live on new use case 'other'.*add /v1"):
        call_tool("usecase_add", {"name": "other", "model": NO_V1}, ctx(st))
    with pytest.raises(CheckFailed, match="fallback of new use case 'other'.*add /v1"):
        call_tool("usecase_add", {"name": "other", "model": GOOD, "fallback": [NO_V1]}, ctx(st))
    with pytest.raises(CheckFailed, match="fallback of 'spare'.*add /v1"):
        call_tool("usecase_update", {"use_case": "spare", "fallback": [GOOD, NO_V1]}, ctx(st))
    assert _world(st) == before and st.registry.get_use_case("spare").fallback in (None, [])
    out = call_tool("usecase_update", {"use_case": "spare", "fallback": [NO_V1], "no_check": True}, ctx(st))
    assert out.fallback == [NO_V1]
    # a model already in the chain serves now: re-giving the chain does not check it again
    out = call_tool("usecase_update", {"use_case": "spare", "fallback": [NO_V1], "description": "d"}, ctx(st))
    assert out.fallback == [NO_V1] and out.changed == ["description"]
    out = call_tool("usecase_add", {"name": "other", "model": GOOD, "fallback": [NO_V1], "no_check": True}, ctx(st))
    assert out.fallback == [NO_V1] and [a["model_id"] for a in out.allocations] == [GOOD]


def test_promotion_to_100_checks_the_candidate_first(steward: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A canary whose model stopped answering is not promoted, and no approval is asked for it."""
    with InstantUpstream() as up:
        monkeypatch.setenv("STEWARD_OPENAI_BASE_URL", up.url)  # the rollout helpers' openai: models answer here
        clear_provider_cache()
        setup_use_case(steward)
        pass_eval(steward)
        call_tool("deploy", {"use_case": UC, "model_id": CAND, "strategy": "canary"}, ctx(steward))
        for weight in (5, 25):  # the steps before 50 % pass their analysis
            healthy_window(steward, weight)
            assert call_tool("rollout_advance", {"use_case": UC}, ctx(steward)).action == "advanced"
        healthy_window(steward, 50)  # the next advance promotes
    monkeypatch.setenv("STEWARD_OPENAI_BASE_URL", f"http://127.0.0.1:{_closed_port()}/v1")  # now it is down
    clear_provider_cache()
    with session_scope(steward.sessions) as s:
        approvals = s.scalar(select(func.count()).select_from(Approval))
    with pytest.raises(CheckFailed, match=r"promotion to 100%.*cannot connect"):
        call_tool("rollout_advance", {"use_case": UC}, ctx(steward))
    with session_scope(steward.sessions) as s:
        assert s.scalar(select(func.count()).select_from(Approval)) == approvals
        ro = s.scalars(select(Rollout)).one()
        assert ro.step_index == 2 and ro.state == "waiting"
    with pytest.raises(ApprovalRequired, match="promotion_to_100"):  # forced: the policies still hold
        call_tool("rollout_advance", {"use_case": UC, "no_check": True}, ctx(steward))


def test_an_agents_no_check_needs_a_human_approval(st: Any) -> None:
    """Policy agent_no_check: without the rule an agent could skip the check on its own."""
    pass_eval(st, NO_V1)
    for tool, args in (("deploy", {"use_case": UC, "model_id": NO_V1, "strategy": "canary"}),
                       ("usecase_update", {"use_case": UC, "description": "d"}),
                       ("usecase_add", {"name": "other", "model": NO_V1})):
        with pytest.raises(ApprovalRequired, match="agent_no_check"):
            call_tool(tool, {**args, "no_check": True}, ctx(st, "agent:run-1"))
    with session_scope(st.sessions) as s:
        pending = list(s.scalars(select(Approval).where(Approval.status == "pending")))
    assert sorted(a.action for a in pending) == ["deploy", "usecase_add", "usecase_update"]
    assert all(a.arguments["no_check"] is True for a in pending)
    # a person's no_check needs none (the deploy passes on its other rules)
    out = call_tool("deploy", {"use_case": UC, "model_id": NO_V1, "strategy": "canary", "no_check": True}, ctx(st))
    assert out.action == "deployed"


def test_api_answers_424_naming_the_fix_and_no_check_forces_it(st: Any) -> None:
    tokens = make_tokens(st)
    pass_eval(st, NO_V1)
    body = {"use_case": UC, "model_id": NO_V1, "strategy": "canary"}
    with TestClient(create_app(st, gateway=False)) as client:
        before = _world(st)
        r = client.post("/api/rollouts", json=body, headers=bearer(tokens["operator"]))
        assert r.status_code == 424, r.text
        err = r.json()
        assert err["code"] == "check_failed" and "add /v1" in err["message"], err
        assert err["details"]["fix"].startswith("add /v1") and err["details"]["check"]["status"] == 404, err
        assert _world(st) == before
        r = client.post("/api/rollouts", json={**body, "no_check": True}, headers=bearer(tokens["operator"]))
        assert r.status_code == 200 and r.json()["action"] == "deployed", r.text
        r = client.post("/api/use-cases", json={"name": "other", "model": NO_V1}, headers=bearer(tokens["operator"]))
        assert r.status_code == 424 and r.json()["details"]["model_id"] == NO_V1, r.text
        spec = client.get("/openapi.json").json()
        assert "424" in spec["paths"]["/api/rollouts"]["post"]["responses"]


def test_local_models_are_checked_by_their_files_without_loading(steward: Any, tmp_path: Path) -> None:
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "config.json").write_text("{}")  # not loadable: the check reads paths only, it loads nothing
    reg = steward.registry
    reg.register_model("local", "files", metadata={"path": str(folder)})
    reg.register_model("local", "gone", metadata={"path": str(tmp_path / "nowhere")})
    with pytest.raises(CheckFailed, match="nowhere has no config.json"):
        call_tool("usecase_add", {"name": "a", "model": "local:gone"}, ctx(steward))
    out = call_tool("usecase_add", {"name": "a", "model": "local:files"}, ctx(steward))
    assert [x["model_id"] for x in out.allocations] == ["local:files"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_warns_once_per_live_or_fallback_model_whose_check_fails(st: Any, settings: Any, tmp_path: Path,
                                                                       upstream: InstantUpstream) -> None:
    import signal
    import time

    import httpx

    reg = st.registry
    reg.register_model("custom", "down", base_url=f"http://127.0.0.1:{_closed_port()}/v1")
    reg.add_use_case("broken", description="live on a model registered without /v1", model=NO_V1,
                     fallback=["custom:down"])
    port = _closed_port()
    err = tmp_path / "serve.err"
    env = {**os.environ, "STEWARD_HOME": str(settings.home)}
    proc = subprocess.Popen([*STEWARD, "serve", "--port", str(port), "--no-control-loop"], env=env,
                            stdout=subprocess.DEVNULL, stderr=err.open("wb"))
    try:
        deadline = time.monotonic() + 90
        while "custom:down" not in err.read_text() or NO_V1 not in err.read_text():
            assert proc.poll() is None, err.read_text()
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.3)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    lines = [ln for ln in err.read_text().splitlines() if "its check failed" in ln]
    by_model = {m: [ln for ln in lines if f"requests to {m} " in ln] for m in (NO_V1, "custom:down", GOOD)}
    assert len(by_model[NO_V1]) == 1 and "fix: add /v1 to the base URL" in by_model[NO_V1][0], lines
    assert "use case broken" in by_model[NO_V1][0]
    assert len(by_model["custom:down"]) == 1 and "fix: cannot connect" in by_model["custom:down"][0], lines
    assert by_model[GOOD] == [] and len(lines) == 2, lines  # the model that answers: no line
