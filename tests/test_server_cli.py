"""``steward tokens create|list|revoke`` and ``steward serve`` (a real process, SIGTERM drain)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

STEWARD = [sys.executable, "-c", "from modelsteward.cli import main; main()"]


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STEWARD, *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def env(settings: Any) -> dict[str, str]:
    return {**os.environ, "STEWARD_HOME": str(settings.home)}


def test_tokens_create_list_revoke(env: dict[str, str], settings: Any) -> None:
    r = _run("tokens", "create", "--name", "alice", "--role", "approver", "--json", env=env)
    assert r.returncode == 0, r.stderr
    made = json.loads(r.stdout)
    assert made["name"] == "alice" and made["role"] == "approver" and made["token"].startswith("stw_")
    r = _run("tokens", "create", "--name", "bob", "--role", "operator", env=env)
    assert r.returncode == 0 and "not shown again" in r.stdout
    plain = r.stdout.strip().splitlines()[-1]
    assert plain.startswith("stw_")
    r = _run("tokens", "list", "--json", env=env)
    listed = json.loads(r.stdout)
    assert [t["name"] for t in listed] == ["alice", "bob"]
    assert made["token"] not in r.stdout and plain not in r.stdout  # only hashes are kept
    r = _run("tokens", "create", "--name", "alice", "--role", "viewer", env=env)
    assert r.returncode != 0 and "already exists" in r.stderr and r.stderr.count("\n") <= 2
    r = _run("tokens", "create", "--name", "carol", "--role", "boss", env=env)
    assert r.returncode == 2 and "viewer" in r.stderr
    r = _run("tokens", "revoke", str(made["id"]), "--json", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["revoked"] is True

    from modelsteward.context import open_steward
    from modelsteward.server.auth import identify

    st = open_steward(settings)
    try:
        assert identify(st, made["token"]) is None
        ident = identify(st, plain)
        assert ident is not None and ident.role == "operator"
    finally:
        st.close()


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_answers_api_gateway_console_and_drains(env: dict[str, str], tmp_path: Path) -> None:
    r = _run("tokens", "create", "--name", "ops", "--role", "viewer", "--json", env=env)
    token = json.loads(r.stdout)["token"]
    port = _port()
    proc = subprocess.Popen([*STEWARD, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "steward serve did not come up"
            time.sleep(0.2)
        assert httpx.get(base + "/readyz").json()["status"] == "ready"
        assert httpx.get(base + "/api/me", headers={"Authorization": f"Bearer {token}"}).json()["name"] == "ops"
        assert httpx.get(base + "/api/me").status_code == 401
        assert httpx.get(base + "/v1/models").status_code == 200  # gateway, loopback without keys
        assert httpx.get(base + "/login").status_code == 200
        assert "steward_api_requests_total" in httpx.get(base + "/metrics").text
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    # uvicorn finishes its graceful shutdown, then re-raises SIGTERM so the parent sees why it ended
    assert code in (0, -signal.SIGTERM), proc.stdout.read() if proc.stdout else ""
