"""Small formatting helpers shared by the CLI tables and the Markdown reports (no heavy imports)."""

from __future__ import annotations

from typing import Any

__all__ = ["fmt_value"]


def fmt_value(v: Any) -> str:
    """A table cell: ``-`` for None, 3 decimals for small floats, thousands separators for big ones."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)
