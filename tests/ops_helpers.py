"""Helpers for the control-loop tests: a local webhook receiver (what Apprise's ``json://`` posts
to) that can answer 500 to its first requests, and ``steward serve`` replicas in subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

STEWARD = [sys.executable, "-c", "from modelsteward.cli import main; main()"]


class Webhook:
    """Records every JSON body posted to it; answers 500 to the first ``fail_first`` posts."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.posts: list[dict[str, Any]] = []  # every post, failed ones included
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with hook.lock:
                    n = len(hook.posts)
                    hook.posts.append({"body": json.loads(body or b"{}"), "failed": n < hook.fail_first,
                                       "at": time.monotonic()})
                self.send_response(500 if n < hook.fail_first else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.url = f"json://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def delivered(self) -> list[dict[str, Any]]:
        with self.lock:
            return [p["body"] for p in self.posts if not p["failed"]]

    def titles(self) -> list[str]:
        return [str(b.get("title", "")) for b in self.delivered()]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Replica:
    """One ``steward serve`` process; its output goes to a file under ``tmp``."""

    def __init__(self, env: dict[str, str], port: int, tmp: Path, name: str, *extra: str) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = tmp / f"serve-{name}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([*STEWARD, "serve", "--host", "127.0.0.1", "--port", str(port), *extra],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_up(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None, self.output()
            assert time.monotonic() < deadline, "steward serve did not come up:\n" + self.output()
            time.sleep(0.2)

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def wait_for(pred: Any, timeout: float, what: str, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out after {timeout:g}s waiting for {what}"
        time.sleep(every)
