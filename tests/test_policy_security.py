"""Control-plane holes of issue 15 that the policy registry closes, each reproduced at the wire first.

- re-pointing a live model (``POST /api/models`` with another ``base_url``) sent live traffic, with
  the provider's key, to the new host;
- prices set to 0 on a live model switched budgets and cost rules off;
- a shadow deploy of a freshly registered model mirrored every live prompt out, unevaluated;
- a provider's key went to whatever base URL a model was registered with;
- the policy registry: a mutating tool without a rule, or a rule for an unknown tool, fails at load.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rollout_helpers import CAND, STABLE, UC, ctx, pass_eval, setup_use_case
from server_helpers import bearer, make_tokens
from sqlalchemy import select

from modelsteward.errors import ApprovalRequired, InvalidInput, PolicyDenied
from modelsteward.fakes.upstream import RESPONSE
from modelsteward.gateway import create_key
from modelsteward.policies import bounds
from modelsteward.policies.registry import PolicyRegistryError, check_rules
from modelsteward.providers import clear_provider_cache, get_provider
from modelsteward.rollout import RolloutManager
from modelsteward.server import create_app
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import PolicyDecision
from modelsteward.tools import call_tool
from modelsteward.tools.base import load_all_tools

# their models (openai:, openrouter:) answer the check a model passes before it takes traffic (tools/checks.py)
pytestmark = pytest.mark.usefixtures("hosted_upstream")

PROVIDER_KEY = "sk-provider-secret-1234"


class Listener:
    """A local OpenAI-compatible endpoint that records the Authorization header of every request."""

    def __init__(self) -> None:
        seen: list[str | None] = []
        self.seen = seen

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                seen.append(self.headers.get("Authorization"))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(RESPONSE)))
                self.end_headers()
                self.wfile.write(RESPONSE)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[Listener]:
    """The openai provider's configured base URL (STEWARD_OPENAI_BASE_URL) and its key."""
    lst = Listener()
    monkeypatch.setenv("STEWARD_OPENAI_BASE_URL", lst.url)
    monkeypatch.setenv("OPENAI_API_KEY", PROVIDER_KEY)
    clear_provider_cache()
    yield lst
    lst.close()
    clear_provider_cache()


@pytest.fixture
def attacker() -> Iterator[Listener]:
    lst = Listener()
    yield lst
    lst.close()


def _decisions(steward: Any, policy: str) -> list[PolicyDecision]:
    with session_scope(steward.sessions) as s:
        return [d for d in s.scalars(select(PolicyDecision)) if policy in d.policy.split(",")]


def _send_until(client: TestClient, key: str, listener: Listener, want: Any = None, deadline_s: float = 10.0) -> None:
    """Gateway requests until ``listener`` saw one (with Authorization ``want``, when given): the
    gateway refreshes its routing in the background."""
    body = {"model": UC, "messages": [{"role": "user", "content": "hello"}]}
    end = time.monotonic() + deadline_s

    def done() -> bool:
        return bool(listener.seen) if want is None else want in listener.seen

    while not done() and time.monotonic() < end:
        r = client.post("/v1/chat/completions", json=body, headers=bearer(key))
        assert r.status_code == 200, r.text
        time.sleep(0.05)


