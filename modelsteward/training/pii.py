"""The dataset's side of ``modelsteward.privacy``: the same redaction in Python and inside DuckDB.

The detectors (``phonenumbers``, ``python-stdnum``, ``detect-secrets`` ...) run in Python, so the
dataset pipeline registers ``redact`` as a DuckDB scalar function (``install``) and calls it only
on values that match ``PREFILTER`` in SQL (RE2): most rows hold nothing and never leave DuckDB.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelsteward.privacy import PREFILTER, kinds_in, redact

__all__ = ["redact", "pii_kinds", "install", "UDF_NAME"]

UDF_NAME = "steward_redact"


def pii_kinds(text: str) -> list[str]:
    """The kinds found in ``text`` (``EMAIL``, ``PHONE`` ...)."""
    return kinds_in(text)


def install(con: Any) -> Callable[[str], str]:
    """Register ``steward_redact(VARCHAR)`` on ``con`` (once); returns SQL expression -> its redacted form."""
    try:
        con.create_function(UDF_NAME, redact, ["VARCHAR"], "VARCHAR", side_effects=False)
    except Exception as exc:  # noqa: BLE001 - already registered on this connection
        if "already" not in str(exc).lower():
            raise
    pre = "'" + PREFILTER.replace("'", "''") + "'"
    return lambda x: f"CASE WHEN regexp_matches({x}, {pre}) THEN {UDF_NAME}({x}) ELSE {x} END"
