"""``get_provider(model, settings)``: the one place that turns a registry ``Model`` into a provider.

Dispatch on ``model.provider``: ``local`` -> ``LocalProvider``; every other provider ->
``OpenAIHTTPProvider``.  Providers are cached per process, keyed by everything that changes how
the model is called (id, base URL, adapter, path), so a re-registered model gets a new provider.
This is the one provider cache (issue 27): the gateway keeps only a memo of which provider it was
given for a registry row (computing the key reads the environment, and for a local fine-tune the
registry, too costly per request), valid while ``cache_generation()`` is unchanged, so
``clear_provider_cache()`` voids it as well.

Local model folders, in order: a fine-tune (``parent_model_id`` set) loads its parent's folder
plus ``adapter_path`` as a peft adapter (or, when ``adapter_path`` holds a full model instead of an
adapter, that folder alone); ``meta["path"]`` names any transformers folder (tests use a tiny
model this way); ``local:smollm2-135m-instruct`` is the converted base in ``STEWARD_CACHE_DIR``.

HTTP models read optional ``meta`` keys: ``timeout_s`` (else ``STEWARD_UPSTREAM_TIMEOUT_S``, default
60), ``api_key_env`` (the environment variable holding the model's own key) and ``headers`` (extra
request headers).  Local models: ``meta["concurrency"]`` (else ``STEWARD_LOCAL_CONCURRENCY``,
default 1).

Keys stay with their provider (``bound_api_key``): a provider's key (``OPENAI_API_KEY`` ...) is only
sent to that provider's configured base URL (``STEWARD_<PROVIDER>_BASE_URL`` or the public
default).  A model registered with any other ``base_url`` gets the key its ``api_key_env`` names
when that name is on the admin's allow-list (``providers.egress``), or none.

Egress (``providers.egress``): an HTTP provider is made only for a host that may receive calls (a
provider's configured endpoint, ``STEWARD_ALLOWED_HOSTS``, or an approved host); any other raises
``PolicyDenied`` (policy ``host_not_approved``), so no evaluation, shadow, canary or judge call
reaches it, whoever asks.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from modelsteward.errors import ConfigError, PolicyDenied
from modelsteward.providers.base import ChatProvider, ChatResult, Message
from modelsteward.providers.egress import key_env_refusal, origin, same_endpoint
from modelsteward.providers.http import API_KEY_ENV, OpenAIHTTPProvider, resolve_base_url

if TYPE_CHECKING:
    from modelsteward.settings import Settings
    from modelsteward.storage.registry import ModelRegistry

__all__ = [
    "get_provider", "complete", "clear_provider_cache", "local_model_paths", "run_sync", "bound_api_key",
    "check_key_reference", "same_endpoint", "cache_generation", "key_variable", "key_problem", "local_problem",
]



class Model(Protocol):
    """What the factory reads of a registered model (the registry's row, or anything with these)."""

    @property
    def id(self) -> str: ...
    @property
    def provider(self) -> str: ...
    @property
    def provider_model_id(self) -> str: ...
    @property
    def base_url(self) -> str | None: ...
    @property
    def adapter_path(self) -> str | None: ...
    @property
    def parent_model_id(self) -> str | None: ...
    @property
    def meta(self) -> dict[str, Any] | None: ...


_CACHE: dict[tuple[Any, ...], ChatProvider] = {}
_CACHE_LOCK = threading.Lock()
_GENERATION = 0  # bumped by clear_provider_cache(): a memo of get_provider's answers is void after it
_REGISTRIES: dict[str, ModelRegistry] = {}


def _registry_for(settings: Settings) -> ModelRegistry:
    from modelsteward.storage.db import make_engine
    from modelsteward.storage.registry import ModelRegistry

    url = settings.db_url
    with _CACHE_LOCK:
        reg = _REGISTRIES.get(url)
        if reg is None:
            reg = _REGISTRIES[url] = ModelRegistry(make_engine(url))
        return reg


def _is_adapter(path: Path) -> bool:
    return (path / "adapter_config.json").exists()


def local_model_paths(
    model: Model, settings: Settings, registry: ModelRegistry | None = None, _depth: int = 0, *, prepare: bool = True,
) -> tuple[Path, Path | None]:
    """(weights folder, adapter folder or None) for a ``local`` model row.  ``prepare=False`` converts
    nothing: the base model is then wherever its weights lie now (``local_assets.base_model_source``)."""
    if _depth > 8:
        raise ConfigError(f"Model {model.id}: parent_model_id chain is too deep (a cycle?).")
    meta = model.meta or {}
    if model.adapter_path:
        adapter = Path(model.adapter_path).expanduser()
        if not adapter.exists():
            raise ConfigError(f"Model {model.id}: adapter folder {adapter} does not exist.")
        if not _is_adapter(adapter) and (adapter / "config.json").exists():
            return adapter, None  # a full fine-tune saved as a plain model folder
        if not model.parent_model_id:
            raise ConfigError(f"Model {model.id} has an adapter but no parent_model_id naming its base model.")
        from modelsteward.providers.local_assets import BASE_MODEL_ID

        if model.parent_model_id == BASE_MODEL_ID:
            return _base_model(settings, prepare), adapter
        reg = registry or _registry_for(settings)
        parent = reg.get_model(model.parent_model_id)
        base, parent_adapter = local_model_paths(parent, settings, reg, _depth + 1, prepare=prepare)
        if parent_adapter is not None:
            raise ConfigError(
                f"Model {model.id}: its parent {parent.id} is itself an adapter; stacked adapters are not supported "
                "(merge the parent first)."
            )
        return base, adapter
    if meta.get("path"):
        return Path(str(meta["path"])).expanduser(), None
    from modelsteward.providers.local_assets import BASE_MODEL_NAME

    if model.provider_model_id == BASE_MODEL_NAME:
        return _base_model(settings, prepare), None
    if model.parent_model_id:
        reg = registry or _registry_for(settings)
        return local_model_paths(reg.get_model(model.parent_model_id), settings, reg, _depth + 1, prepare=prepare)
    raise ConfigError(
        f"Local model {model.id} has no weights: register it with metadata {{'path': FOLDER}}, an adapter_path "
        f"and parent_model_id, or use local:{BASE_MODEL_NAME}."
    )


def _base_model(settings: Settings, prepare: bool) -> Path:
    from modelsteward.providers.local_assets import base_model_source, ensure_base_model

    return ensure_base_model(settings.cache_dir) if prepare else base_model_source(settings.cache_dir)


def local_problem(model: Model, settings: Settings, registry: ModelRegistry | None = None) -> str | None:
    """One line when a local model's weights do not resolve (no weights named, a missing folder,
    adapter or parent), else None.  Cheap: it reads paths only, loading and converting nothing."""
    from modelsteward.errors import StewardError

    try:
        path, _ = local_model_paths(model, settings, registry, prepare=False)
    except StewardError as exc:  # ConfigError, NotFound (an unknown parent model)
        return exc.message
    if path.is_file() and path.suffix == ".gguf":
        return None
    if not (path / "config.json").is_file():
        return (f"Model {model.id}: its weights folder {path} has no config.json (not a transformers model folder); "
                "register it with metadata {'path': FOLDER} naming one")
    return None


def _timeout(model: Model) -> float:
    meta = model.meta or {}
    return float(meta.get("timeout_s") or os.environ.get("STEWARD_UPSTREAM_TIMEOUT_S", "60"))


def check_key_reference(name: str, provider: str = "custom", base_url: str | None = None) -> str:
    """An ``api_key_env`` value for a ``provider`` model at ``base_url``: a name on the admin's
    allow-list, or a provider's usual key variable for that provider's own configured endpoint
    (``providers.egress.key_env_refusal``); ``ValueError`` with the one-line reason otherwise."""
    why = key_env_refusal(name, provider, base_url)
    if why:
        raise ValueError(why)
    return name


def bound_api_key(provider: str, base_url: str, meta: dict[str, Any] | None = None) -> str | None:
    """The key to send to ``base_url`` for a model of ``provider`` (see module doc); None: no key.
    Checked again on every provider made: a row stored before the allow-list (or edited in the
    database) never sends a variable the allow-list refuses."""
    env = (meta or {}).get("api_key_env") or API_KEY_ENV.get(provider)
    if not env or key_env_refusal(env, provider, base_url):
        return None
    return os.environ.get(env) or None


HOSTED = frozenset({"openai", "openrouter", "anthropic", "google", "huggingface"})  # a key is always needed


def key_variable(model: Model) -> str | None:
    """The environment variable a model's key is read from when one is expected: its ``api_key_env``,
    or a hosted provider's usual variable; None for local models and keyless endpoints (vLLM, custom)."""
    if model.provider == "local":
        return None
    env = (model.meta or {}).get("api_key_env")
    return str(env) if env else (API_KEY_ENV.get(model.provider) if model.provider in HOSTED else None)


def key_problem(model: Model) -> str | None:
    """One line when the key variable a model expects is unset in this process's environment (else None)."""
    env = key_variable(model)
    if env and not os.environ.get(env):
        return f"set {env} in the server's environment (model {model.id} reads its key from it; it is unset)"
    return None


def _check_egress(model: Model, base_url: str, settings: Settings, registry: ModelRegistry | None) -> None:
    """Refuse (``PolicyDenied``, policy ``host_not_approved``) a call to a host nobody approved."""
    from modelsteward.providers.egress import host_allowance

    if host_allowance(base_url, ()) is not None:
        return  # configured endpoints and STEWARD_ALLOWED_HOSTS: no database read
    from modelsteward.storage.hosts import approved_origins

    reg = registry or _registry_for(settings)
    if host_allowance(base_url, approved_origins(reg.sessions)) is None:
        raise PolicyDenied(
            f"Model {model.id} is at {origin(base_url)}, a host nobody approved: it receives nothing until an admin "
            f"runs `steward hosts allow {origin(base_url)}`.", policy="host_not_approved", model=model.id)


def get_provider(model: Model, settings: Settings, *, registry: ModelRegistry | None = None) -> ChatProvider:
    """The (cached) provider that calls ``model``."""
    meta = model.meta or {}
    if model.provider == "local":
        path, adapter = local_model_paths(model, settings, registry)
        key: tuple[Any, ...] = ("local", model.id, str(path), str(adapter) if adapter else None,
                                meta.get("concurrency"))
        with _CACHE_LOCK:
            prov = _CACHE.get(key)
            if prov is None:
                from modelsteward.providers.local import LocalProvider

                prov = _CACHE[key] = LocalProvider(model.id, path, adapter_path=adapter,
                                                   concurrency=meta.get("concurrency"))
            return prov
    base_url = resolve_base_url(model.provider, model.base_url)
    api_key = bound_api_key(model.provider, base_url, meta)
    timeout = _timeout(model)
    key = ("http", model.id, model.provider_model_id, base_url, api_key, timeout)
    with _CACHE_LOCK:
        prov = _CACHE.get(key)
    if prov is None:  # a provider is made only for an allowed host (checked once per provider made)
        _check_egress(model, base_url, settings, registry)
    with _CACHE_LOCK:
        prov = _CACHE.get(key)
        if prov is None:
            headers = {str(k): str(v) for k, v in (meta.get("headers") or {}).items()}
            prov = _CACHE[key] = OpenAIHTTPProvider(model.id, model.provider_model_id, base_url, api_key=api_key,
                                                     timeout_s=timeout, headers=headers)
        return prov


def clear_provider_cache() -> None:
    """Forget cached providers (tests; after re-registering models), the gateway's memo of them too."""
    global _GENERATION
    with _CACHE_LOCK:
        _CACHE.clear()
        _GENERATION += 1


def cache_generation() -> int:
    """Changes whenever the cache is cleared: a memo of ``get_provider``'s answers, taken while this
    had one value, holds only while it still has it."""
    return _GENERATION


# ------------------------------------------------------------------------ sync helper
class _LoopThread:
    """One background event loop for synchronous callers (its pooled HTTP session lives there)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                t = threading.Thread(target=loop.run_forever, name="steward-providers-sync", daemon=True)
                t.start()
                self._loop = loop
                atexit.register(self.shutdown)
            return self._loop

    def shutdown(self) -> None:
        """Close the loop's pooled HTTP session and stop the loop (at interpreter exit)."""
        from modelsteward.providers.http import close_sessions

        with self._lock:
            loop, self._loop = self._loop, None
        if loop is None or loop.is_closed():
            return
        try:
            asyncio.run_coroutine_threadsafe(close_sessions(), loop).result(timeout=2)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
        loop.call_soon_threadsafe(loop.stop)


_SYNC = _LoopThread()


def run_sync(coro: Any, timeout: float | None = None) -> Any:
    """Run a coroutine on the providers' background loop and wait for its result (any thread)."""
    fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, _SYNC.loop())
    return fut.result(timeout)


def complete(model: Model, settings: Settings, messages: Sequence[Message], **params: Any) -> ChatResult:
    """Synchronous ``chat`` for non-async callers (evals, agent, CLI)."""
    provider = get_provider(model, settings)
    return run_sync(provider.chat(list(messages), **params))
