"""One redaction module for every place logged text leaves the log store.

Datasets, eval samples and caches, MLflow params and artifacts, reports and error messages all call
``redact`` (one string) or ``redact_obj`` (any JSON-like value).  Each finding is replaced by a
token naming its kind (``[EMAIL]``, ``[PHONE]``, ``[CARD]``, ``[IBAN]``, ``[SSN]``, ``[NATIONAL_ID]``,
``[IP]``, ``[API_KEY]``, ``[JWT]``, ``[PASSWORD]``, ``[PRIVATE_KEY]``, ``[SECRET]``); overlapping
findings are merged first, so a secret is never half-replaced.  Redacting a little too much is
preferred to leaking: the detectors are tuned for recall (see ``bench/pii.py`` and the corpus in
``tests/fixtures/pii_corpus.jsonl``).

The detectors themselves live in ``detect.py`` (``phonenumbers``, ``python-stdnum``,
``detect-secrets`` and a few patterns for shapes no library covers).  ``PREFILTER`` is a cheap
pattern RE2 (DuckDB) and Python read alike: text it does not match holds nothing to redact, so
bulk callers may skip such rows without calling ``redact``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from modelsteward.privacy.detect import DETECTORS, PREFILTER, might_contain

__all__ = ["Finding", "KINDS", "PREFILTER", "find", "might_contain", "redact", "redact_obj", "kinds_in"]

KINDS = ("EMAIL", "PHONE", "CARD", "IBAN", "SSN", "NATIONAL_ID", "IP", "API_KEY", "JWT", "PASSWORD",
         "PRIVATE_KEY", "SECRET")
_RANK = {name: i for i, (name, _) in enumerate(DETECTORS)}


@dataclass(frozen=True)
class Finding:
    start: int
    end: int
    kind: str

    @property
    def token(self) -> str:
        return f"[{self.kind}]"


# Shapes that are values, never personal data: ISO 8601 dates and times, decimal and scientific
# numbers (prices, latencies, ratios), UUIDs.  A finding lying wholly inside one is a false positive
# of a detector tuned for recall (the phone matcher reads "18:26:09.976988" or "1234567.89" as a
# number, a keyword rule reads "token: 8.149e-06" as a token), so reports, journals and decision
# records keep the steward's own timestamps and numbers (issue 29).  A value after a password
# keyword stays redacted: a password may look like anything.
_PLAIN = re.compile(
    r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?(?!\d)"
    r"|(?<![\d.])[-+]?\d+\.\d+(?:[eE][-+]?\d+)?(?![\d.])|(?<![\w.])\d+[eE][-+]?\d+(?![\w.])"
    r"|\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)


def _plain_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _PLAIN.finditer(text)]


def _is_plain(start: int, end: int, kind: str, plain: list[tuple[int, int]]) -> bool:
    return kind != "PASSWORD" and any(ps <= start and end <= pe for ps, pe in plain)


def find(text: str) -> list[Finding]:
    """Every finding in ``text``, overlapping ones merged (kind of the highest-precedence detector)."""
    if not text or not might_contain(text):
        return []
    spans: list[tuple[int, int, int, str]] = []
    plain: list[tuple[int, int]] | None = None
    for name, detector in DETECTORS:
        for start, end, kind in detector(text):
            if end > start:
                if plain is None:
                    plain = _plain_spans(text)
                if plain and _is_plain(start, end, kind, plain):
                    continue
                spans.append((start, end, _RANK[name], kind))
    spans.sort()
    merged: list[list[Any]] = []
    for start, end, rank, kind in spans:
        if merged and start < merged[-1][1]:
            last = merged[-1]
            last[1] = max(last[1], end)
            if rank < last[2]:
                last[2], last[3] = rank, kind
        else:
            merged.append([start, end, rank, kind])
    return [Finding(s, e, k) for s, e, _, k in merged]


def redact(text: str) -> str:
    """``text`` with every finding replaced by its token (``[EMAIL]``, ``[PHONE]`` ...)."""
    if not isinstance(text, str):
        return text
    found = find(text)
    if not found:
        return text
    out, pos = [], 0
    for f in found:
        out += [text[pos:f.start], f.token]
        pos = f.end
    out.append(text[pos:])
    return "".join(out)


def kinds_in(text: str) -> list[str]:
    """The kinds found in ``text`` (sorted, unique)."""
    return sorted({f.kind for f in find(text)})


def redact_obj(obj: Any) -> Any:
    """A copy of a JSON-like value with every string (dict keys included) redacted."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {redact(k) if isinstance(k, str) else k: redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact_obj(v) for v in obj]
    return obj
