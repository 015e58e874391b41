"""Where the log store lives: a parsed ``STEWARD_LOG_DIR`` (a folder, ``file:///path`` or
``s3://bucket/prefix``).  A base module (settings' layer), so settings can validate the variable without
importing the storage layer; ``storage/objectstore.py`` opens what it names."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from modelsteward.errors import ConfigError

__all__ = ["VAR", "LogLocation", "parse_log_location"]

VAR = "STEWARD_LOG_DIR"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$")


@dataclass(frozen=True)
class LogLocation:
    """A parsed ``STEWARD_LOG_DIR``: a local folder, or a bucket and a key prefix."""

    kind: str  # "local" | "s3"
    path: Path | None = None
    bucket: str = ""
    prefix: str = ""

    @property
    def remote(self) -> bool:
        return self.kind != "local"

    @property
    def url(self) -> str:
        if self.kind == "local":
            return str(self.path)
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")


def parse_log_location(value: str | Path | None, default: Path | None = None, *, var: str = VAR) -> LogLocation:
    """A folder, ``file:///path`` or ``s3://bucket/prefix`` -> ``LogLocation``; anything else is a ConfigError."""
    if value is None or str(value).strip() == "":
        if default is None:
            raise ConfigError(f"{var} is empty; give a folder, file:///path or s3://bucket/prefix.", variable=var)
        return LogLocation("local", Path(default).expanduser().resolve())
    if isinstance(value, Path):
        return LogLocation("local", value.expanduser().resolve())
    text = str(value).strip()
    m = _SCHEME.match(text)
    if m is None:
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:/", text) and not text.startswith("/"):
            # "s3:/bucket" (a path collapsed a double slash): a URL, not a folder named "s3:"
            raise ConfigError(f"{var}={text!r} looks like a URL missing a slash; use s3://bucket/prefix or a folder.",
                              variable=var)
        return LogLocation("local", Path(text).expanduser().resolve())
    scheme, rest = m.group(1).lower(), m.group(2)
    if scheme == "file":
        if not rest.startswith("/"):
            raise ConfigError(f"{var}={text!r}: a file URL needs an absolute path (file:///path).", variable=var)
        return LogLocation("local", Path(rest).resolve())
    if scheme in ("s3", "s3a"):
        bucket, _, prefix = rest.partition("/")
        if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", bucket):
            raise ConfigError(f"{var}={text!r}: {bucket!r} is not a bucket name (3-63 lowercase letters, digits, "
                              "dots, hyphens).", variable=var)
        return LogLocation("s3", bucket=bucket, prefix=prefix.strip("/"))
    raise ConfigError(f"{var}={text!r}: the scheme {scheme}:// is not supported; use a folder, file:///path or "
                      "s3://bucket/prefix (any S3-compatible store, e.g. GCS through its S3 API).", variable=var)