# ---------------------------------------------------------------------- re-pointing a live model
@pytest.mark.slow
def test_repointing_the_live_model_needs_approval_and_never_takes_the_provider_key(
    steward: Any, provider: Listener, attacker: Listener,
) -> None:
    setup_use_case(steward)
    tokens = make_tokens(steward)
    key = create_key(steward.registry, "app").key
    with TestClient(create_app(steward, metrics_cache_seconds=0), raise_server_exceptions=False) as client:
        _send_until(client, key, provider)
        assert provider.seen and provider.seen[0] == f"Bearer {PROVIDER_KEY}"  # the live path, as configured
        body = {"provider": "openai", "model_id": "stable-model", "base_url": attacker.url}
        r = client.post("/api/models", json=body, headers=bearer(tokens["operator"]))
        assert r.status_code == 202, r.text  # before the fix: 201, and the next request went to the attacker
        err = r.json()
        assert err["code"] == "approval_required" and "live_model_change" in err["message"]
        assert steward.registry.get_model(STABLE).base_url is None  # nothing changed
        assert len(_decisions(steward, "live_model_change")) == 1
        # another person approves; the re-point is carried out, and still no provider key leaves
        approval_id = err["details"]["approval_id"]
        call_tool("approval_decide", {"approval_id": approval_id, "decision": "approve"}, ctx(steward, "cli:bob"))
        call_tool("models_register", body, ctx(steward, "api:operator", approval_id=approval_id))
        _send_until(client, key, attacker)
        assert attacker.seen, "the approved re-point should carry traffic to the new endpoint"
        assert all(h is None for h in attacker.seen), attacker.seen  # no Authorization header at all


def test_repoint_is_refused_while_a_rollout_of_that_model_runs(steward: Any) -> None:
    setup_use_case(steward)
    pass_eval(steward)
    call_tool("deploy", {"use_case": UC, "model_id": CAND, "strategy": "canary"}, ctx(steward))
    for model in ("cand-model", "stable-model"):
        with pytest.raises(PolicyDenied, match="model_in_rollout") as ei:
            call_tool("models_register", {"provider": "openai", "model_id": model, "base_url": "http://elsewhere/v1"},
                      ctx(steward))
        assert ei.value.code == "policy_denied"
    assert steward.registry.get_model(CAND).base_url is None
    assert len(_decisions(steward, "model_in_rollout")) == 2


def test_price_to_zero_on_a_live_model_needs_approval(steward: Any) -> None:
    setup_use_case(steward)
    with pytest.raises(ApprovalRequired, match="live_model_change") as ei:
        call_tool("models_register", {"provider": "openai", "model_id": "stable-model", "price_in": "0",
                                      "price_out": "0"}, ctx(steward))
    assert ei.value.code == "approval_required"
    m = steward.registry.get_model(STABLE)
    assert (float(m.price_in_per_m), float(m.price_out_per_m)) == (1.0, 2.0)
    assert "price_in 1 -> 0" in str(ei.value)
    # the same prices again, or a model without traffic: no change that needs anyone
    call_tool("models_register", {"provider": "openai", "model_id": "stable-model", "price_in": "1.0"}, ctx(steward))
    out = call_tool("models_register", {"provider": "openai", "model_id": "cand-model", "price_in": "0"}, ctx(steward))
    assert float(out.price_in_per_m) == 0.0


def test_hosting_cost_of_a_live_model_is_a_price_change(steward: Any) -> None:
    """A hosting cost feeds cost per request and budgets: on a live model it needs the same approval."""
    setup_use_case(steward)
    for args in ({"cost_per_hour": "0"}, {"hosting_cost": "0.01/M"}):
        with pytest.raises(ApprovalRequired, match="live_model_change"):
            call_tool("models_register", {"provider": "openai", "model_id": "stable-model", **args}, ctx(steward))
    assert "hosting" not in (steward.registry.get_model(STABLE).meta or {})


def test_key_reference_change_on_a_shadow_model_needs_approval(steward: Any) -> None:
    setup_use_case(steward)
    pass_eval(steward)
    call_tool("deploy", {"use_case": UC, "model_id": CAND, "strategy": "shadow"}, ctx(steward))
    RolloutManager(steward).abort(UC, actor="cli:alice", reason="test")  # no rollout runs now ...
    from gateway_helpers import set_routing

    set_routing(steward, UC, [{"model_id": STABLE, "weight": 100.0, "role": "primary"},
                              {"model_id": CAND, "weight": 10.0, "role": "shadow"}])  # ... but shadow traffic does
    with pytest.raises(ApprovalRequired, match="shadow on 'chat'"):
        call_tool("models_register", {"provider": "openai", "model_id": "cand-model", "api_key_env": "STEWARD_MODELKEY_OWN"},
                  ctx(steward))
    assert "api_key_env" not in (steward.registry.get_model(CAND).meta or {})


