"""PII redaction shared by Python and DuckDB (RE2): the same patterns, applied in the same order.

Patterns stay in the subset both engines read alike (no look-behind, ``\\1`` back-references in
the replacement).  Order matters: API keys first (they contain digits), then e-mails, card numbers
(13-19 digits, optionally split by spaces or dashes), phone numbers (international ``+CC ...`` or
North-American ``(555) 123-4567`` shapes; plain dates such as ``2024-01-15`` are not phones).
Redacting too much is preferred to leaking: any 13-19 digit run is treated as a card number.
"""

from __future__ import annotations

import re

__all__ = ["PII_PATTERNS", "redact", "redact_sql", "pii_kinds"]

# (kind, pattern, replacement)
PII_PATTERNS: tuple[tuple[str, str, str], ...] = (
    (
        "api_key",
        r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}|\bAKIA[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{20,}|"
        r"\bxox[abprs]-[A-Za-z0-9-]{10,}|\bAIza[0-9A-Za-z_-]{35}|\bhf_[A-Za-z0-9]{20,}",
        "[API_KEY]",
    ),
    (
        "secret_assignment",
        r"(?i)\b(api[_-]?key|secret|access[_-]?token|auth[_-]?token|password)(\s*[:=]\s*)[\"']?[A-Za-z0-9_./+=-]{8,}[\"']?",
        r"\1\2[API_KEY]",
    ),
    ("email", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", "[EMAIL]"),
    ("card", r"\b(?:\d[ -]?){12,18}\d\b", "[CARD]"),
    (
        "phone",
        r"\+\d{1,3}[ .-]?\(?\d{1,4}\)?(?:[ .-]?\d{2,4}){2,4}\b|\(?\b\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b",
        "[PHONE]",
    ),
)

_COMPILED = [(kind, re.compile(pat), repl) for kind, pat, repl in PII_PATTERNS]


def redact(text: str) -> str:
    """``text`` with every PII match replaced by its placeholder (``[EMAIL]``, ``[PHONE]`` ...)."""
    for _kind, rx, repl in _COMPILED:
        text = rx.sub(repl, text)
    return text


def pii_kinds(text: str) -> list[str]:
    """The PII kinds found in ``text`` (for cards and tests)."""
    return [kind for kind, rx, _ in _COMPILED if rx.search(text)]


def _sql_literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def redact_sql(expr: str) -> str:
    """A DuckDB expression applying the same redaction to the VARCHAR expression ``expr``."""
    out = expr
    for _kind, pat, repl in PII_PATTERNS:
        out = f"regexp_replace({out}, {_sql_literal(pat)}, {_sql_literal(repl)}, 'g')"
    return out
