"""Egress: which hosts may receive model calls, and which environment variables may be sent as keys.

No HTTP client is imported here: policies, tools and read commands use these checks cheaply.

Hosts (compared as origins, ``scheme://host:port``) that may receive a model call:
1. each provider's configured or public endpoint (``STEWARD_<PROVIDER>_BASE_URL``, ``OLLAMA_HOST``,
   else ``providers.endpoints.DEFAULT_BASE_URLS``): the admin set these up, or they are the public API;
2. what the admin lists in ``STEWARD_ALLOWED_HOSTS`` (comma-separated URLs, or ``host`` / ``host:port``;
   a host without a port allows every port of that host);
3. hosts an admin approved with ``steward hosts allow URL`` (the ``approved_hosts`` table).
Any other host receives nothing: its models are ``pending`` and ``get_provider`` refuses them.

Key variables (``api_key_env``): only names on the admin's allow-list ``STEWARD_KEY_ENV_ALLOW``
(comma-separated names, ``PREFIX*`` for a prefix; default ``STEWARD_MODELKEY_*``), plus each
provider's usual key variable (``OPENAI_API_KEY`` ...) for that provider's own configured endpoint
only.  So ``AWS_SECRET_ACCESS_KEY``, ``PGPASSWORD``, ``STEWARD_TOKEN`` are never sent anywhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from modelsteward.errors import ConfigError, InvalidInput
from modelsteward.providers.endpoints import API_KEY_ENV, DEFAULT_BASE_URLS, resolve_base_url

__all__ = [
    "ALLOWED_HOSTS_ENV", "KEY_ENV_ALLOW_ENV", "DEFAULT_KEY_ENV_ALLOW", "origin", "same_endpoint",
    "configured_origins", "host_allowance", "key_env_refusal", "key_env_patterns",
]

ALLOWED_HOSTS_ENV = "STEWARD_ALLOWED_HOSTS"
KEY_ENV_ALLOW_ENV = "STEWARD_KEY_ENV_ALLOW"
DEFAULT_KEY_ENV_ALLOW = "STEWARD_MODELKEY_*"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PROVIDERS = tuple(dict.fromkeys([*DEFAULT_BASE_URLS, *API_KEY_ENV, "ollama"]))


def _parts(url: str) -> tuple[str, str, int | None, str]:
    p = urlsplit(url.strip())
    default = {"http": 80, "https": 443}.get(p.scheme.lower())
    return p.scheme.lower(), (p.hostname or "").lower(), p.port or default, p.path.rstrip("/")


def same_endpoint(a: str, b: str) -> bool:
    """Two base URLs name the same endpoint (scheme, host, port and path; case and a trailing / aside)."""
    try:
        return _parts(a) == _parts(b)
    except ValueError:  # an unparsable port
        return False


def origin(url: str) -> str:
    """``scheme://host:port`` of an http(s) URL; ``InvalidInput`` naming the URL otherwise."""
    try:
        scheme, host, port, _ = _parts(url)
    except ValueError as exc:
        raise InvalidInput(f"{url!r} is not a usable URL ({exc}); give one like https://host:port/v1.") from exc
    if scheme not in ("http", "https") or not host:
        raise InvalidInput(f"{url!r} is not an http(s) URL with a host; give one like https://host:port/v1.")
    return f"{scheme}://{'[' + host + ']' if ':' in host else host}:{port}"


def configured_origins() -> dict[str, str]:
    """Provider -> origin of its configured (``STEWARD_<PROVIDER>_BASE_URL``) or public endpoint."""
    out: dict[str, str] = {}
    for p in _PROVIDERS:
        try:
            out[p] = origin(resolve_base_url(p))
        except (ConfigError, InvalidInput):
            continue
    return out


def _admin_allows(o: str) -> bool:
    host_port = o.split("://", 1)[1]
    host = host_port.rsplit(":", 1)[0]
    for raw in os.environ.get(ALLOWED_HOSTS_ENV, "").split(","):
        entry = raw.strip().lower().rstrip("/")
        if not entry:
            continue
        if "://" in entry:
            try:
                if origin(entry) == o:
                    return True
            except InvalidInput:
                continue
        elif entry in (host_port, host):
            return True
    return False


def host_allowance(url: str, approved: Iterable[str]) -> str | None:
    """Why ``url``'s host may receive calls (a short phrase), or None: nobody approved it."""
    try:
        o = origin(url)
    except InvalidInput:
        return None
    owners = sorted(p for p, c in configured_origins().items() if c == o)
    if owners:
        return f"the {owners[0]} provider's configured endpoint"
    if _admin_allows(o):
        return ALLOWED_HOSTS_ENV
    if o in set(approved):
        return "an approved host"
    return None


def key_env_patterns() -> list[str]:
    """The admin's allow-list of key variable names (``PREFIX*`` entries are prefixes)."""
    raw = os.environ.get(KEY_ENV_ALLOW_ENV)
    return [x.strip() for x in (DEFAULT_KEY_ENV_ALLOW if raw is None else raw).split(",") if x.strip()]


def _on_allow_list(name: str) -> bool:
    for pat in key_env_patterns():
        if (pat.endswith("*") and name.startswith(pat[:-1])) or name == pat:
            return True
    return False


def key_env_refusal(name: str, provider: str, base_url: str | None) -> str | None:
    """Why ``name`` may not be sent as the key of a ``provider`` model at ``base_url`` (None: it may).

    Allowed: a name on the admin's allow-list, or a provider's usual key variable when the model's
    endpoint is that provider's configured (or public) endpoint."""
    if not _ENV_NAME.fullmatch(name):
        return (f"api_key_env must be the NAME of an environment variable (letters, digits, _), not {name[:4]}...; "
                "put the key itself in that variable")
    if _on_allow_list(name):
        return None
    owners = sorted(p for p, env in API_KEY_ENV.items() if env == name)
    try:
        url = resolve_base_url(provider, base_url)
    except ConfigError:
        url = base_url or ""
    for p in owners:
        try:
            if same_endpoint(resolve_base_url(p), url):
                return None
        except ConfigError:
            continue
    patterns = ",".join(key_env_patterns()) or "(empty)"
    if owners:
        return (f"api_key_env {name} is the {owners[0]} provider's key, sent only to that provider's configured "
                f"endpoint; name a variable on the admin's allow-list ({KEY_ENV_ALLOW_ENV}={patterns}) for this model")
    return (f"api_key_env {name} is not on the admin's allow-list of key variables ({KEY_ENV_ALLOW_ENV}={patterns}); "
            "put this model's key in a variable with an allowed name (e.g. STEWARD_MODELKEY_<NAME>)")
