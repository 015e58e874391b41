"""Detached, read-only copies of registry rows: what storage hands to the layers above it.

A ``RowView`` holds a row's column values under the ORM's attribute names (``m.meta``,
``uc.config``, ``ro.steps``), read once inside the transaction that loaded the row.  It has no
session, loads nothing lazily and cannot be written back: a caller outside ``storage/`` changes
the registry only through a named storage function.  Assigning to an attribute fails, naming the
row, so an old ``row.status = ...`` habit is caught instead of silently lost.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RowView", "view", "view_of", "view_with", "views"]


class RowView:
    """The column values of one row (attribute access, read-only).  Only the columns are attributes
    (a column may be called ``kind`` or ``status``); the table's class name is in ``repr``."""

    __slots__ = ("_kind", "_values")

    def __init__(self, kind: str, values: dict[str, Any]) -> None:
        object.__setattr__(self, "_kind", kind)
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"{self._kind} has no column {name!r}; columns: {sorted(self._values)}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{self._kind}.{name} is a read-only copy of a registry row; change the registry "
                             "through a storage function")

    def __reduce__(self) -> tuple[Any, ...]:  # copy, deepcopy and pickle rebuild it (no attribute writes)
        return (RowView, (self._kind, self._values))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RowView) and (self._kind, self._values) == (other._kind, other._values)

    def __hash__(self) -> int:
        return hash((self._kind, self._values.get("id")))

    def __repr__(self) -> str:
        return f"{self._kind}View(id={self._values.get('id')!r})"

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)


def view(row: Any) -> RowView | None:
    """A ``RowView`` of an ORM row (None for None)."""
    if row is None:
        return None
    from sqlalchemy import inspect

    mapper = inspect(type(row))
    return RowView(type(row).__name__, {a.key: getattr(row, a.key) for a in mapper.column_attrs})


def view_of(row: Any) -> RowView:
    """``view`` of a row that exists."""
    out = view(row)
    if out is None:
        raise LookupError("view_of: no row")
    return out


def views(rows: Any) -> list[RowView]:
    return [v for v in (view(r) for r in rows) if v is not None]


def view_with(row: Any, **extra: Any) -> RowView:
    """``view(row)`` plus ``extra`` values (a relationship read as views, e.g. a deployment's allocations)."""
    out = view_of(row)
    return RowView(out._kind, {**out.as_dict(), **extra})
