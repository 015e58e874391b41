"""How a model is called: an OpenAI-compatible HTTP provider and a local transformers provider.

Public surface (pinned by ``tests/test_gateway_providers.py``)::

    provider = get_provider(model_row, settings)          # cached per process
    result = await provider.chat(messages, max_tokens=64)  # -> ChatResult
    async for chunk in provider.stream(messages): ...      # StreamChunk deltas, last one has usage
    result = complete(model_row, settings, messages)       # sync, for evals and the agent

Failures raise ``UpstreamError(status=..., retryable=...)`` (modelsteward.errors).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from modelsteward.errors import UpstreamError

# Loaded on first use (PEP 562): importing ``modelsteward.providers.endpoints`` (policies, read
# commands) must not load aiohttp, orjson or the local transformers provider.
_LAZY = {
    "ChatProvider": "base", "ChatResult": "base", "Message": "base", "StreamChunk": "base", "sampling_params": "base", "SamplingArgs": "base",
    "clear_provider_cache": "factory", "complete": "factory", "get_provider": "factory",
    "local_model_paths": "factory", "run_sync": "factory",
    "OpenAIHTTPProvider": "http", "close_sessions": "http",
    "API_KEY_ENV": "endpoints", "DEFAULT_BASE_URLS": "endpoints", "resolve_api_key": "endpoints",
    "resolve_base_url": "endpoints",
    "LocalProvider": "local",
}

if TYPE_CHECKING:
    from modelsteward.providers.base import ChatProvider, ChatResult, Message, SamplingArgs, StreamChunk, sampling_params
    from modelsteward.providers.endpoints import API_KEY_ENV, DEFAULT_BASE_URLS, resolve_api_key, resolve_base_url
    from modelsteward.providers.factory import (
        clear_provider_cache,
        complete,
        get_provider,
        local_model_paths,
        run_sync,
    )
    from modelsteward.providers.http import OpenAIHTTPProvider, close_sessions
    from modelsteward.providers.local import LocalProvider


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value


__all__ = [
    "ChatResult",
    "StreamChunk",
    "ChatProvider",
    "Message",
    "UpstreamError",
    "get_provider",
    "complete",
    "run_sync",
    "clear_provider_cache",
    "local_model_paths",
    "SamplingArgs",
    "sampling_params",
    "OpenAIHTTPProvider",
    "LocalProvider",
    "DEFAULT_BASE_URLS",
    "API_KEY_ENV",
    "resolve_base_url",
    "resolve_api_key",
    "close_sessions",
]
