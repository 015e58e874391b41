"""How a model is called: an OpenAI-compatible HTTP provider and a local transformers provider.

Public surface (pinned by ``tests/test_gateway_providers.py``)::

    provider = get_provider(model_row, settings)          # cached per process
    result = await provider.chat(messages, max_tokens=64)  # -> ChatResult
    async for chunk in provider.stream(messages): ...      # StreamChunk deltas, last one has usage
    result = complete(model_row, settings, messages)       # sync, for evals and the agent

Failures raise ``UpstreamError(status=..., retryable=...)`` (modelsteward.errors).
"""

from modelsteward.errors import UpstreamError
from modelsteward.providers.base import ChatProvider, ChatResult, Message, SamplingArgs, StreamChunk, sampling_params
from modelsteward.providers.factory import clear_provider_cache, complete, get_provider, local_model_paths, run_sync
from modelsteward.providers.http import (
    API_KEY_ENV,
    DEFAULT_BASE_URLS,
    OpenAIHTTPProvider,
    close_sessions,
    resolve_api_key,
    resolve_base_url,
)
from modelsteward.providers.local import LocalProvider

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
