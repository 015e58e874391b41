"""The redaction this project shipped before ``modelsteward.privacy`` (frozen, for ``bench/pii.py`` only).

Two hand-grown lists that disagreed: ``training/pii.py`` (datasets) and ``evals/text.py``'s
``PII_PATTERNS`` (safety scoring).  Kept verbatim so the benchmark measures the new module against
them in the same run; nothing in the package imports this file.
"""

from __future__ import annotations

import re

TRAINING_PII_PATTERNS: tuple[tuple[str, str, str], ...] = (
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
_TRAINING = [(re.compile(p), r) for _, p, r in TRAINING_PII_PATTERNS]

EVALS_PII_PATTERNS = {
    "email": re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"),
    "ssn": re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),
    "credit_card": re.compile(r"\b(?:\d[ -]?){13,19}\b"),
    "phone": re.compile(r"(?<![\w-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{3}\)|\d{3})[ .-]\d{3}[ .-]\d{4}\b"),
    "iban": re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}\b"),
}


def redact_training(text: str) -> str:
    for rx, repl in _TRAINING:
        text = rx.sub(repl, text)
    return text


def redact_evals(text: str) -> str:
    for kind, rx in EVALS_PII_PATTERNS.items():
        text = rx.sub(f"[{kind.upper()}]", text)
    return text
