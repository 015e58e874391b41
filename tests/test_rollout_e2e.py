"""End to end through the real gateway with llm-katan upstreams: a shadow rollout compares the
mirrored answers and completes; then a canary whose candidate starts failing (llm-katan --error-rate 0.5) is detected within one analysis window, rolled back, and the
routing table equals the snapshot; the gateway then serves the stable model only."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from rollout_helpers import UC, backdate_step, ctx, pass_eval

from modelsteward.storage.db import session_scope
from modelsteward.storage.models import ModelSnapshot
from modelsteward.tools import call_tool

WINDOW_S = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Katan:
    """One llm-katan echo server in a subprocess (stopped by its own pid)."""

    def __init__(self, name: str, tmp: Path, *, error_rate: float = 0.0, port: int | None = None) -> None:
        exe = shutil.which("llm-katan") or str(Path(sys.executable).with_name("llm-katan"))
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [exe, "--model", name, "--backend", "echo", "--host", "127.0.0.1", "--port", str(self.port),
             "--error-rate", str(error_rate), "--disable-dashboard", "--log-level", "warning",
             "--stats-file", str(tmp / f"katan-{self.port}.json")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llm-katan on port {self.port} did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def _wait_version(app, version: int, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.state.gateway.status()["use_cases"].get(UC) == version:
            return
        time.sleep(0.05)
    raise AssertionError(f"gateway did not load routing version {version}")


def _send(client, n: int) -> list[str]:  # type: ignore[no-untyped-def]
    served = []
    for i in range(n):
        r = client.post("/v1/chat/completions",
                        json={"model": UC, "messages": [{"role": "user", "content": f"tell me a story {i}"}]})
        assert r.status_code == 200, r.text
        served.append(r.headers["x-steward-model"])
    return served


@pytest.mark.slow
def test_shadow_then_failing_canary_through_gateway(steward, tmp_path: Path, monkeypatch) -> None:
    from fastapi.testclient import TestClient

    from modelsteward.gateway.app import create_gateway_app
    from modelsteward.gateway.core import GatewayOptions

    monkeypatch.setenv("STEWARD_MODELKEY_KATAN", "test-key")  # the models' own key (a provider key stays with its provider)
    stable = Katan("stable", tmp_path)
    cand = Katan("cand", tmp_path)
    try:
        reg = steward.registry
        own_key = {"api_key_env": "STEWARD_MODELKEY_KATAN"}
        reg.register_model("custom", "stable", base_url=f"{stable.url}/v1", price_in_per_m="1", price_out_per_m="2",
                           metadata=own_key)
        reg.register_model("custom", "cand", base_url=f"{cand.url}/v1", price_in_per_m="1", price_out_per_m="2",
                           status="candidate", metadata=own_key)
        reg.add_use_case(UC, description="stories", model="custom:stable")
        reg.update_use_case(UC, config={"rollout": {"min_requests": 10, "min_duration_s": WINDOW_S}})
        pass_eval(steward, "custom:cand")
        app = create_gateway_app(steward, options=GatewayOptions(refresh_s=0.1, cooldown_s=2.0, expose_route_headers=True))
        with TestClient(app, client=("127.0.0.1", 40000)) as client:
            # 1. shadow: mirrored answers (request ids <id>-s1) compared with the primary's
            res = call_tool("deploy", {"use_case": UC, "model_id": "custom:cand", "strategy": "shadow"}, ctx(steward))
            _wait_version(app, res.version)
            assert set(_send(client, 12)) == {"custom:stable"}  # shadows never answer the client
            deadline = time.monotonic() + 20
            while app.state.gateway.status()["shadow_done"] < 12 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert app.state.gateway.status()["shadow_done"] >= 12
            backdate_step(steward, WINDOW_S + 1)
            out = call_tool("rollout_advance", {"use_case": UC}, ctx(steward))
            assert out.action == "completed", out.message
            assert out.analysis.candidate.requests >= 10 and out.analysis.similarity > 0.5
            assert reg.routing_table(reg.deployment(UC)) == [
                {"model_id": "custom:stable", "weight": 100.0, "role": "primary"}]

            # 2. canary, healthy at first
            res = call_tool("deploy", {"use_case": UC, "model_id": "custom:cand", "strategy": "canary",
                                       "steps": [25, 50, 75, 100]}, ctx(steward))
            _wait_version(app, res.version)
            served = _send(client, 20)
            assert "custom:cand" in served  # the canary takes real traffic
            assert call_tool("rollout_advance", {"use_case": UC}, ctx(steward)).action == "waiting"

            # 3. the candidate starts failing
            cand.stop()  # the candidate starts failing: same port, half of its answers are HTTP 500
            cand = Katan("cand", tmp_path, error_rate=0.5, port=cand.port)
            deadline = time.monotonic() + WINDOW_S
            while time.monotonic() < deadline:
                _send(client, 10)
                out = call_tool("rollout_advance", {"use_case": UC}, ctx(steward, "agent:run-1"))
                if out.action != "waiting":
                    break
            assert out.action == "rolled_back", out.message
            an = out.analysis
            assert an.outcome == "failed" and an.elapsed_s < WINDOW_S  # within one analysis window
            assert any(r.startswith("error rate") for r in an.reasons), an.reasons
            assert an.candidate.errors > 0 and an.candidate.requests >= 10

            with session_scope(steward.sessions) as s:
                snap = s.get(ModelSnapshot, res.snapshot_id)
                want = snap.allocations
            live = reg.routing_table(reg.deployment(UC))
            assert live == want == [{"model_id": "custom:stable", "weight": 100.0, "role": "primary"}]
            assert reg.get_model("custom:cand").status == "rejected"

            _wait_version(app, reg.deployment(UC).version)
            assert set(_send(client, 10)) == {"custom:stable"}
    finally:
        cand.stop()
        stable.stop()
