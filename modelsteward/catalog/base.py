"""Scanner interface, scanner registry and the HTTP plumbing every remote scanner shares.

The built-in scanners register here when imported; looking one up by name (``get_scanner``,
``known_providers``) lives in ``catalog/scanners.py``, which imports them (issue 27: the scanners
import this module, so it does not import them back).

A scanner lists one source's catalog and turns each raw entry into a :class:`ScannedModel`.
Errors of the source (HTTP status, timeout, malformed JSON, wrong shape, unreachable host) are
translated here into :class:`SourceError`, so :func:`modelsteward.catalog.scan.run_scan` can report
them per source while the other sources still complete.  Entries that lack required fields raise
:class:`MissingField` from ``parse`` and are skipped and counted, never fatal.

Decisions: scanners do not retry (a 429 is reported with its ``Retry-After``, the next scheduled
scan tries again); remote base URLs come from ``STEWARD_<PROVIDER>_BASE_URL`` (``HF_ENDPOINT``,
``OLLAMA_HOST``) read at scan time, keys only from the environment.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, TypeVar

import httpx

from modelsteward.errors import RegistryError, UpstreamError

__all__ = [
    "ScannedModel",
    "SourceResult",
    "SourceError",
    "MissingField",
    "Scanner",
    "HttpScanner",
    "SCANNERS",
    "register_scanner",
    "per_token_to_per_m",
    "require",
]

USER_AGENT = "modelsteward-catalog/0.1"
MILLION = Decimal(1_000_000)


class MissingField(ValueError):
    """A catalog entry lacks a required field (skipped and counted by the scan)."""


class SourceError(UpstreamError):
    """A whole source failed; ``kind`` is one of unauthorized, rate_limited, server_error, timeout,
    unreachable, malformed_json, bad_shape, http_error, no_key."""

    code = "catalog_source_error"

    def __init__(
        self, message: str, *, kind: str, status: int | None = None, retry_after: float | None = None,
        retryable: bool = True,
    ) -> None:
        super().__init__(message, status=status, retryable=retryable, kind=kind, retry_after=retry_after)
        self.kind = kind
        self.retry_after = retry_after


@dataclass
class ScannedModel:
    """One model as a catalog lists it; prices in USD per million tokens (None = unknown)."""

    provider: str
    model: str
    display_name: str = ""
    price_in_per_m: Decimal | None = None
    price_out_per_m: Decimal | None = None
    context_length: int | None = None
    capabilities: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    kind: str | None = None
    base_url: str | None = None

    @property
    def id(self) -> str:
        return f"{self.provider}:{self.model}"


@dataclass
class SourceResult:
    """What one source gave: parsed models, skipped entries, or the error that stopped it."""

    provider: str
    status: str = "ok"  # ok | error | no_key
    models: list[ScannedModel] = field(default_factory=list)
    skipped: int = 0
    skipped_examples: list[str] = field(default_factory=list)
    filtered: int = 0  # entries deliberately left out (embedding-only, non-chat) — not errors
    error: str | None = None
    error_kind: str | None = None
    http_status: int | None = None
    retry_after: float | None = None
    notes: list[str] = field(default_factory=list)
    pages: int = 0


def require(entry: dict[str, Any], key: str) -> Any:
    """``entry[key]``, or :class:`MissingField` naming the key when absent or null."""
    if not isinstance(entry, dict):
        raise MissingField(f"entry is a {type(entry).__name__}, not an object")
    val = entry.get(key)
    if val is None or val == "":
        raise MissingField(f"missing {key!r}")
    return val


def per_token_to_per_m(value: Any) -> Decimal | None:
    """A per-token decimal string (OpenRouter) -> USD per million as Decimal; negative = unknown (None)."""
    if value is None or value == "":
        return None
    try:
        dec = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise MissingField(f"price {value!r} is not a number") from exc
    if not dec.is_finite() or dec < 0:
        return None
    per_m = (dec * MILLION).normalize()
    return per_m.quantize(Decimal(1)) if per_m == per_m.to_integral_value() else per_m


class Scanner:
    """One catalog source.  Subclasses set ``name`` and implement :meth:`run`."""

    name: ClassVar[str]
    description: ClassVar[str] = ""

    def __init__(self, *, timeout: float = 20.0, limit: int | None = None) -> None:
        self.timeout = timeout
        self.limit = limit

    def run(self, result: SourceResult) -> None:
        """Fill ``result.models`` / ``skipped``; raise :class:`SourceError` if the source fails."""
        raise NotImplementedError

    def parse_many(self, entries: list[Any], parse: Callable[[Any], ScannedModel | None], result: SourceResult) -> None:
        """Parse each entry; an entry missing fields is skipped and counted; ``None`` means filtered."""
        for entry in entries:
            try:
                model = parse(entry)
            except (MissingField, KeyError, TypeError, ValueError, AttributeError) as exc:
                result.skipped += 1
                if len(result.skipped_examples) < 5:
                    ident = entry.get("id") or entry.get("name") if isinstance(entry, dict) else None
                    result.skipped_examples.append(f"{ident or '?'}: {exc}")
                continue
            if model is None:
                result.filtered += 1
            else:
                result.models.append(model)

    def scan(self) -> SourceResult:
        """Run the scanner; every source failure ends up in the result, never raised."""
        result = SourceResult(provider=self.name)
        try:
            self.run(result)
        except SourceError as exc:
            result.status = "no_key" if exc.kind == "no_key" else "error"
            result.error = exc.message
            result.error_kind = exc.kind
            result.http_status = exc.status
            result.retry_after = exc.retry_after
            result.models = []
        return result


class HttpScanner(Scanner):
    """A scanner over JSON HTTP; ``base_env``/``default_base`` give the URL, ``key_env`` the key."""

    base_env: ClassVar[str]
    default_base: ClassVar[str]
    key_env: ClassVar[str | None] = None
    key_required: ClassVar[bool] = False

    def __init__(self, *, timeout: float = 20.0, limit: int | None = None, base_url: str | None = None,
                 api_key: str | None = None) -> None:
        super().__init__(timeout=timeout, limit=limit)
        self.base_url = (base_url or os.environ.get(self.base_env) or self.default_base).rstrip("/")
        self.api_key = api_key if api_key is not None else (os.environ.get(self.key_env) if self.key_env else None)

    def check_key(self) -> None:
        if self.key_required and not self.api_key:
            raise SourceError(
                f"{self.name}: no API key; set {self.key_env} to scan this catalog (not scanned).",
                kind="no_key", retryable=False,
            )

    def headers(self) -> dict[str, str]:
        return {"User-Agent": USER_AGENT, "Accept": "application/json"}

    def client(self) -> httpx.Client:
        return httpx.Client(timeout=self.timeout, headers=self.headers(), follow_redirects=True)

    def get_json(self, client: httpx.Client, url: str, *, method: str = "GET", **kwargs: Any) -> Any:
        """One request -> parsed JSON; every failure becomes a :class:`SourceError`."""
        try:
            resp = client.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise SourceError(f"{self.name}: no answer from {url} within {self.timeout:g}s ({type(exc).__name__}).",
                              kind="timeout") from exc
        except (httpx.ConnectError, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise SourceError(f"{self.name}: {self.base_url} unreachable ({exc}).", kind="unreachable") from exc
        except httpx.HTTPError as exc:
            raise SourceError(f"{self.name}: request to {url} failed ({exc}).", kind="http_error") from exc
        raise_for_status(self.name, resp, key_env=self.key_env)
        try:
            return json.loads(resp.content)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SourceError(f"{self.name}: malformed JSON from {url} ({exc.__class__.__name__}: {exc}).",
                              kind="malformed_json", status=resp.status_code, retryable=False) from exc


def raise_for_status(name: str, resp: httpx.Response, *, key_env: str | None = None) -> None:
    """Translate an error status (401/403, 429 + Retry-After, 5xx, other 4xx) into :class:`SourceError`."""
    code = resp.status_code
    if code < 400:
        return
    body = resp.text[:200].strip().replace("\n", " ")
    # Google answers a bad key with 400 INVALID_ARGUMENT / reason API_KEY_INVALID.
    if code in (401, 403) or (code == 400 and "API_KEY_INVALID" in resp.text):
        hint = f"; check {key_env}" if key_env else ""
        raise SourceError(f"{name}: HTTP {code} unauthorized{hint} ({body}).", kind="unauthorized", status=code,
                          retryable=False)
    if code == 429:
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        when = f"; retry after {retry_after:g}s" if retry_after is not None else ""
        raise SourceError(f"{name}: HTTP 429 rate limited{when}.", kind="rate_limited", status=code,
                          retry_after=retry_after)
    if code >= 500:
        raise SourceError(f"{name}: HTTP {code} server error ({body}).", kind="server_error", status=code)
    raise SourceError(f"{name}: HTTP {code} ({body}).", kind="http_error", status=code, retryable=False)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    import email.utils
    import time

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def as_list(payload: Any, key: str, source: str) -> list[Any]:
    """``payload[key]`` as a list, or a bad-shape :class:`SourceError`."""
    if not isinstance(payload, dict) or not isinstance(payload.get(key), list):
        got = type(payload).__name__ if not isinstance(payload, dict) else f"keys {sorted(payload)[:6]}"
        raise SourceError(f"{source}: unexpected response shape, no {key!r} list ({got}).", kind="bad_shape",
                          retryable=False)
    return payload[key]


# ---------------------------------------------------------------------------------------- registry
SCANNERS: dict[str, type[Scanner]] = {}
S = TypeVar("S", bound=type[Scanner])


def register_scanner(cls: S) -> S:
    """Class decorator: add a scanner; a duplicate name fails at import, naming both classes."""
    name = getattr(cls, "name", None)
    if not name or not isinstance(name, str):
        raise TypeError(f"Scanner {cls.__qualname__} has no name.")
    if name in SCANNERS and SCANNERS[name] is not cls:
        other = SCANNERS[name]
        raise RegistryError(
            f"Scanner {name!r} registered twice: {other.__module__}.{other.__qualname__} and "
            f"{cls.__module__}.{cls.__qualname__}."
        )
    SCANNERS[name] = cls
    return cls

