"""The read model's fast backend: views of the registry for the read commands (``usecase list``,
``models list``, ``rollout status``), without the ORM.

Plain rows in the shapes of ``shapes.py`` (the tools validate them into their output models).  On a SQLite workspace whose schema is at the head revision the rows are read with the
standard library's ``sqlite3``: SQLAlchemy alone costs ~0.4 s of CPU at import, more than a read
command may spend on top of ``steward --help`` (bench/cli_latency.py).  Any other database, or a
workspace whose schema is not current (it is migrated first, as ``open_steward`` does), is read
through the SQLAlchemy engine with the same SQL (``text()``).  The column conversions are the
ORM's (``storage/models.py``): JSON text, booleans, ``Numeric`` prices as plain decimals, datetimes.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from modelsteward.errors import NotFound, close_matches
from modelsteward.storage.read.plain import plain_decimal, rollout_dict
from modelsteward.storage.states import ACTIVE_ROLLOUT_STATES

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["RegistryReader"]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def _datetime(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


class _Row:
    """A rollout row with the ORM's attribute names and types (for ``rollout_dict``)."""

    state: str

    def __init__(self, row: Mapping[str, Any]) -> None:
        for k, v in row.items():
            setattr(self, k, v)
        self.steps = _json(row["steps"])
        self.analyses = _json(row["analyses"])
        self.step_started_at = _datetime(row["step_started_at"])
        self.created_at = _datetime(row["created_at"])


