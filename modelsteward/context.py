"""The per-process application context: settings, database, registry, log store, tracking."""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from modelsteward.settings import Settings, get_settings
from modelsteward.storage.db import make_engine, make_sessionmaker, upgrade
from modelsteward.storage.registry import ModelRegistry

if TYPE_CHECKING:
    from modelsteward.storage.logstore import LogStore

__all__ = ["Steward", "open_steward"]


@dataclass
class Steward:
    """Everything a tool, a route or the agent needs, built once per process by ``open_steward``."""

    settings: Settings
    engine: Engine
    registry: ModelRegistry
    _logs: LogStore | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    extras: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.registry.sessions

    @property
    def logs(self) -> LogStore:
        """The request-log store, opened (and its write-ahead file replayed) on first use."""
        with self._lock:
            if self._logs is None:
                from modelsteward.storage.logstore import LogStore

                s = self.settings
                loc = s.logs_location
                self._logs = LogStore(loc.url if loc.remote else loc.path, wal_dir=s.wal_path,
                                      batch_rows=s.log_batch_rows, flush_seconds=s.log_flush_seconds)
            return self._logs

    def tracking_uri(self) -> str:
        return self.settings.tracking_uri

    def close(self) -> None:
        with self._lock:
            if self._logs is not None:
                self._logs.close()
                self._logs = None
        self.engine.dispose()


def _make_workspace(settings: Settings) -> None:
    """Create the workspace folder; when it is the default ``./.steward`` (STEWARD_HOME unset),
    say so once on stderr, so running outside a workspace does not silently start a new one."""
    ws = settings.workspace
    if ws.is_dir():
        return
    ws.mkdir(parents=True, exist_ok=True)
    if "home" not in settings.model_fields_set and not os.environ.get("STEWARD_HOME"):
        print(f"steward: created a new workspace {ws} (STEWARD_HOME is unset, so ./.steward is used; set "
              "STEWARD_HOME to work in another one).", file=sys.stderr, flush=True)


def open_steward(settings: Settings | None = None, *, migrate: bool = True) -> Steward:
    """Open the workspace: create its folder, migrate the database (idempotent), build the registry."""
    settings = settings or get_settings()
    settings.logs_location  # a STEWARD_LOG_DIR we cannot use stops here, before anything is created
    _make_workspace(settings)
    engine = make_engine(settings.db_url)
    if migrate:
        upgrade(engine)
    return Steward(settings=settings, engine=engine, registry=ModelRegistry(engine))
