"""Policy engine: ``evaluate(ctx, action, args) -> Decision`` (allow | deny | needs_approval).

PLACEHOLDER until the Rollout issue lands its rules: everything is allowed.  The Rollout issue
replaces the body of ``evaluate`` with the hard-coded rules; ``enforce`` keeps its contract:
deny -> record + raise PolicyDenied; needs_approval -> persist an approvals row and raise
ApprovalRequired(approval_id=...) unless ``ctx.approval_id`` names that approved action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from modelsteward.tools.base import ToolContext

__all__ = ["Decision", "evaluate", "enforce"]


@dataclass(frozen=True)
class Decision:
    verdict: Literal["allow", "deny", "needs_approval"]
    policy: str = ""
    reason: str = ""


def evaluate(ctx: ToolContext, action: str, args: dict[str, Any]) -> Decision:
    return Decision("allow")


def enforce(ctx: ToolContext, action: str, args: dict[str, Any]) -> Decision:
    return evaluate(ctx, action, args)
