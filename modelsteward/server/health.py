"""``/healthz`` (the process answers), ``/readyz`` (its stores answer) and ``/metrics`` (Prometheus).

Decision: these three need no token, as probes and scrapers usually carry none; ``/metrics`` shows
counts and names of use cases and models, nothing from requests' contents.  ``/readyz`` only reads:
it writes no probe file, flushes nothing, creates no folder, and names no path or URI.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import urllib.parse
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from modelsteward.context import Steward
from modelsteward.server.deps import StewardDep
from modelsteward.storage.db import ping, ping_url

__all__ = ["router", "readiness"]

router = APIRouter(tags=["health"])
log = logging.getLogger("modelsteward.server")


class Health(BaseModel):
    status: str


class Check(BaseModel):
    ok: bool
    detail: str


class Ready(BaseModel):
    status: str
    checks: dict[str, Check]


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
def healthz() -> Health:
    return Health(status="ok")


class NotReady(Exception):
    """A check's own finding, safe to show (no path, host or URI in it)."""


def _check_db(steward: Steward) -> str:
    return ping(steward.engine)


def _check_logs(steward: Steward) -> str:
    """Read-only: the folder is there and writable, and DuckDB reads the segments (no flush)."""
    store = steward.logs  # the server's own store (opened with the app when the gateway runs)
    if store.remote:
        try:
            return store.check()
        except Exception as exc:  # noqa: BLE001 - the bucket's name only, never the endpoint or keys
            raise NotReady("the log bucket does not answer") from exc
    root = Path(store.root)
    if not root.is_dir():
        raise NotReady("the log folder does not exist")
    if not os.access(root, os.W_OK | os.X_OK):
        raise NotReady("the log folder is not writable")
    store.reader.query("SELECT count(*) AS n FROM logs WHERE false")
    return "segments readable"


def _check_mlflow(steward: Steward) -> str:
    """Probe the tracking store without creating anything; the URI is never echoed (it may hold a password)."""
    uri = steward.settings.tracking_uri
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "sqlite":
        path = Path(uri.split("///", 1)[-1])
        if not path.exists():
            return "sqlite store (created on first run)"
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            con.execute("SELECT 1").fetchone()
        finally:
            con.close()
        return "sqlite store answers"
    if parsed.scheme in ("http", "https"):
        import httpx

        r = httpx.get(uri.rstrip("/") + "/health", timeout=3.0)
        if r.status_code >= 400:
            raise NotReady(f"the tracking server's /health answered {r.status_code}")
        return "tracking server answers"
    if parsed.scheme in ("", "file"):
        path = Path(parsed.path if parsed.scheme else uri)
        return "file store" if path.is_dir() else "file store (created on first run)"
    if parsed.scheme.startswith("postgresql"):
        ping_url(uri)
        return "postgresql store answers"
    return f"{parsed.scheme} store (not probed)"


def readiness(steward: Steward) -> Ready:
    """Check each store read-only.  A failure's detail names the check and the error's type only (the
    full error, which may hold paths, hosts or credentials, goes to the server log)."""
    checks: dict[str, Check] = {}
    for name, fn in (("database", _check_db), ("log_store", _check_logs), ("mlflow", _check_mlflow)):
        try:
            checks[name] = Check(ok=True, detail=fn(steward))
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready", with its reason
            log.warning("readiness check %s failed: %s", name, exc)
            why = str(exc) if isinstance(exc, NotReady) else f"{type(exc).__name__}; see the server log"
            checks[name] = Check(ok=False, detail=why)
    ok = all(c.ok for c in checks.values())
    return Ready(status="ready" if ok else "not_ready", checks=checks)


@router.get("/readyz", response_model=Ready, summary="Readiness: database, log store and MLflow store answer",
            responses={503: {"model": Ready, "description": "A store did not answer."}})
def readyz(steward: StewardDep) -> Any:
    ready = readiness(steward)
    if ready.status != "ready":
        return JSONResponse(status_code=503, content=ready.model_dump())
    return ready


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format."}})
def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
