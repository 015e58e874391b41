"""The per-process application context (``Steward``: settings, database, registry, log store,
tracking) and the per-call one (``ToolContext``: who calls, on what workspace, at what time)."""

from __future__ import annotations

import os
import sys
import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from modelsteward.settings import Settings, get_settings
from modelsteward.storage.db import make_engine, make_sessionmaker, upgrade
from modelsteward.storage.models import utcnow
from modelsteward.storage.registry import ModelRegistry

if TYPE_CHECKING:
    from pydantic import BaseModel

    from modelsteward.storage.logstore import LogStore

__all__ = ["Steward", "ToolContext", "open_steward"]


@dataclass
class Steward:
    """Everything a tool, a route or the agent needs, built once per process by ``open_steward``."""

    settings: Settings
    engine: Engine
    registry: ModelRegistry
    _logs: LogStore | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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
@dataclass
class ToolContext:
    """Who is calling a tool, on what workspace, at what time.  ``actor`` is e.g. ``cli:alice``,
    ``agent:run-3``.  It lives here, below tools/ and policies/, so the policy engine can read it
    without importing the tools layer."""

    steward: Steward
    actor: str = "cli:operator"
    approval_id: int | None = None  # set when executing an approved action
    agent_run_id: int | None = None
    thread_id: str | None = None
    progress: Callable[[str, float], None] | None = None  # (message, fraction 0..1)
    # where the front-end has a task registry (the server): run (label, work) in the background, return the task id
    spawn: Callable[[str, Callable[[], BaseModel]], str] | None = None
    # "now" for policies and rollout decisions (naive UTC); tests and simulations pass their own
    clock: Callable[[], dt.datetime] = utcnow
    # actions whose human approval the policy engine consumed during this call (e.g. rollout_advance
    # then skips its second check right before it raises traffic)
    approved_actions: list[str] = field(default_factory=list)

    def report(self, message: str, fraction: float) -> None:
        if self.progress is not None:
            self.progress(message, fraction)


def open_steward(settings: Settings | None = None, *, migrate: bool = True) -> Steward:
    """Open the workspace: create its folder, migrate the database (idempotent), build the registry."""
    settings = settings or get_settings()
    settings.logs_location  # a STEWARD_LOG_DIR we cannot use stops here, before anything is created
    _make_workspace(settings)
    engine = make_engine(settings.db_url)
    if migrate:
        upgrade(engine)
    return Steward(settings=settings, engine=engine, registry=ModelRegistry(engine))
