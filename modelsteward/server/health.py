"""``/healthz`` (the process answers), ``/readyz`` (its stores answer) and ``/metrics`` (Prometheus).

Decision: these three need no token, as probes and scrapers usually carry none; ``/metrics`` shows
counts and names of use cases and models, nothing from requests' contents.
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from sqlalchemy import text

from modelsteward.context import Steward
from modelsteward.server.deps import StewardDep

__all__ = ["router", "readiness"]

router = APIRouter(tags=["health"])


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


def _check_db(steward: Steward) -> str:
    with steward.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return steward.engine.url.get_backend_name()


def _check_logs(steward: Steward) -> str:
    root = Path(steward.settings.logs_path)
    root.mkdir(parents=True, exist_ok=True)
    probe = root / ".ready-probe"
    probe.write_text("ok")
    probe.unlink()
    steward.logs.query("SELECT count(*) AS n FROM logs WHERE false")
    return str(root)


def _check_mlflow(steward: Steward) -> str:
    uri = steward.settings.tracking_uri
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "sqlite":
        path = Path(uri.split("///", 1)[-1])
        if path.exists():
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
            try:
                con.execute("SELECT 1").fetchone()
            finally:
                con.close()
            return f"sqlite store {path}"
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite store {path} (created on first run)"
    if parsed.scheme in ("http", "https"):
        import httpx

        r = httpx.get(uri.rstrip("/") + "/health", timeout=3.0)
        if r.status_code >= 400:
            raise RuntimeError(f"{uri}/health answered {r.status_code}")
        return f"tracking server {uri}"
    if parsed.scheme in ("", "file"):
        path = Path(parsed.path if parsed.scheme else uri)
        path.mkdir(parents=True, exist_ok=True)
        return f"file store {path}"
    if parsed.scheme.startswith("postgresql"):
        from sqlalchemy import create_engine

        eng = create_engine(uri, pool_pre_ping=True)
        try:
            with eng.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            eng.dispose()
        return "postgresql store"
    return f"{parsed.scheme} store (not probed)"


def readiness(steward: Steward) -> Ready:
    checks: dict[str, Check] = {}
    for name, fn in (("database", _check_db), ("log_store", _check_logs), ("mlflow", _check_mlflow)):
        try:
            checks[name] = Check(ok=True, detail=fn(steward))
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready", with its reason
            checks[name] = Check(ok=False, detail=f"{type(exc).__name__}: {str(exc)[:300]}")
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
