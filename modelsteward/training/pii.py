"""The dataset's side of ``modelsteward.privacy``: the same redaction in Python and inside DuckDB.

The detectors (``phonenumbers``, ``python-stdnum``, ``detect-secrets`` ...) run in Python, so the
dataset pipeline registers ``redact`` as a DuckDB scalar function (``install``) and calls it only
on values that match ``PREFILTER`` in SQL (RE2): most rows hold nothing and never leave DuckDB.
A bulk caller first collects the distinct values that match and redacts them once each with
``redact_all`` (across processes when there are many: the detectors are pure Python), then hands
the results to ``install(con, known=...)`` so the SQL pass only looks them up.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from modelsteward.privacy import PREFILTER, kinds_in, redact, redact_obj

__all__ = ["redact", "redact_json", "pii_kinds", "install", "install_json", "redact_all", "prefilter_sql",
           "UDF_NAME", "JSON_UDF_NAME", "PARALLEL_MIN"]

UDF_NAME = "steward_redact"
JSON_UDF_NAME = "steward_redact_json"


def redact_json(text: str) -> str:
    """Redact JSON text (tool arguments, tool definitions) so that it stays the same JSON shape.

    The text is redacted as text first (keys give context: ``"password": "..."``); when that result
    no longer parses, every string of the parsed value is redacted instead.  Text that was not
    JSON to begin with is redacted as text.
    """
    if not isinstance(text, str):
        return text
    red = redact(text)
    if red == text:
        return text
    try:
        orjson.loads(red)
        return red
    except orjson.JSONDecodeError:
        pass
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return red
    return orjson.dumps(redact_obj(value)).decode()


def pii_kinds(text: str) -> list[str]:
    """The kinds found in ``text`` (``EMAIL``, ``PHONE`` ...)."""
    return kinds_in(text)


# Below this many distinct values the work stays in this process: starting a worker (a fresh
# interpreter importing the detectors) costs more than it saves.
PARALLEL_MIN = 2_000
_CHUNK = 256


def _workers() -> int:
    """Processes to redact with: the CPUs this process may run on (1 on a one-core machine)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(n, os.cpu_count() or 1))


def _redact_batch(texts: list[str]) -> list[str]:
    return [redact(t) for t in texts]


def _redact_json_batch(texts: list[str]) -> list[str]:
    return [redact_json(t) for t in texts]


def redact_all(values: Iterable[str], *, as_json: bool = False, workers: int | None = None) -> dict[str, str]:
    """``{value: redacted}`` for the distinct strings in ``values`` (``redact_json`` with ``as_json``).

    The same function as the one-value path, so results are identical; with at least
    ``PARALLEL_MIN`` values and more than one CPU the batches run in a pool of at most
    ``os.cpu_count()`` processes.  On Linux they are forked: the workers run only the detectors
    (never DuckDB, whose idle threads the parent may hold), start in milliseconds, and a caller's
    script without a ``__main__`` guard is not re-run in each of them, as it is when spawning.
    """
    todo = sorted({v for v in values if isinstance(v, str)})
    batch = _redact_json_batch if as_json else _redact_batch
    n = min(workers or _workers(), max(1, len(todo) // _CHUNK))
    if n <= 1 or len(todo) < PARALLEL_MIN:
        return dict(zip(todo, batch(todo), strict=True))
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    chunks = [todo[i:i + _CHUNK] for i in range(0, len(todo), _CHUNK)]
    method = "fork" if sys.platform == "linux" else "spawn"
    with ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context(method)) as pool:
        done = [r for part in pool.map(batch, chunks) for r in part]
    return dict(zip(todo, done, strict=True))


def prefilter_sql() -> str:
    """``PREFILTER`` as a SQL string literal (for ``regexp_matches``)."""
    return "'" + PREFILTER.replace("'", "''") + "'"


def _lookup(func: Callable[[str], str], known: dict[str, str]) -> Callable[[str], str]:
    def udf(text: str) -> str:
        out = known.get(text)
        return func(text) if out is None else out

    return udf


def _install(con: Any, name: str, func: Callable[[str], str], known: dict[str, str] | None = None) -> Callable[[str], str]:
    """Register ``name`` on ``con`` (replacing an earlier registration: ``known`` differs per build)."""
    try:
        con.remove_function(name)
    except Exception:  # noqa: BLE001 - not registered yet on this connection
        pass
    con.create_function(name, _lookup(func, known) if known else func, ["VARCHAR"], "VARCHAR", side_effects=False)
    pre = prefilter_sql()
    return lambda x: f"CASE WHEN regexp_matches({x}, {pre}) THEN {name}({x}) ELSE {x} END"


def install(con: Any, known: dict[str, str] | None = None) -> Callable[[str], str]:
    """Register ``steward_redact(VARCHAR)`` on ``con``; returns SQL expression -> its redacted form.

    ``known``: results already computed (``redact_all``), looked up before redacting."""
    return _install(con, UDF_NAME, redact, known)


def install_json(con: Any, known: dict[str, str] | None = None) -> Callable[[str], str]:
    """Register ``steward_redact_json(VARCHAR)`` (``redact_json``); returns SQL expression -> its redacted form."""
    return _install(con, JSON_UDF_NAME, redact_json, known)