class RegistryReader:
    """Reads the registry database at ``url``; ``engine()`` gives the SQLAlchemy engine (made and
    migrated on demand) for what ``sqlite3`` cannot read here."""

    def __init__(self, url: str, engine: Callable[[], Engine], *, migrate: bool = True) -> None:
        self._url = url
        self._engine = engine
        self._migrate = migrate
        self._conn: Any = None  # sqlite3.Connection, or False once the engine is the way
        self._lock = threading.Lock()  # one connection, shared by the threads of a server

    def close(self) -> None:
        with self._lock:
            if self._conn:
                self._conn.close()
            self._conn = None

    # ------------------------------------------------------------------ plumbing
    def _sqlite_path(self) -> str | None:
        prefix = "sqlite:///"
        if not self._url.startswith(prefix) or "?" in self._url:
            return None
        path = self._url[len(prefix):]
        return path if path and path != ":memory:" else None

    def _connect(self) -> Any:
        if self._conn is None:
            self._conn = self._open_sqlite() or False
        return self._conn

    def _open_sqlite(self) -> Any:
        from pathlib import Path

        path = self._sqlite_path()
        if path is None:
            return None
        if not Path(path).is_file():
            self._engine()  # a new workspace: the engine creates and migrates it
        import sqlite3

        conn = sqlite3.connect(path, timeout=30, check_same_thread=False)  # used under self._lock
        conn.row_factory = sqlite3.Row
        if self._migrate:
            from modelsteward.storage.db import file_heads

            try:
                rev = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            except sqlite3.OperationalError:
                rev = None
            heads = file_heads()
            if len(heads) != 1 or rev is None or rev[0] not in heads:
                self._engine()  # an older schema: migrate it first, as open_steward does
        return conn

    def _rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        with self._lock:
            conn = self._connect()
            if conn:
                return [dict(r) for r in conn.execute(sql, dict(params or {})).fetchall()]
        from sqlalchemy import text

        with self._engine().connect() as c:
            return [dict(r) for r in c.execute(text(sql), dict(params or {})).mappings().all()]

    # ------------------------------------------------------------------ use cases
    def use_case_id(self, name: str) -> int:
        """The id of the use case called ``name`` (``NotFound`` with suggestions, as the registry says it)."""
        rows = self._rows("SELECT id FROM use_cases WHERE name = :name", {"name": name})
        if not rows:
            names = [r["name"] for r in self._rows("SELECT name FROM use_cases")]
            raise NotFound(f"Unknown use case {name!r}." + close_matches(name, names), kind="use_case", name=name)
        return int(rows[0]["id"])

    def routing(self, use_case_id: int | None = None) -> dict[int, tuple[int, list[dict[str, Any]]]]:
        """``{use case id: (deployment version, routing table)}``; the table as ``ModelRegistry.routing_table``."""
        where, params = ("WHERE d.use_case_id = :uc", {"uc": use_case_id}) if use_case_id is not None else ("", {})
        out: dict[int, tuple[int, list[dict[str, Any]]]] = {
            int(r["use_case_id"]): (int(r["version"]), [])
            for r in self._rows(f"SELECT d.use_case_id, d.version FROM deployments d {where}", params)
        }
        for r in self._rows("SELECT d.use_case_id, a.model_id, a.weight, a.role FROM allocations a "
                            f"JOIN deployments d ON d.id = a.deployment_id {where}", params):
            out[int(r["use_case_id"])][1].append(
                {"model_id": r["model_id"], "weight": float(r["weight"]), "role": r["role"]})
        for _, table in out.values():
            table.sort(key=lambda a: (a["role"], a["model_id"]))
        return out

    def use_cases(self) -> list[dict[str, Any]]:
        """Every use case (by name) in the shape of ``tools.registry.UseCaseInfo``."""
        routing = self.routing()
        out = []
        for r in self._rows("SELECT id, name, description, requirements, weights, monthly_budget_usd, quality_floor, "
                            "fallback, sticky, golden_set_path, initial_data_path FROM use_cases ORDER BY name"):
            version, table = routing.get(int(r["id"]), (0, []))
            out.append({
                "name": r["name"], "description": r["description"], "requirements": dict(_json(r["requirements"]) or {}),
                "weights": dict(_json(r["weights"]) or {}), "monthly_budget_usd": plain_decimal(r["monthly_budget_usd"]),
                "quality_floor": float(r["quality_floor"]), "fallback": list(_json(r["fallback"]) or []),
                "sticky": bool(r["sticky"]), "golden_set_path": r["golden_set_path"],
                "initial_data_path": r["initial_data_path"], "deployment_version": version, "allocations": table,
            })
        return out

    # ------------------------------------------------------------------ models
    def models(self, *, use_case: str | None = None, provider: str | None = None) -> list[dict[str, Any]]:
        """Registered models (by id) in the shape of ``tools.registry.ModelInfo``: those of ``use_case``
        (its own, live there or rated there) and of ``provider`` when given."""
        where: list[str] = []
        params: dict[str, Any] = {}
        if use_case:
            params["uc"] = self.use_case_id(use_case)
            where.append("(m.use_case_id = :uc OR m.id IN (SELECT a.model_id FROM allocations a JOIN deployments d "
                         "ON d.id = a.deployment_id WHERE d.use_case_id = :uc) OR m.id IN (SELECT s.model_id FROM "
                         "model_use_case_status s WHERE s.use_case_id = :uc))")
        if provider:
            params["provider"] = provider
            where.append("m.provider = :provider")
        sql = ("SELECT m.id, m.provider, m.provider_model_id, m.kind, m.status, m.price_in_per_m, m.price_out_per_m, "
               "m.context_length, m.capabilities, m.base_url, m.parent_model_id, m.adapter_path, m.mlflow_model_uri, "
               "m.display_name, m.metadata FROM models m" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY m.id")
        per = self.use_case_statuses()
        return [{
            "id": r["id"], "provider": r["provider"], "provider_model_id": r["provider_model_id"], "kind": r["kind"],
            "status": r["status"], "price_in_per_m": plain_decimal(r["price_in_per_m"]),
            "price_out_per_m": plain_decimal(r["price_out_per_m"]), "context_length": r["context_length"],
            "capabilities": list(_json(r["capabilities"]) or []), "base_url": r["base_url"],
            "parent_model_id": r["parent_model_id"], "adapter_path": r["adapter_path"],
            "mlflow_model_uri": r["mlflow_model_uri"], "display_name": r["display_name"] or "",
            "metadata": dict(_json(r["metadata"]) or {}), "use_case_statuses": dict(per.get(r["id"], {})),
        } for r in self._rows(sql, params)]

    def use_case_statuses(self) -> dict[str, dict[str, str]]:
        """``{model id: {use case: status}}`` from the per-use-case rows (``ModelRegistry.use_case_statuses``)."""
        out: dict[str, dict[str, str]] = {}
        for r in self._rows("SELECT s.model_id, u.name, s.status FROM model_use_case_status s JOIN use_cases u "
                            "ON u.id = s.use_case_id ORDER BY u.name"):
            out.setdefault(r["model_id"], {})[r["name"]] = r["status"]
        return out

    # ------------------------------------------------------------------ rollouts
    def rollout_status(self, use_case: str) -> dict[str, Any]:
        """The use case's active (else latest) rollout as ``rollout_dict``, its routing table and version
        (``RolloutManager.status``)."""
        uc = self.use_case_id(use_case)
        version, table = self.routing(uc).get(uc, (0, []))
        cols = ("SELECT id, use_case_id, candidate_model_id, stable_model_id, strategy, steps, step_index, state, "
                "step_started_at, snapshot_id, analyses, actor, reason, created_at FROM rollouts WHERE use_case_id = :uc")
        active = ", ".join(f"'{s}'" for s in ACTIVE_ROLLOUT_STATES)
        rows = (self._rows(f"{cols} AND state IN ({active}) ORDER BY id DESC LIMIT 1", {"uc": uc})
                or self._rows(f"{cols} ORDER BY id DESC LIMIT 1", {"uc": uc}))
        ro = _Row(rows[0]) if rows else None
        return {"use_case": use_case, "version": version, "routing": table,
                "rollout": rollout_dict(ro) if ro else None, "active": bool(ro and ro.state in ACTIVE_ROLLOUT_STATES)}
