"""Issue 29 item 1: the README's "Connect your application" commands, run exactly as written.

The bash block under ``<!-- connect-app:commands -->`` is run line by line (``steward`` is this
checkout's CLI; the upstream's port 8000 and the server's port 8080 are replaced by free ports)
against the fake upstream run as its own process (``python -m modelsteward.fakes.upstream``), then
the Python client block under ``<!-- connect-app:client -->`` (official ``openai`` SDK) sends the first
request, which must be answered and logged.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
STEWARD = [sys.executable, "-m", "modelsteward"]


def _block(marker: str) -> str:
    text = README.read_text(encoding="utf-8")
    m = re.search(rf"<!-- {re.escape(marker)} -->\n```\w+\n(.*?)```", text, re.S)
    assert m, f"README has no code block after <!-- {marker} -->"
    return m.group(1)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[Any]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            assert proc.poll() is None, f"{proc.args} exited {proc.returncode}"
            assert time.monotonic() < deadline, f"{url} did not come up"
            time.sleep(0.2)


@pytest.mark.slow
def test_readme_connect_your_application_runs_as_written(settings: Any, tmp_path: Path) -> None:
    up_port, gw_port = _port(), _port()
    env = {**os.environ, "STEWARD_HOME": str(settings.home)}
    env.pop("STEWARD_ALLOWED_HOSTS", None)  # the README approves the host itself (`steward hosts allow`)
    lines = [ln.replace(":8000", f":{up_port}").replace(":8080", f":{gw_port}")
             for ln in _block("connect-app:commands").splitlines() if ln.strip()]
    upstream = subprocess.Popen([sys.executable, "-m", "modelsteward.fakes.upstream", "--port", str(up_port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = None
    try:
        _wait(f"http://127.0.0.1:{up_port}/v1/models", upstream)
        key = None
        for line in lines:
            argv = shlex.split(line, comments=True)
            if argv[0] == "export":
                name, value = argv[1].split("=", 1)
                env[name] = value
                continue
            assert argv[0] == "steward", line
            if argv[1] == "serve":
                server = subprocess.Popen([*STEWARD, *argv[1:], "--port", str(gw_port)] if "--port" not in argv
                                          else [*STEWARD, *argv[1:]], env=env, stdout=subprocess.DEVNULL,
                                          stderr=(tmp_path / "serve.err").open("wb"))
                continue
            r = subprocess.run([*STEWARD, *argv[1:]], env=env, capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, (line, r.stdout, r.stderr)
            if argv[1:3] == ["keys", "create"]:
                key = r.stdout.strip().splitlines()[-1]
        assert server is not None and key and key.startswith("sk-steward-")
        _wait(f"http://127.0.0.1:{gw_port}/healthz", server)
        client = _block("connect-app:client").replace(":8080", f":{gw_port}")
        r = subprocess.run([sys.executable, "-c", client], env={**env, "STEWARD_GATEWAY_KEY": key},
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and r.stdout.strip(), r.stderr
    finally:
        for proc in (server, upstream):
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)
    from modelsteward.context import open_steward

    st = open_steward(settings)
    try:
        rows = st.logs.query("SELECT use_case, model_id, status FROM logs")
    finally:
        st.close()
    assert [(r["use_case"], r["model_id"], r["status"]) for r in rows] == [("support-chat", "vllm:my-model", "ok")]
    assert "request_failed" not in (tmp_path / "serve.err").read_text()