# ---------------------------------------------------------------------- shadow exfiltration
def test_shadow_of_an_unevaluated_model_needs_approval_and_is_capped(steward: Any, hosted_upstream: Any) -> None:
    setup_use_case(steward)
    steward.registry.register_model("openai", "fresh", base_url=hosted_upstream.url)  # an allowed host that answers
    args = {"use_case": UC, "model_id": "openai:fresh", "strategy": "shadow"}
    v0 = steward.registry.deployment(UC).version
    with pytest.raises(ApprovalRequired, match="shadow_unevaluated") as ei:
        call_tool("deploy", args, ctx(steward))  # before the fix: every live prompt mirrored out at once
    assert steward.registry.deployment(UC).version == v0 and RolloutManager(steward).active(UC) is None
    assert [d.verdict for d in _decisions(steward, "shadow_unevaluated")] == ["needs_approval"]
    cap = bounds.POLICY_BOUNDS["unevaluated_shadow_percent"]
    assert cap.default < 100 and cap.hard < 100 and cap.kind == "max"
    call_tool("approval_decide", {"approval_id": ei.value.approval_id, "decision": "approve", "carry_out": False}, ctx(steward, "cli:bob"))
    out = call_tool("deploy", args, ctx(steward, approval_id=ei.value.approval_id))
    shadow = [r for r in out.routing if r.role == "shadow"]
    assert [r.model_dump() for r in shadow] == [{"model_id": "openai:fresh", "weight": cap.default, "role": "shadow"}]
    # a use case may tighten the cap, never loosen it past the hard bound
    assert bounds.clamp_section("policy", {"unevaluated_shadow_percent": 100})[0]["unevaluated_shadow_percent"] == cap.hard


def test_shadow_of_an_evaluated_model_needs_nothing_and_mirrors_the_configured_share(steward: Any) -> None:
    setup_use_case(steward)
    pass_eval(steward)
    out = call_tool("deploy", {"use_case": UC, "model_id": CAND, "strategy": "shadow"}, ctx(steward))
    assert [r.weight for r in out.routing if r.role == "shadow"] == [100.0]


