"""Where a provider's API is and which environment variable holds its key (no HTTP client imported:
policies and read commands use these without loading aiohttp)."""

from __future__ import annotations

import os
from typing import Any

from modelsteward.errors import ConfigError

__all__ = ["DEFAULT_BASE_URLS", "API_KEY_ENV", "resolve_base_url", "resolve_api_key"]

DEFAULT_BASE_URLS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "anthropic": "https://api.anthropic.com/v1",
    "google": "https://generativelanguage.googleapis.com/v1beta/openai",
    "huggingface": "https://router.huggingface.co/v1",
    "vllm": "http://127.0.0.1:8000/v1",
}
API_KEY_ENV: dict[str, str] = {
    "openai": "OPENAI_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "google": "GEMINI_API_KEY",
    "huggingface": "HF_TOKEN",
    "vllm": "VLLM_API_KEY",
    "custom": "STEWARD_CUSTOM_API_KEY",
}


def resolve_base_url(provider: str, base_url: str | None = None) -> str:
    """model.base_url, else ``STEWARD_<PROVIDER>_BASE_URL``, else the provider's public default."""
    url = base_url or os.environ.get(f"STEWARD_{provider.upper()}_BASE_URL")
    if not url and provider == "ollama":
        host = os.environ.get("OLLAMA_HOST", "127.0.0.1:11434")
        if not host.startswith(("http://", "https://")):
            host = "http://" + host
        url = host.rstrip("/") + "/v1"
    if not url:
        url = DEFAULT_BASE_URLS.get(provider)
    if not url:
        raise ConfigError(
            f"No base URL for provider {provider!r}: register the model with --base-url or set "
            f"STEWARD_{provider.upper()}_BASE_URL."
        )
    return url.rstrip("/")


def resolve_api_key(provider: str, meta: dict[str, Any] | None = None) -> str | None:
    """The key from the provider's usual environment variable (or the one ``meta['api_key_env']`` names)."""
    env = (meta or {}).get("api_key_env") or API_KEY_ENV.get(provider)
    return os.environ.get(env) if env else None
