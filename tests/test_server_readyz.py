"""``/readyz`` needs no token, so it must not change anything (no probe files, no log flush, no
folders made) nor tell an anonymous caller where the stores are (the MLflow URI may hold a password)."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modelsteward.context import open_steward
from modelsteward.server import create_app
from modelsteward.settings import Settings, reset_settings_cache


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        ok = self.path == "/health"
        self.send_response(200 if ok else 404)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def tracking_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("mlflow", ["http", "sqlite-not-yet"])
def test_readyz_writes_nothing_and_echoes_no_uri(settings: Settings, tracking_server: int, monkeypatch, mlflow) -> None:
    if mlflow == "http":
        uri = f"http://steward:s3cret-pw@127.0.0.1:{tracking_server}"
    else:
        uri = f"sqlite:///{settings.home / 'later' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    reset_settings_cache()
    own = Settings(home=settings.home, log_flush_seconds=3600, log_batch_rows=10_000)
    steward = open_steward(own)
    try:
        steward.logs.append({"request_id": "r1", "use_case": "story", "model_id": "custom:x"})
        assert steward.logs.pending == 1
        before = _tree(settings.home)
        with TestClient(create_app(steward, gateway=False)) as client:
            r = client.get("/readyz")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "ready"
        assert steward.logs.pending == 1, "readyz flushed the log store"
        assert _tree(settings.home) == before, "readyz wrote into the workspace"
        for secret in ("s3cret", str(tracking_server), "steward:", str(settings.home)):
            assert secret not in r.text, (secret, r.text)
    finally:
        steward.close()
