"""Engine and session factories, and migrations (Alembic) for the registry database."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from modelsteward.errors import ConfigError

if TYPE_CHECKING:  # SQLAlchemy is imported where an engine is made: the read path may not need one
    from typing import TypeAlias

    from sqlalchemy import Engine as Engine  # re-exported: the types of the engine and sessions others hold
    from sqlalchemy.orm import Session as Session
    from sqlalchemy.orm import sessionmaker as sessionmaker

    # what the layers above storage/ hold and pass back in: the session factory, never a session
    Sessions: TypeAlias = sessionmaker[Session]

__all__ = ["make_engine", "make_sessionmaker", "session_scope", "upgrade", "current_revision", "head_revision", "ping",
           "ping_url", "libpq_conninfo", "advisory_lock"]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    from sqlalchemy import create_engine, event

    try:
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    except Exception as exc:  # noqa: BLE001 - translate at the boundary
        raise ConfigError(
            f"Cannot use database URL {url!r}: {exc}. Set STEWARD_DATABASE_URL to a sqlite:/// or postgresql+psycopg:// URL."
        ) from exc
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(engine, expire_on_commit=False)


@contextlib.contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _alembic_config(engine: Engine):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (idempotent).  A database already at the single head is
    left alone without importing Alembic (read commands open the workspace on every call)."""
    if revision == "head":
        heads = file_heads()
        if len(heads) == 1 and current_revision(engine) in heads:
            return
    from alembic import command

    command.upgrade(_alembic_config(engine), revision)


_REVISION = re.compile(r"^revision\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN = re.compile(r"^down_revision\s*(?::[^=]*)?=\s*(.+)$", re.M)


def file_heads() -> set[str]:
    """The head revision(s) named by the migration files (revisions no file names as its parent);
    an empty set when a file cannot be read this way (then Alembic decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for f in (MIGRATIONS_DIR / "versions").glob("*.py"):
        text = f.read_text(encoding="utf-8")
        rev, down = _REVISION.search(text), _DOWN.search(text)
        if rev is None or down is None:
            return set()
        revisions.add(rev.group(1))
        parents.update(re.findall(r"['\"]([^'\"]+)['\"]", down.group(1)))
    return revisions - parents


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    cfg = _alembic_config(None)  # type: ignore[arg-type]
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    from sqlalchemy import inspect

    if "alembic_version" not in inspect(engine).get_table_names():
        return None
    with engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    return row[0] if row else None


def ping(engine: Engine) -> str:
    """``SELECT 1`` on ``engine`` (its error, if any, goes up as it is); the backend's name (``sqlite``)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return engine.url.get_backend_name()


def ping_url(url: str) -> None:
    """``SELECT 1`` on a throwaway engine for the database at ``url`` (an MLflow store, say), disposed after."""
    from sqlalchemy import create_engine

    eng = create_engine(url, pool_pre_ping=True)
    try:
        ping(eng)
    finally:
        eng.dispose()


def libpq_conninfo(url: str) -> str:
    """A PostgreSQL URL (any SQLAlchemy driver) as the plain ``postgresql://`` string libpq takes, password kept."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.contextmanager
def advisory_lock(engine: Engine, name: str, *, deadline: float | None, busy: Callable[[], Exception]) -> Iterator[None]:
    """Hold PostgreSQL's session advisory lock ``name`` (keyed by schema too: deployments or test schemas
    sharing one database do not block each other) while the block runs; ``raise busy()`` when
    ``time.monotonic()`` passes ``deadline`` first (None: wait).  The lock dies with the connection."""
    import time

    from sqlalchemy import text

    with engine.connect() as conn:
        key = conn.execute(text("SELECT hashtext(:name || ':' || current_schema())"), {"name": name}).scalar()
        while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
            conn.rollback()
            if deadline is not None and time.monotonic() >= deadline:
                raise busy()
            time.sleep(0.2)
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()
