"""The typed tool surface shared by CLI, API, console and agent.

The names below come from ``tools.base`` on first use (PEP 562), so importing a light module of the
package (``tools.wiring``, which the CLI's composition root needs before every command) does not
import pydantic and the workspace context.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelsteward.tools.base import (
        TOOLS,
        InputModel,
        ToolContext,
        ToolSpec,
        call_tool,
        get_tool,
        list_tools,
        load_all_tools,
        tool,
    )

__all__ = ["TOOLS", "InputModel", "ToolContext", "ToolSpec", "call_tool", "get_tool", "list_tools", "load_all_tools", "tool"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from modelsteward.tools import base

        return getattr(base, name)
    raise AttributeError(f"module 'modelsteward.tools' has no attribute {name!r}")