# ---------------------------------------------------------------------- keys stay with their provider
def test_provider_key_is_sent_only_to_the_provider_base_url(steward: Any, provider: Listener,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    home = steward.registry.register_model("openai", "home")
    assert get_provider(home, steward.settings).headers["Authorization"] == f"Bearer {PROVIDER_KEY}"
    same = steward.registry.register_model("openai", "same-host", base_url=provider.url + "/")
    assert get_provider(same, steward.settings).headers["Authorization"] == f"Bearer {PROVIDER_KEY}"
    foreign = steward.registry.register_model("openai", "foreign", base_url="http://127.0.0.1:9/v1")
    assert "Authorization" not in get_provider(foreign, steward.settings).headers  # before the fix: the key
    monkeypatch.setenv("STEWARD_MODELKEY_OWN", "own-key")
    own = call_tool("models_register", {"provider": "openai", "model_id": "own", "base_url": "http://127.0.0.1:9/v1",
                                        "api_key_env": "STEWARD_MODELKEY_OWN"}, ctx(steward))
    assert own.metadata["api_key_env"] == "STEWARD_MODELKEY_OWN"
    row = steward.registry.get_model(own.id)
    assert get_provider(row, steward.settings).headers["Authorization"] == "Bearer own-key"
    # a stored reference to a provider's variable (written around the tool) still never leaves
    sneaky = steward.registry.register_model("custom", "sneaky", base_url="http://127.0.0.1:9/v1",
                                             metadata={"api_key_env": "OPENAI_API_KEY"})
    assert "Authorization" not in get_provider(sneaky, steward.settings).headers


@pytest.mark.slow
def test_key_to_a_foreign_host_at_the_wire(steward: Any, provider: Listener, attacker: Listener,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A model registered (no traffic yet, so no approval) at a foreign host, then made live:
    the gateway's requests reach that host without the provider's key, with the model's own key."""
    monkeypatch.setenv("STEWARD_MODELKEY_OWN", "own-key")
    setup_use_case(steward)
    key = create_key(steward.registry, "app").key
    call_tool("models_register", {"provider": "openai", "model_id": "elsewhere", "base_url": attacker.url},
              ctx(steward))
    from gateway_helpers import set_routing

    set_routing(steward, UC, [{"model_id": "openai:elsewhere", "weight": 100.0, "role": "primary"}])
    with TestClient(create_app(steward, metrics_cache_seconds=0), raise_server_exceptions=False) as client:
        _send_until(client, key, attacker)
        assert attacker.seen and attacker.seen[0] is None, attacker.seen  # before the fix: Bearer sk-provider...
        call_tool("models_register", {"provider": "openai", "model_id": "own", "base_url": attacker.url,
                                      "api_key_env": "STEWARD_MODELKEY_OWN"}, ctx(steward))
        set_routing(steward, UC, [{"model_id": "openai:own", "weight": 100.0, "role": "primary"}])
        _send_until(client, key, attacker, want="Bearer own-key")
        assert "Bearer own-key" in attacker.seen
        assert f"Bearer {PROVIDER_KEY}" not in attacker.seen
    assert provider.seen == []


@pytest.mark.parametrize("name, why", [
    ("OPENAI_API_KEY", "openai provider's key"),
    ("STEWARD_ADMIN_TOKEN", "allow-list"),
    ("AWS_SECRET_ACCESS_KEY", "allow-list"),
    ("sk-live-abc123", "the NAME of an environment variable"),
])
def test_api_key_env_must_name_an_own_variable(steward: Any, name: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        call_tool("models_register", {"provider": "custom", "model_id": "x", "base_url": "http://h/v1",
                                      "api_key_env": name}, ctx(steward))
    assert steward.registry.list_models(provider="custom") == []


# ---------------------------------------------------------------------- rollback restores routing only
def test_rollback_restores_routing_but_never_an_older_policy(steward: Any) -> None:
    setup_use_case(steward)
    pass_eval(steward)
    call_tool("deploy", {"use_case": UC, "model_id": CAND, "strategy": "canary"}, ctx(steward))
    tighter = {"policy": {"max_deploys_per_hour": 1}, "rollout": {"min_requests": 40}}
    uc = steward.registry.get_use_case(UC)
    steward.registry.update_use_case(UC, config={**(uc.config or {}), **tighter}, sticky=True)  # as set_policy would
    out = call_tool("rollback", {"use_case": UC}, ctx(steward))
    assert out.changed and [r.model_id for r in out.routing] == [STABLE]
    after = steward.registry.get_use_case(UC)
    assert after.config["policy"] == {"max_deploys_per_hour": 1}  # before the fix: the older (looser) policy
    assert after.config["rollout"]["min_requests"] == 40
    assert after.sticky is False  # routing settings are restored
    again = call_tool("rollback", {"use_case": UC}, ctx(steward))
    assert again.changed is False


# ---------------------------------------------------------------------- the registry itself
def test_every_mutating_tool_has_a_rule_and_every_rule_a_tool() -> None:
    tools = load_all_tools()
    from modelsteward.policies.registry import RULES

    assert {n for n, t in tools.items() if t.mutating} == set(RULES)


def test_registry_fails_at_load_for_a_mutating_tool_without_a_rule() -> None:
    from modelsteward.policies.registry import RULES

    facts = {name: True for name in RULES} | {"read_thing": False, "wipe_everything": True}
    with pytest.raises(PolicyRegistryError, match="wipe_everything") as ei:
        check_rules(facts)
    assert "read_thing" not in str(ei.value)


def test_registry_fails_at_load_for_a_rule_naming_an_unknown_tool() -> None:
    from modelsteward.policies.registry import RULES

    facts = {name: True for name in RULES if name != "deploy"}
    with pytest.raises(PolicyRegistryError, match="'deploy'.*no such tool"):
        check_rules(facts)
    facts["deploy"] = False  # a rule for a read-only tool is as wrong
    with pytest.raises(PolicyRegistryError, match="'deploy'.*not mutating"):
        check_rules(facts)


def test_a_tool_module_with_an_unruled_mutating_tool_fails_when_the_tools_load() -> None:
    from modelsteward.tools.base import TOOLS, InputModel, tool

    class In(InputModel):
        pass

    @tool("zz_unruled", input_model=In, output_model=In, mutating=True)
    def zz_unruled(ctx: Any, inp: In) -> In:  # pragma: no cover - never runs
        return inp

    try:
        with pytest.raises(PolicyRegistryError, match="zz_unruled"):
            load_all_tools()
        # no mutating tool runs while the registries disagree (read-only tools are looked up lazily)
        for name in ("zz_unruled", "deploy"):
            with pytest.raises(PolicyRegistryError, match="zz_unruled"):
                call_tool(name, {}, ctx(None))  # type: ignore[arg-type]
    finally:
        TOOLS.pop("zz_unruled", None)
    assert "list_use_cases" in load_all_tools()


def test_a_second_rule_for_one_tool_fails_at_import() -> None:
    from modelsteward.policies.registry import rule

    with pytest.raises(PolicyRegistryError, match="'deploy'.*twice"):
        @rule("deploy")
        def again(f: Any, s: Any, args: Any) -> list[Any]:  # pragma: no cover - never runs
            return []


def test_cli_api_key_env_flag(tmp_path: Any) -> None:
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "STEWARD_HOME": str(tmp_path / "ws")}
    env.pop("STEWARD_DATABASE_URL", None)
    env.pop("STEWARD_LOG_DIR", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "modelsteward", *args], capture_output=True, text=True, env=env,
                              timeout=120)

    bad = run("models", "register", "vllm", "m", "--base-url", "http://gpu:8000/v1", "--api-key-env", "VLLM_API_KEY")
    assert bad.returncode == 2 and "vllm provider's key" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    ok = run("models", "register", "vllm", "m", "--base-url", "http://gpu:8000/v1", "--api-key-env", "STEWARD_MODELKEY_GPU_BOX",
             "--json")
    assert ok.returncode == 0, ok.stderr
    out = json.loads(ok.stdout)  # gpu:8000 is not approved (egress): registered, but pending
    assert out["metadata"]["api_key_env"] == "STEWARD_MODELKEY_GPU_BOX" and out["status"] == "pending"




def test_a_remote_caller_cannot_point_the_golden_set_outside_the_workspace(steward: Any) -> None:
    """Issue 25: an operator (API) pointed golden_set / initial_data at any server path (/etc/passwd
    was accepted).  From the API or the agent, only files inside the workspace can be named."""
    from modelsteward.context import ToolContext
    from modelsteward.errors import InvalidInput
    from modelsteward.tools import call_tool

    api = ToolContext(steward=steward, actor="api:operator")
    for field in ("golden_set", "initial_data"):
        with pytest.raises(InvalidInput, match="outside the workspace") as err:
            call_tool("usecase_add", {"name": f"uc-{field}", "description": "x", field: "/etc/passwd"}, api)
        assert err.value.details["field"] == field
    assert not [u for u in steward.registry.list_use_cases() if u.name.startswith("uc-")]  # nothing half-written
    inside = steward.settings.workspace / "golden" / "g.jsonl"
    inside.parent.mkdir(parents=True, exist_ok=True)
    inside.write_text('{"prompt": "Tell me a story about a fox."}\n')
    out = call_tool("usecase_add", {"name": "uc-ok", "description": "x", "golden_set": "golden/g.jsonl"}, api)
    assert out.golden_set_path == str(inside.resolve())  # type: ignore[attr-defined]
    with pytest.raises(InvalidInput, match="outside the workspace"):
        call_tool("usecase_update", {"use_case": "uc-ok", "golden_set": "../../etc/passwd"}, api)
