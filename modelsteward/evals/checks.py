"""One gate check's outcome (``Check``): shared by the gate (``gate.py``) and the per-answer-kind
checks (``kinds.py``), which the gate calls, so neither imports the other for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Check"]


@dataclass
class Check:
    name: str
    status: str  # pass | fail | inconclusive | skipped
    reason: str
    value: float | None = None
    limit: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
