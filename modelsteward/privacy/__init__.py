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


def find(text: str) -> list[Finding]:
    """Every finding in ``text``, overlapping ones merged (kind of the highest-precedence detector)."""
    if not text or not might_contain(text):
        return []
    spans: list[tuple[int, int, int, str]] = []
    for name, detector in DETECTORS:
        for start, end, kind in detector(text):
            if end > start:
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
