"""Read commands import only what they need (structure, not timing: bench/cli_latency.py times them).

Each command runs in a fresh interpreter through ``run_cli`` (the console script's entry) on a
small workspace; afterwards the modules it imported are listed.  The model stack (torch,
transformers, MLflow, sentence-transformers, LangGraph) belongs to the commands that train,
evaluate or run the agent, never to a command that prints rows.  The registry reads answer
through the read model (``storage/read/``) with the standard library's ``sqlite3`` on a
current SQLite workspace: neither SQLAlchemy (~0.4 s of CPU at import) nor pydantic-settings
(~0.15 s: asyncio, argparse, dotenv) is imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "mlflow", "sentence_transformers", "langgraph", "langchain_core", "peft",
         "alembic")
# the registry reads need neither numpy (ranking) nor DuckDB / pyarrow (the log store), nor the ORM
REGISTRY_ONLY = ("numpy", "duckdb", "pyarrow", "sqlalchemy", "pydantic_settings", "dotenv", "asyncio")

CHILD = """
import json, sys
from modelsteward.cli import app
from modelsteward.cli.common import run_cli
try:
    run_cli(app, sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print("\\n" + json.dumps({"code": code, "modules": sorted(m.split('.')[0] for m in sys.modules)}))
"""


def _env(ws: Path) -> dict[str, str]:
    env = {**os.environ, "STEWARD_HOME": str(ws), "PYTHONPATH": str(REPO)}
    for k in ("STEWARD_DATABASE_URL", "STEWARD_LOG_DIR"):
        env.pop(k, None)
    return env


def _imported(ws: Path, *args: str) -> set[str]:
    p = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=_env(ws), timeout=120)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["code"] == 0, p.stderr
    return set(out["modules"])


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("read") / "ws"
    for args in (["init"], ["models", "register", "local", "smollm2-135m-instruct"],
                 ["usecase", "add", "story", "--description", "d", "--model", "local:smollm2-135m-instruct"],
                 ["logs", "import", str(_rows(ws.parent))]):
        subprocess.run([sys.executable, "-m", "modelsteward", *args], check=True, capture_output=True, env=_env(ws),
                       timeout=120)
    return ws


def _rows(folder: Path) -> Path:
    """A few logged requests (imported: they land in a Parquet segment, as after a flush)."""
    path = folder / "rows.jsonl"
    path.write_text("".join(json.dumps({
        "ts": 1_790_000_000 + i, "request_id": f"r{i}", "use_case": "story", "model_id": "local:smollm2-135m-instruct",
        "role": "primary", "messages": [{"role": "user", "content": "hi"}], "response": "hello", "latency_ms": 50 + i,
        "input_tokens": 3, "output_tokens": 5, "cost_usd": 0, "status": "ok"}) + "\n" for i in range(5)))
    return path


@pytest.mark.parametrize("args", [("usecase", "list"), ("models", "list"), ("rollout", "status", "--use-case", "story"),
                                  ("models", "list", "--use-case", "story")])
def test_registry_reads_import_no_model_stack(ws: Path, args: tuple[str, ...]) -> None:
    mods = _imported(ws, *args)
    assert "sqlite3" in mods  # it did read the registry
    assert not mods & set(HEAVY + REGISTRY_ONLY), sorted(mods & set(HEAVY + REGISTRY_ONLY))


def test_logs_stats_imports_the_log_store_only(ws: Path) -> None:
    """DuckDB alone reads a local store's segments (footers included) when no write-ahead rows wait:
    no pyarrow (and with it numpy), no ORM."""
    mods = _imported(ws, "logs", "stats", "--since", "all")
    assert "duckdb" in mods
    assert not mods & set(HEAVY + REGISTRY_ONLY) - {"duckdb"}, sorted(mods & set(HEAVY + REGISTRY_ONLY) - {"duckdb"})
    mods = _imported(ws, "logs", "stats", "--since", "all", "--use-case", "story")  # the use case checked, no ORM
    assert not mods & {"sqlalchemy", "pyarrow"}, sorted(mods & {"sqlalchemy", "pyarrow"})


def test_orm_reads_import_no_model_stack(ws: Path) -> None:
    """``usecase show`` still reads through the ORM registry: no model stack.  It reads the log store
    (DuckDB alone, no pyarrow or numpy) for the requirements its traffic implies (issue 24 item 5)."""
    mods = _imported(ws, "usecase", "show", "story")
    assert "sqlalchemy" in mods
    assert not mods & set(HEAVY + ("numpy", "pyarrow")), sorted(mods & set(HEAVY + ("numpy", "pyarrow")))
