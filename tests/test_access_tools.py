"""Credentials through tools (issue 27 item 5): API tokens and gateway keys are created and revoked by
``token_create`` / ``token_revoke`` / ``key_create`` / ``key_revoke``, which pass a policy rule and are
audited.  Before, ``steward tokens create`` wrote the row directly: a viewer's STEWARD_TOKEN could mint an
admin token, an agent-side caller met no rule, and nothing recorded who did it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy import select

from modelsteward.errors import PolicyDenied
from modelsteward.server.auth import create_token, identify
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import ApiToken, GatewayKey, PolicyDecision
from modelsteward.tools import access
from modelsteward.tools.base import ToolContext, call_tool

STEWARD = [sys.executable, "-c", "from modelsteward.cli import main; main()"]


def _decisions(steward: Any, action: str) -> list[PolicyDecision]:
    with session_scope(steward.sessions) as s:
        return list(s.scalars(select(PolicyDecision).where(PolicyDecision.action == action).order_by(PolicyDecision.id)))


def _tokens(steward: Any) -> list[str]:
    with session_scope(steward.sessions) as s:
        return list(s.scalars(select(ApiToken.name).order_by(ApiToken.id)))


def test_the_agent_may_not_create_or_revoke_credentials(steward) -> None:  # type: ignore[no-untyped-def]
    # what an agent run's context looks like: its actor, no role a front-end proved (even if one were set)
    agent = ToolContext(steward=steward, actor="agent:run-7", role="admin")
    with pytest.raises(PolicyDenied, match="no_agent_credentials"):
        call_tool(access.token_create, {"name": "backdoor", "role": "admin"}, agent)
    with pytest.raises(PolicyDenied, match="no_agent_credentials"):
        call_tool(access.key_create, {"name": "exfil"}, agent)
    row, _ = create_token(steward, "alice", "admin")
    with pytest.raises(PolicyDenied, match="no_agent_credentials"):
        call_tool(access.token_revoke, {"token_id": row.id}, agent)
    assert _tokens(steward) == ["alice"]
    with session_scope(steward.sessions) as s:
        assert s.scalar(select(GatewayKey.id)) is None
    denied = _decisions(steward, "token_create")
    assert [(d.verdict, d.policy, d.actor) for d in denied] == [("deny", "no_agent_credentials", "agent:run-7")]


def test_a_token_needs_role_admin_and_an_unproven_role_is_refused(steward) -> None:  # type: ignore[no-untyped-def]
    for role in ("viewer", "operator", "approver", None):
        ctx = ToolContext(steward=steward, actor="api:mallory", role=role)
        with pytest.raises(PolicyDenied, match="credentials_role") as err:
            call_tool(access.token_create, {"name": "root2", "role": "admin"}, ctx)
        assert "needs role 'admin'" in err.value.message
    assert _tokens(steward) == []
    # a gateway key needs an operator; a viewer is refused
    with pytest.raises(PolicyDenied, match="credentials_role"):
        call_tool(access.key_create, {"name": "app"}, ToolContext(steward=steward, actor="api:v", role="viewer"))
    out = call_tool(access.key_create, {"name": "app"}, ToolContext(steward=steward, actor="api:op", role="operator"))
    assert out.key.startswith("sk-steward-") and out.use_cases == []


def test_every_allowed_change_is_audited_without_the_secret(steward) -> None:  # type: ignore[no-untyped-def]
    admin = ToolContext(steward=steward, actor="cli:root", role="admin")
    made = call_tool(access.token_create, {"name": "bob", "role": "approver"}, admin)
    assert made.token.startswith("stw_") and identify(steward, made.token) is not None
    call_tool(access.token_revoke, {"token_id": made.id}, admin)
    assert identify(steward, made.token) is None
    key = call_tool(access.key_create, {"name": "app"}, admin)
    call_tool(access.key_revoke, {"name": "app"}, admin)
    audit = [d for a in ("token_create", "token_revoke", "key_create", "key_revoke") for d in _decisions(steward, a)]
    assert [(d.action, d.verdict, d.actor) for d in audit] == [
        ("token_create", "allow", "cli:root"), ("token_revoke", "allow", "cli:root"),
        ("key_create", "allow", "cli:root"), ("key_revoke", "allow", "cli:root")]
    assert audit[0].arguments == {"token_id": made.id, "name": "bob", "role": "approver"}
    text = json.dumps([[d.arguments, d.reason] for d in audit])
    assert made.token not in text and key.key not in text  # who and what, never the secret


def test_the_agent_is_never_offered_the_credential_tools() -> None:
    from modelsteward.agent.graph import EXCLUDED_TOOLS

    assert {"token_create", "token_revoke", "key_create", "key_revoke"} <= EXCLUDED_TOOLS


def test_a_viewer_token_at_the_cli_can_no_longer_mint_an_admin_token(settings, steward) -> None:  # type: ignore[no-untyped-def]
    _, viewer = create_token(steward, "val", "viewer")
    env = {**os.environ, "STEWARD_HOME": str(settings.home), "STEWARD_TOKEN": viewer}
    r = subprocess.run([*STEWARD, "tokens", "create", "--name", "root2", "--role", "admin", "--json"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode != 0 and "credentials_role" in r.stderr, r.stdout + r.stderr
    assert _tokens(steward) == ["val"]
    assert [(d.verdict, d.actor) for d in _decisions(steward, "token_create")] == [("deny", "cli:val")]
    # the workspace's OS user (role admin) still creates tokens, keeping the --json shape
    env.pop("STEWARD_TOKEN")
    r = subprocess.run([*STEWARD, "tokens", "create", "--name", "root2", "--role", "admin", "--json"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert set(json.loads(r.stdout)) == {"id", "name", "role", "prefix", "token"}
