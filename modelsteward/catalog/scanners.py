"""The scanners by name: the built-in ones (``paid``, ``selfhosted``) loaded, then looked up.

The registry itself (``SCANNERS``, ``register_scanner``) is in ``catalog/base.py``, which every
scanner imports; this module sits above them so that no two modules import each other (issue 27).
"""

from __future__ import annotations

from modelsteward.catalog import paid, selfhosted  # noqa: F401  (the built-in scanners register on import)
from modelsteward.catalog.base import SCANNERS, Scanner
from modelsteward.errors import InvalidInput

__all__ = ["get_scanner", "known_providers"]


def known_providers() -> list[str]:
    return list(SCANNERS)


def get_scanner(name: str) -> type[Scanner]:
    """The scanner class for ``name``; unknown names raise InvalidInput listing the known ones."""
    if name not in SCANNERS:
        raise InvalidInput(
            f"Unknown provider {name!r}; known providers: {', '.join(SCANNERS)}, all.", provider=name,
            known=list(SCANNERS),
        )
    return SCANNERS[name]
