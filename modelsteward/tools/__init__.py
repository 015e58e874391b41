"""The typed tool surface shared by CLI, API, console and agent."""

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
