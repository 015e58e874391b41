"""Run an ASGI app under uvicorn (uvloop + httptools) with a graceful SIGTERM.

On SIGTERM or SIGINT uvicorn stops accepting connections, lets in-flight requests (streams
included) finish for up to ``graceful_timeout_s``, then runs the lifespan shutdown, where the
gateway drains its shadow queue and flushes (or closes) the log store.  Rows are in the log
store's write-ahead file before each response is sent, so even SIGKILL loses no acknowledged row.

``python -m modelsteward.gateway [--host H] [--port P]`` serves the gateway alone on the
workspace named by STEWARD_HOME (tests and the benchmark use it; ``steward serve`` mounts the
same routes into the full server).
"""

from __future__ import annotations

import argparse
import socket
import sys
from typing import Any

__all__ = ["serve", "main", "listen"]


def listen(host: str, port: int) -> socket.socket:
    """Bind and listen on ``host:port`` before anything is announced; a port in use (or a host
    that cannot be bound) raises ``Conflict`` naming it, so the caller prints one line and exits 1."""
    import os

    from modelsteward.errors import Conflict

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=4096)
    except OSError as exc:
        raise Conflict(f"Cannot listen on {host}:{port}: {os.strerror(exc.errno) if exc.errno else exc}; choose another --port "
                       "(or stop the process that holds it).", host=host, port=port) from exc


def serve(app: Any, host: str = "127.0.0.1", port: int = 8000, *, graceful_timeout_s: float = 30.0,
          log_level: str = "warning", access_log: bool = False, gateway_state: Any = None,
          sock: socket.socket | None = None) -> None:
    """Serve ``app`` until SIGTERM/SIGINT (uvicorn then re-raises the signal after the lifespan shutdown).

    With ``gateway_state`` (the ``GatewayState`` whose routes the app mounts), ``POST
    /v1/chat/completions`` is answered before the app's middleware and router (``GatewayFastPath``):
    several times the throughput of going through a FastAPI middleware stack.  ``sock``: a socket
    already bound by ``listen`` (uvicorn then serves on it instead of binding ``host:port`` itself).
    """
    import uvicorn

    if gateway_state is not None:
        from modelsteward.gateway.app import GatewayFastPath

        app = GatewayFastPath(app, gateway_state)

    config = uvicorn.Config(
        app, host=host, port=port, loop="uvloop", http="httptools", lifespan="on", log_level=log_level,
        access_log=access_log, timeout_graceful_shutdown=int(graceful_timeout_s), backlog=4096,
        timeout_keep_alive=30, server_header=False, date_header=False,
    )
    uvicorn.Server(config).run(sockets=[sock] if sock is not None else None)


def app_factory() -> Any:
    """The standalone gateway on the workspace named by the environment (one per worker process)."""
    from modelsteward.context import open_steward
    from modelsteward.gateway.app import create_gateway_app
    from modelsteward.gateway.core import GatewayOptions

    return create_gateway_app(open_steward(), options=GatewayOptions.from_env(freeze_gc=True), own_steward=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelsteward.gateway", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes sharing the port (each its own routing cache, budget total and "
                             "log writer, like separate replicas)")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)

    from modelsteward.settings import get_settings

    print(f"gateway: serving http://{args.host}:{args.port}/v1 (workspace {get_settings().workspace}, "
          f"{args.workers} worker(s))", file=sys.stderr, flush=True)
    if args.workers > 1:
        import uvicorn

        uvicorn.run("modelsteward.gateway.serve:app_factory", factory=True, workers=args.workers, host=args.host,
                    port=args.port, loop="uvloop", http="httptools", lifespan="on", log_level=args.log_level,
                    access_log=False, timeout_graceful_shutdown=30, backlog=4096, server_header=False,
                    date_header=False)
        return 0
    serve(app_factory(), args.host, args.port, log_level=args.log_level)
    return 0
