"""The dataset's side of ``modelsteward.privacy``: the same redaction in Python and inside DuckDB.

The detectors (``phonenumbers``, ``python-stdnum``, ``detect-secrets`` ...) run in Python, so the
dataset pipeline registers ``redact`` as a DuckDB scalar function (``install``) and calls it only
on values that match ``PREFILTER`` in SQL (RE2): most rows hold nothing and never leave DuckDB.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from modelsteward.privacy import PREFILTER, kinds_in, redact, redact_obj

__all__ = ["redact", "redact_json", "pii_kinds", "install", "install_json", "UDF_NAME", "JSON_UDF_NAME"]

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


def _install(con: Any, name: str, func: Callable[[str], str]) -> Callable[[str], str]:
    try:
        con.create_function(name, func, ["VARCHAR"], "VARCHAR", side_effects=False)
    except Exception as exc:  # noqa: BLE001 - already registered on this connection
        if "already" not in str(exc).lower():
            raise
    pre = "'" + PREFILTER.replace("'", "''") + "'"
    return lambda x: f"CASE WHEN regexp_matches({x}, {pre}) THEN {name}({x}) ELSE {x} END"


def install(con: Any) -> Callable[[str], str]:
    """Register ``steward_redact(VARCHAR)`` on ``con`` (once); returns SQL expression -> its redacted form."""
    return _install(con, UDF_NAME, redact)


def install_json(con: Any) -> Callable[[str], str]:
    """Register ``steward_redact_json(VARCHAR)`` (``redact_json``); returns SQL expression -> its redacted form."""
    return _install(con, JSON_UDF_NAME, redact_json)
