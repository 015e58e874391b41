"""Ctrl-C during `steward eval` (a real SIGINT to a real process): no verdict row, status restored."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from modelsteward.fakes.judge import FakeJudge
from modelsteward.storage.models import EvalHoldout, TestResult
from evals_helpers import PROMPTS, seed_logs

pytestmark = pytest.mark.slow


def test_sigint_mid_run_leaves_nothing_half_written(steward, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import shutil
    import socket

    exe = shutil.which("llm-katan") or str(Path(sys.executable).parent / "llm-katan")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    slow = subprocess.Popen(
        [exe, "--model", "slow", "--backend", "echo", "--host", "127.0.0.1", "--port", str(port), "--latency-ms",
         "4000", "--disable-dashboard", "--stats-file", str(tmp_path / "stats.json"), "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with FakeJudge(answers={"good": lambda q: dict(PROMPTS).get(q, "no")}) as fake:
            reg = steward.registry
            reg.register_model("custom", "good", base_url=fake.base_url)
            reg.register_model("custom", "slow", base_url=f"http://127.0.0.1:{port}/v1", status="candidate",
                               metadata={"api_key_env": "STEWARD_MODELKEY_KATAN"})
            reg.add_use_case("qa", model="custom:good")
            seed_logs(steward, "qa", "custom:good")
            env = {**os.environ, "STEWARD_HOME": str(steward.settings.workspace), "STEWARD_MODELKEY_KATAN": "k"}
            proc = subprocess.Popen(
                [sys.executable, "-m", "modelsteward", "eval", "--use-case", "qa", "--candidate", "custom:slow",
                 "--samples", "5", "--no-safety", "--json"],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                if reg.get_model("custom:slow").status == "evaluating":
                    break
                time.sleep(0.1)
            assert reg.get_model("custom:slow").status == "evaluating", proc.stderr.read() if proc.poll() else ""
            time.sleep(1.0)  # calls to the slow upstream are in flight now
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        assert proc.returncode != 0, (out, err)
        assert out.strip() == ""  # no verdict printed
    finally:
        slow.terminate()
        try:
            slow.wait(5)
        except subprocess.TimeoutExpired:
            slow.kill()
            slow.wait(5)
    with steward.sessions() as s:
        assert s.scalar(select(func.count()).select_from(TestResult)) == 0
        assert s.scalar(select(func.count()).select_from(EvalHoldout)) == 0
    assert reg.get_model("custom:slow").status == "candidate"
    assert not list((steward.settings.workspace / "evals").glob("qa/*"))
