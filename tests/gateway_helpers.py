"""Helpers for the gateway tests: upstream servers (llm-katan, the instant fake), gateways in threads
or subprocesses, and registry set-up."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from modelsteward.context import Steward
from modelsteward.gateway import GatewayOptions, create_gateway_app

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
KATAN_AUTH = {"Authorization": "Bearer katan-test"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except Exception as exc:  # noqa: BLE001
            last = exc
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not come up in {timeout}s: {last}")


class Katan:
    """An llm-katan echo server in a subprocess (``--backend echo`` with optional fault flags)."""

    def __init__(self, name: str = "echo", *flags: str, tmp: Path) -> None:
        self.port = free_port()
        self.name = name
        self.url = f"http://127.0.0.1:{self.port}/v1"
        cmd = [str(BIN / "llm-katan"), "--model", name, "--backend", "echo", "--host", "127.0.0.1",
               "--port", str(self.port), "--disable-dashboard", "--log-level", "warning",
               "--stats-file", str(tmp / f"katan-{self.port}.json"), *flags]
        self.log = open(tmp / f"katan-{self.port}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_http(f"http://127.0.0.1:{self.port}/health", timeout=90)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def register_upstream(steward: Steward, name: str, url: str, *, price_in: Any = None, price_out: Any = None,
                      timeout_s: float | None = None) -> str:
    """Register ``custom:<name>`` at ``url`` (llm-katan wants an Authorization header)."""
    meta: dict[str, Any] = {"headers": dict(KATAN_AUTH)}
    if timeout_s is not None:
        meta["timeout_s"] = timeout_s
    m = steward.registry.register_model("custom", name, base_url=url, price_in_per_m=price_in,
                                        price_out_per_m=price_out, metadata=meta)
    return m.id


def set_routing(steward: Steward, use_case: str, allocations: list[dict[str, Any]], **config: Any) -> None:
    from modelsteward.storage.db import session_scope
    from modelsteward.storage.models import UseCase
    from sqlalchemy import select

    with session_scope(steward.sessions) as s:
        uc = s.scalar(select(UseCase).where(UseCase.name == use_case))
        steward.registry.write_routing(s, uc, allocations, action="test", actor="test", reason="test",
                                       config={**steward.registry.config_of(uc), **config} if config else None)


def fast_options(**overrides: Any) -> GatewayOptions:
    return GatewayOptions(**{"refresh_s": 0.1, "backoff_s": 0.001, "expose_route_headers": True, **overrides})


class GatewayThread:
    """``create_gateway_app(steward)`` under uvicorn on a free port, in a background thread."""

    def __init__(self, steward: Steward, options: GatewayOptions | None = None) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.app = create_gateway_app(steward, options=options or fast_options())
        self.state = self.app.state.gateway
        cfg = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, loop="uvloop", http="httptools",
                             log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, name="gateway-test", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("gateway did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def __enter__(self) -> GatewayThread:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class GatewayProcess:
    """``python -m modelsteward.gateway`` in a subprocess on the workspace of ``env``."""

    def __init__(self, env: dict[str, str], tmp: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = tmp / f"gateway-{self.port}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "modelsteward.gateway", "--port", str(self.port)],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=str(REPO),
        )
        try:
            wait_http(f"http://127.0.0.1:{self.port}/v1/models", timeout=90)
        except BaseException:
            self.kill()
            raise

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 60) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.log.close()

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def asgi_client(app: Any, client: tuple[str, int] = ("127.0.0.1", 5555)) -> Iterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=client)
    yield httpx.AsyncClient(transport=transport, base_url="http://gateway")


def chat_body(use_case: str = "chat", text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": use_case, "messages": [{"role": "user", "content": text}], **extra}


def env_for(settings: Any) -> dict[str, str]:
    env = dict(os.environ)
    env["STEWARD_HOME"] = str(settings.home)
    env.pop("STEWARD_DATABASE_URL", None)
    if settings.database_url:
        env["STEWARD_DATABASE_URL"] = settings.database_url
    env["STEWARD_GATEWAY_REFRESH_S"] = "0.1"
    env["STEWARD_GATEWAY_BACKOFF_S"] = "0.001"
    env["STEWARD_LOG_FLUSH_SECONDS"] = "0.2"
    env["STEWARD_EXPOSE_ROUTE_HEADERS"] = "1"  # the tests look at which model answered
    return env
