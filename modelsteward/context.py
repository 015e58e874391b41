"""The per-process application context (``Steward``: settings, database, registry, log store,
tracking) and the per-call one (``ToolContext``: who calls, on what workspace, at what time)."""

from __future__ import annotations

import os
import sys
import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from modelsteward.facts import Verdict
from modelsteward.settings import Settings, get_settings
from modelsteward.timeutil import utc_now_naive

if TYPE_CHECKING:
    from pydantic import BaseModel

    from modelsteward.storage.db import Engine, Session, sessionmaker
    from modelsteward.storage.logstore import LogStore
    from modelsteward.storage.read import RegistryReader
    from modelsteward.storage.registry import ModelRegistry

__all__ = ["Steward", "ToolContext", "GenerationCache", "open_steward", "effective_user"]


class GenerationCache(Protocol):
    """Where an evaluation keeps baseline generations by key (``evals.runner.CycleCache``: an agent
    cycle's, in memory).  Declared here, below evals/, so a ``ToolContext`` can carry one."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, value: dict[str, Any]) -> None: ...


def effective_user() -> str:
    """The effective OS user's name (``pwd.getpwuid(os.geteuid())``), never an environment variable:
    ``getpass.getuser()`` reads ``LOGNAME``/``USER`` first, which anyone can set to any name."""
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # a uid without a passwd entry (some containers): the number names it
        return f"uid{os.geteuid()}"


class Steward:
    """Everything a tool, a route or the agent needs, built once per process by ``open_steward``.

    The database engine (and with it SQLAlchemy, ~0.4 s of CPU at import) is made on first use of
    ``engine``, ``registry`` or ``sessions``, migrating the schema then when ``migrate``; the read
    commands answer through ``reader`` (``storage/read/``), which on a SQLite workspace at
    the current schema needs neither."""

    def __init__(self, settings: Settings, engine: Engine | None = None, registry: ModelRegistry | None = None,
                 *, migrate: bool = True) -> None:
        self.settings = settings
        self._engine = engine
        self._registry = registry
        self._migrate = migrate
        self._reader: RegistryReader | None = None
        self._logs: LogStore | None = None
        self._lock = threading.Lock()
        self._db_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Steward(workspace={str(self.settings.workspace)!r})"

    @property
    def engine(self) -> Engine:
        """The registry database's engine, made (and the schema migrated) on first use."""
        if self._engine is None:
            with self._db_lock:
                if self._engine is None:
                    from modelsteward.storage.db import make_engine, upgrade

                    engine = make_engine(self.settings.db_url)
                    if self._migrate:
                        upgrade(engine)
                    self._engine = engine
        return self._engine

    @engine.setter
    def engine(self, value: Engine) -> None:
        self._engine = value

    @property
    def engine_opened(self) -> bool:
        return self._engine is not None

    @property
    def registry(self) -> ModelRegistry:
        if self._registry is None:
            from modelsteward.storage.registry import ModelRegistry

            engine = self.engine
            with self._db_lock:
                if self._registry is None:
                    self._registry = ModelRegistry(engine)
        return self._registry

    @registry.setter
    def registry(self, value: ModelRegistry) -> None:
        self._registry = value

    @property
    def reader(self) -> RegistryReader:
        """Read-only views of the registry (``storage/read/``) for the read commands."""
        if self._reader is None:
            from modelsteward.storage.read import RegistryReader

            self._reader = RegistryReader(self.settings.db_url, lambda: self.engine, migrate=self._migrate)
        return self._reader

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
        if self._reader is not None:
            self._reader.close()
        if self._engine is not None:
            self._engine.dispose()


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
    # the role the front-end proved for ``actor`` (API token, STEWARD_TOKEN, the workspace's OS user =
    # admin); None: none proven (the agent, internal calls).  Rules on credentials read it.
    role: str | None = None
    approval_id: int | None = None  # set when executing an approved action
    agent_run_id: int | None = None
    thread_id: str | None = None
    progress: Callable[[str, float], None] | None = None  # (message, fraction 0..1)
    # where the front-end has a task registry (the server): run (label, work) in the background, return the task id
    spawn: Callable[[str, Callable[[], BaseModel]], str] | None = None
    # "now" for policies and rollout decisions (naive UTC); tests and simulations pass their own
    clock: Callable[[], dt.datetime] = utc_now_naive
    # actions whose human approval the policy engine consumed during this call (e.g. rollout_advance
    # then skips the check it makes before raising traffic on an analysis nobody judged)
    approved_actions: list[str] = field(default_factory=list)
    # the baseline generations of the agent cycle this call belongs to (its owner: the cycle's
    # ``AgentRuntime``); None outside a cycle (the evaluation then uses the workspace's disk cache)
    eval_cache: GenerationCache | None = None
    # the policy verdict the running tool's call passed (set by ``tools.base.call_tool`` for the
    # tool's body): the facts it was judged on (a rollout analysis, a benefit) are the ones to act on
    verdict: Verdict | None = None

    def report(self, message: str, fraction: float) -> None:
        if self.progress is not None:
            self.progress(message, fraction)


def open_steward(settings: Settings | None = None, *, migrate: bool = True, lazy: bool = False) -> Steward:
    """Open the workspace: create its folder, migrate the database (idempotent), build the registry.

    ``lazy``: make the engine (and migrate) only when something first needs it: the read commands,
    which answer through ``Steward.reader``, then never import SQLAlchemy on a current workspace."""
    settings = settings or get_settings()
    settings.logs_location  # a STEWARD_LOG_DIR we cannot use stops here, before anything is created
    _make_workspace(settings)
    steward = Steward(settings=settings, migrate=migrate)
    if not lazy:
        steward.engine  # noqa: B018 - made and migrated now
    return steward
