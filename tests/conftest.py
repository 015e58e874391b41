"""Shared fixtures: a fresh workspace per test, SQLite always, PostgreSQL when
STEWARD_TEST_POSTGRES_URL is set (`.ci/run` sets it; each test gets its own schema)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from modelsteward.settings import Settings, reset_settings_cache

PG_ENV = "STEWARD_TEST_POSTGRES_URL"
REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "db_url" in getattr(item, "fixturenames", ()) and "postgres" in item.nodeid:
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(autouse=True)
def _no_database_in_the_checkout(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test's workspace lives under its tmp folder: a ``steward.db`` that appears in the checkout (or the
    folder pytest runs in) during a test fails that test, naming it (one was committed by accident once)."""
    spots = {REPO / "steward.db", Path.cwd() / "steward.db"}
    before = {p for p in spots if p.exists()}
    yield
    made = sorted(str(p) for p in spots - before if p.exists())
    if made:
        for p in made:
            Path(p).unlink()
        pytest.fail(f"{request.node.nodeid} created {', '.join(made)}: give it a workspace under tmp_path "
                    "(STEWARD_HOME / Settings(home=...)), never the current folder")


@pytest.fixture
def fixtures_dir() -> Path:
    """Captured real data the tests use, copied into the repository (see tests/fixtures/README.md)."""
    return FIXTURES


@pytest.fixture(scope="session", autouse=True)
def _shared_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Converted local models are cached machine-wide (STEWARD_CACHE_DIR); keep the user's default."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    # Egress (providers/egress.py): the suite's fake upstreams listen on loopback ports chosen at run time;
    # the admin's setting lets loopback receive calls (tests/test_egress.py clears it to test the rule itself)
    os.environ.setdefault("STEWARD_ALLOWED_HOSTS", "127.0.0.1,localhost")


def _pg_schema_url(base: str) -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


def _backends() -> list:  # type: ignore[type-arg]
    params = [pytest.param("sqlite", id="sqlite")]
    params.append(
        pytest.param(
            "postgres",
            id="postgres",
            marks=pytest.mark.skipif(not os.environ.get(PG_ENV), reason=f"set {PG_ENV} to run the PostgreSQL backend"),
        )
    )
    return params


@pytest.fixture(params=_backends())
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'steward.db'}"
    else:
        yield from _pg_schema_url(os.environ[PG_ENV])


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not os.environ.get(PG_ENV):
        pytest.skip(f"set {PG_ENV} to run PostgreSQL tests")
    yield from _pg_schema_url(os.environ[PG_ENV])


def _make_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db: str | None) -> Settings:
    home = tmp_path / "ws"
    monkeypatch.setenv("STEWARD_HOME", str(home))
    monkeypatch.delenv("STEWARD_LOG_DIR", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("STEWARD_AGENT_LLM", raising=False)
    if db:
        monkeypatch.setenv("STEWARD_DATABASE_URL", db)
    else:
        monkeypatch.delenv("STEWARD_DATABASE_URL", raising=False)
    reset_settings_cache()
    return Settings(home=home, database_url=db, log_flush_seconds=0.2)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    yield _make_settings(tmp_path, monkeypatch, None)
    reset_settings_cache()


@pytest.fixture
def steward(settings: Settings):  # type: ignore[no-untyped-def]
    from modelsteward.context import open_steward

    st = open_steward(settings)
    yield st
    st.close()


@pytest.fixture
def any_steward(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A Steward on each backend (SQLite, and PostgreSQL when configured)."""
    from modelsteward.context import open_steward

    st = open_steward(_make_settings(tmp_path, monkeypatch, db_url))
    yield st
    st.close()
    reset_settings_cache()


@pytest.fixture
def pg_steward(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from modelsteward.context import open_steward

    st = open_steward(_make_settings(tmp_path, monkeypatch, pg_url))
    yield st
    st.close()
    reset_settings_cache()


@pytest.fixture
def hosted_upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The project's fake OpenAI-compatible upstream (``fakes.upstream.InstantUpstream``) standing in for
    the hosted providers' public endpoints (``STEWARD_<PROVIDER>_BASE_URL``, seen by CLI subprocesses too):
    their models answer the check a model passes before it takes traffic (``tools/checks.py``) as at a
    working endpoint.  For tests whose ``openai:`` / ``openrouter:`` models had no endpoint at all."""
    from modelsteward.fakes.upstream import InstantUpstream
    from modelsteward.providers import clear_provider_cache

    with InstantUpstream() as up:
        for provider in ("openai", "openrouter", "anthropic", "google", "huggingface"):
            monkeypatch.setenv(f"STEWARD_{provider.upper()}_BASE_URL", up.url)
        clear_provider_cache()
        yield up
    clear_provider_cache()
