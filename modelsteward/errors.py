"""One exception tree for the whole project.

Every error carries a stable ``code`` a user can look up (README, "Error codes") and a message
that names what was wrong and what to do.  Third-party errors are translated where they enter
(``raise StewardError(...) from exc``).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "StewardError",
    "ConfigError",
    "NotFound",
    "Conflict",
    "InvalidInput",
    "IllegalTransition",
    "PolicyDenied",
    "ApprovalRequired",
    "ProviderError",
    "UpstreamError",
    "ReadOnlyViolation",
    "InsufficientData",
    "CheckFailed",
    "close_matches",
]


class StewardError(Exception):
    """Base of every error Model Steward raises on purpose."""

    code = "steward_error"
    http_status = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **({"details": self.details} if self.details else {})}


class ConfigError(StewardError):
    code = "config_error"
    http_status = 500


class NotFound(StewardError):
    code = "not_found"
    http_status = 404


class Conflict(StewardError):
    code = "conflict"
    http_status = 409


class InvalidInput(StewardError):
    code = "invalid_input"
    http_status = 422


class IllegalTransition(StewardError):
    code = "illegal_transition"
    http_status = 409


class PolicyDenied(StewardError):
    code = "policy_denied"
    http_status = 403


class ApprovalRequired(StewardError):
    code = "approval_required"
    http_status = 202


class ProviderError(StewardError):
    code = "provider_error"
    http_status = 502


class UpstreamError(ProviderError):
    """An upstream model API answered with an error status or did not answer."""

    code = "upstream_error"

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = True, **details: Any) -> None:
        super().__init__(message, status=status, **details)
        self.status = status
        self.retryable = retryable


class ReadOnlyViolation(StewardError):
    code = "read_only"
    http_status = 400


class InsufficientData(StewardError):
    code = "insufficient_data"
    http_status = 422


class CheckFailed(StewardError):
    """A model failed the check that runs before it takes traffic (``tools/checks.py``): the change
    was refused and nothing changed.  HTTP 424 (Failed Dependency: the upstream the change depends on
    does not answer as it must); ``details`` carries ``model_id``, ``fix`` and the check's output."""

    code = "check_failed"
    http_status = 424


def close_matches(word: str, candidates: list[str], n: int = 3) -> str:
    """A ' Did you mean ...?' suffix (or a listing of what exists) for not-found messages."""
    import difflib

    near = difflib.get_close_matches(word, candidates, n=n, cutoff=0.5)
    if near:
        return f" Did you mean: {', '.join(near)}?"
    if candidates:
        shown = ", ".join(sorted(candidates)[:10])
        more = "" if len(candidates) <= 10 else f" (and {len(candidates) - 10} more)"
        return f" Known: {shown}{more}."
    return " None exist yet."
