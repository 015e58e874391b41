"""Scanners for the paid catalogs: OpenRouter, OpenAI, Anthropic, Google Gemini.

Base URLs (override with the env names given): OpenRouter ``https://openrouter.ai/api/v1``
(``STEWARD_OPENROUTER_BASE_URL``, path ``/models``); OpenAI ``https://api.openai.com/v1``
(``STEWARD_OPENAI_BASE_URL``, path ``/models``); Anthropic ``https://api.anthropic.com``
(``STEWARD_ANTHROPIC_BASE_URL``, path ``/v1/models``); Google
``https://generativelanguage.googleapis.com`` (``STEWARD_GOOGLE_BASE_URL``, path ``/v1beta/models``).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import httpx

from modelsteward.catalog.base import (
    HttpScanner,
    MissingField,
    ScannedModel,
    SourceError,
    SourceResult,
    as_list,
    register_scanner,
    require,
)
from modelsteward.catalog.openrouter import parse_openrouter_entry
from modelsteward.catalog.prices import lookup_price, price_table_info

__all__ = [
    "OpenRouterScanner", "OpenAIScanner", "AnthropicScanner", "GoogleScanner", "parse_openrouter_entry",
]

MAX_PAGES = 100  # a guard against a source that never stops paginating


@register_scanner
class OpenRouterScanner(HttpScanner):
    """OpenRouter ``GET /models``: both the older ``{data}`` and the current ``{data, total_count, links}``.

    The key is optional (the list endpoint is public); the default list holds text-output models.
    ``links.next`` is followed when present.
    """

    name = "openrouter"
    base_env = "STEWARD_OPENROUTER_BASE_URL"
    default_base = "https://openrouter.ai/api/v1"
    key_env = "OPENROUTER_API_KEY"

    def headers(self) -> dict[str, str]:
        h = super().headers()
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        return h

    def run(self, result: SourceResult) -> None:
        url: str | None = f"{self.base_url}/models"
        with self.client() as client:
            while url and result.pages < MAX_PAGES:
                payload = self.get_json(client, url)
                result.pages += 1
                self.parse_many(as_list(payload, "data", self.name), parse_openrouter_entry, result)
                nxt = (payload.get("links") or {}).get("next") if isinstance(payload.get("links"), dict) else None
                url = str(httpx.URL(url).join(nxt)) if nxt else None


# OpenAI's /v1/models lists every model of the account, chat or not; these are not text chat models.
_OPENAI_NON_CHAT = re.compile(
    r"(embedding|whisper|tts|dall-e|moderation|transcribe|realtime|audio|image|search|^babbage|^davinci|sora|"
    r"computer-use)"
)


@register_scanner
class OpenAIScanner(HttpScanner):
    """OpenAI ``GET /v1/models`` (``Authorization: Bearer``).

    The response has no prices and no context length.  They come from the project's price table
    (``price_table.json``, dated, sourced) where it has the model; otherwise they stay unknown
    (``metadata.price_unknown``).  Non-chat models (embeddings, audio, images, moderation) are
    filtered out and counted as ``filtered``.
    """

    name = "openai"
    base_env = "STEWARD_OPENAI_BASE_URL"
    default_base = "https://api.openai.com/v1"
    key_env = "OPENAI_API_KEY"
    key_required = True

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "Authorization": f"Bearer {self.api_key}"}

    def run(self, result: SourceResult) -> None:
        self.check_key()
        with self.client() as client:
            payload = self.get_json(client, f"{self.base_url}/models")
        result.pages = 1
        self.parse_many(as_list(payload, "data", self.name), self.parse, result)
        info = price_table_info()
        result.notes.append(
            f"OpenAI lists no prices or context: taken from the price table of {info['as_of']} where it has the "
            "model, else unknown."
        )

    def parse(self, raw: dict[str, Any]) -> ScannedModel | None:
        mid = str(require(raw, "id"))
        if _OPENAI_NON_CHAT.search(mid.lower()):
            return None
        return _with_table_price("openai", mid, mid, {"owned_by": raw.get("owned_by"), "created": raw.get("created")})


def _with_table_price(provider: str, mid: str, display: str, meta: dict[str, Any],
                      context_length: int | None = None, caps: set[str] | None = None) -> ScannedModel:
    entry = lookup_price(provider, mid)
    caps = set(caps or {"text"})
    meta = {k: v for k, v in meta.items() if v is not None}
    meta["modalities"] = meta.get("modalities") or {"input": ["text"], "output": ["text"]}
    if entry is None:
        meta["price_unknown"] = True
        meta["price_source"] = f"none: {provider} lists no prices and the price table has no entry"
        pin = pout = None
    else:
        info = price_table_info()
        pin, pout = entry["in"], entry["out"]
        meta["price_unknown"] = False
        meta["price_source"] = f"price table {info['as_of']} ({info['source'].split(';')[0]})"
        caps |= set(entry["capabilities"])
        context_length = context_length or entry["context_length"]
    return ScannedModel(provider=provider, model=mid, display_name=display, price_in_per_m=pin,
                        price_out_per_m=pout, context_length=context_length, capabilities=sorted(caps),
                        metadata=meta, kind="paid")


@register_scanner
class AnthropicScanner(HttpScanner):
    """Anthropic ``GET /v1/models`` (``x-api-key``, ``anthropic-version``), paginated with
    ``after_id=<last_id>`` while ``has_more``.  Prices from the price table, else unknown."""

    name = "anthropic"
    base_env = "STEWARD_ANTHROPIC_BASE_URL"
    default_base = "https://api.anthropic.com"
    key_env = "ANTHROPIC_API_KEY"
    key_required = True
    version: ClassVar[str] = "2023-06-01"
    page_size: ClassVar[int] = 100

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "x-api-key": self.api_key or "", "anthropic-version": self.version}

    def run(self, result: SourceResult) -> None:
        self.check_key()
        params: dict[str, Any] = {"limit": self.page_size}
        with self.client() as client:
            while result.pages < MAX_PAGES:
                payload = self.get_json(client, f"{self.base_url}/v1/models", params=params)
                result.pages += 1
                self.parse_many(as_list(payload, "data", self.name), self.parse, result)
                if not payload.get("has_more"):
                    break
                last = payload.get("last_id")
                if not last:
                    raise SourceError("anthropic: has_more is true but last_id is missing.", kind="bad_shape",
                                      retryable=False)
                params = {"limit": self.page_size, "after_id": last}

    def parse(self, raw: dict[str, Any]) -> ScannedModel | None:
        mid = str(require(raw, "id"))
        if raw.get("type", "model") != "model":
            return None
        ctx = raw.get("max_input_tokens")
        caps = {"text"}
        meta = {"created_at": raw.get("created_at"), "family": "claude"}
        if raw.get("max_tokens"):
            meta["max_output_tokens"] = raw["max_tokens"]
        return _with_table_price("anthropic", mid, str(raw.get("display_name") or mid), meta,
                                 context_length=int(ctx) if ctx else None, caps=caps)


@register_scanner
class GoogleScanner(HttpScanner):
    """Gemini ``GET /v1beta/models`` (``x-goog-api-key``), ``pageSize``/``pageToken`` while a
    ``nextPageToken`` comes back.  ``models/`` is stripped; only models whose
    ``supportedGenerationMethods`` include ``generateContent`` are kept (others: ``filtered``)."""

    name = "google"
    base_env = "STEWARD_GOOGLE_BASE_URL"
    default_base = "https://generativelanguage.googleapis.com"
    key_env = "GEMINI_API_KEY"
    key_required = True
    page_size: ClassVar[int] = 100

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "x-goog-api-key": self.api_key or ""}

    def run(self, result: SourceResult) -> None:
        self.check_key()
        params: dict[str, Any] = {"pageSize": self.page_size}
        with self.client() as client:
            while result.pages < MAX_PAGES:
                payload = self.get_json(client, f"{self.base_url}/v1beta/models", params=params)
                result.pages += 1
                self.parse_many(as_list(payload, "models", self.name), self.parse, result)
                token = payload.get("nextPageToken")
                if not token:
                    break
                params = {"pageSize": self.page_size, "pageToken": token}

    def parse(self, raw: dict[str, Any]) -> ScannedModel | None:
        name = str(require(raw, "name"))
        methods = raw.get("supportedGenerationMethods")
        if not isinstance(methods, list):
            raise MissingField("missing 'supportedGenerationMethods'")
        if "generateContent" not in methods:
            return None
        mid = name.removeprefix("models/")
        ctx = raw.get("inputTokenLimit")
        caps = {"text"}
        if raw.get("thinking"):
            caps.add("reasoning")
        meta = {"version": raw.get("version"), "max_output_tokens": raw.get("outputTokenLimit"), "family": "gemini"
                if mid.startswith("gemini") else mid.split("-", 1)[0]}
        return _with_table_price("google", mid, str(raw.get("displayName") or mid), meta,
                                 context_length=int(ctx) if ctx else None, caps=caps)
