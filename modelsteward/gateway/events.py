"""What the server says about failing requests: one structured log line per failure (issue 29).

Logger ``modelsteward.gateway``.  ``failure(...)`` writes one WARNING line for every failed upstream
attempt (``event=upstream_failed``) and every non-2xx answer to a client (``event=request_failed``),
with ``request_id``, ``use_case``, ``model``, ``status``, ``latency_ms`` and the error; successful
requests log nothing (their row is in the request log store).  ``configure_logging()`` (called by
``steward serve``) installs a root handler when none exists: plain text
(``TIME LEVEL LOGGER: event key=value ...``), or one JSON object per line when
``STEWARD_LOG_FORMAT=json``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import orjson

__all__ = ["failure", "configure_logging", "JsonFormatter", "LOG_FORMAT_ENV"]

log = logging.getLogger("modelsteward.gateway")
LOG_FORMAT_ENV = "STEWARD_LOG_FORMAT"
_FIELDS = "steward_fields"


def failure(event: str, *, request_id: str, use_case: str | None, model: str | None, status: int | None,
            latency_ms: float, error: str, **extra: Any) -> None:
    """One structured WARNING line (text: ``event key=value ...``; JSON under ``STEWARD_LOG_FORMAT=json``)."""
    if not log.isEnabledFor(logging.WARNING):
        return
    fields: dict[str, Any] = {"event": event, "request_id": request_id, "use_case": use_case, "model": model,
                              "status": status, "latency_ms": round(latency_ms, 1), **extra,
                              "error": error[:500]}
    text = " ".join(f"{k}={_text(v)}" for k, v in fields.items() if k != "event")
    log.warning("%s %s", event, text, extra={_FIELDS: fields})


def _text(v: Any) -> str:
    s = "-" if v is None else str(v)
    return orjson.dumps(s).decode() if (" " in s or '"' in s or not s) else s


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts``, ``level``, ``logger``, then the record's structured fields
    (or ``message`` for plain records)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                               + f".{int(record.msecs):03d}Z", "level": record.levelname, "logger": record.name}
        fields = getattr(record, _FIELDS, None)
        if isinstance(fields, dict):
            out.update(fields)
        else:
            out["message"] = record.getMessage()
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def configure_logging(level: int = logging.WARNING) -> None:
    """A root handler on stderr when none exists (text, or JSON under ``STEWARD_LOG_FORMAT=json``)."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get(LOG_FORMAT_ENV, "").strip().lower() == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
