"""What every importer shares: the row it yields, skips, errors, and message normalisation.

An importer module exposes ``NAME``, ``sniff(record) -> bool`` (does this one JSON record look like
the format?) and ``rows(record, where) -> Iterator[dict | Skip]`` (the log rows of one record, in
the ``LogStore`` row shape, plus ``Skip`` markers for what it leaves out and why).  A record is one
line of a JSON-lines file, or one element of a document's list.  ``request_id`` is always derived
from the source's own id (``otel:<spanId>``, ``langfuse:<id>``, ...), so importing a file twice
finds the same ids and adds nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson

from modelsteward.errors import InvalidInput

__all__ = ["Skip", "RecordError", "as_messages", "as_text", "iso_us", "model_id", "provider_of"]


@dataclass(frozen=True)
class Skip:
    """One source item left out on purpose, with a short reason (``not_a_chat_span``, ...)."""

    reason: str


class RecordError(InvalidInput):
    """A record the importer cannot read; the driver adds the file and line."""


# provider names as the sources spell them -> the registry's provider names
_PROVIDERS = {
    "gcp.gemini": "google", "gcp.vertex_ai": "google", "gcp.gen_ai": "google", "gemini": "google",
    "vertex_ai": "google", "vertex_ai_beta": "google", "google_ai_studio": "google", "az.ai.openai": "azure",
    "azure.ai.openai": "azure", "aws.bedrock": "bedrock", "huggingface": "huggingface",
}
# model-name prefixes that tell the provider when a source gives none (Langfuse exports often don't)
_PREFIXES = (("gpt-", "openai"), ("o1", "openai"), ("o3", "openai"), ("o4", "openai"), ("chatgpt", "openai"),
             ("text-davinci", "openai"), ("claude", "anthropic"), ("gemini", "google"))


def provider_of(provider: Any, model: str) -> str | None:
    if provider:
        p = str(provider).strip().lower()
        return _PROVIDERS.get(p, p)
    low = model.lower()
    for prefix, name in _PREFIXES:
        if low.startswith(prefix):
            return name
    return None


def model_id(provider: Any, model: Any) -> str | None:
    """``provider:model`` as the registry spells model ids; the model alone when no provider is known."""
    if not model:
        return None
    m = str(model).strip()
    if ":" in m and not provider:
        return m  # already a steward model id
    p = provider_of(provider, m)
    return f"{p}:{m}" if p else m


def iso_us(value: Any, field: str) -> int | None:
    """An ISO 8601 time (or epoch seconds/ms) -> microseconds since the epoch, UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        secs = value / 1e6 if value > 1e14 else value / 1e3 if value > 1e11 else float(value)
        return round(secs * 1e6)
    if isinstance(value, str):
        try:
            d = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise RecordError(f"{field} {value!r} is not an ISO 8601 time.") from None
        if d.tzinfo is None:
            d = d.replace(tzinfo=dt.timezone.utc)
        return (d - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(microseconds=1)
    raise RecordError(f"{field} {value!r} is not a time.")


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str):
        s = value.strip()
        if s[:1] in ("[", "{"):
            try:
                return orjson.loads(s)
            except orjson.JSONDecodeError:
                return value
    return value


def _content(value: Any) -> Any:
    """A message's content: text stays text; a list of parts keeps its text parts joined."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for p in value:
            if isinstance(p, str):
                texts.append(p)
            elif isinstance(p, dict) and p.get("type", "text") == "text":
                t = p.get("text", p.get("content"))
                if isinstance(t, str):
                    texts.append(t)
        if texts:
            return "".join(texts)
        return orjson.dumps(value).decode()
    if isinstance(value, dict):
        t = value.get("text", value.get("content"))
        return t if isinstance(t, str) else orjson.dumps(value).decode()
    return str(value)


def _message(m: Any) -> dict[str, Any] | None:
    if not isinstance(m, dict):
        return None
    role = m.get("role") or "user"
    if "parts" in m and "content" not in m:  # OTel GenAI (v1.37+) message: {role, parts:[{type, content}]}
        content = _content(m.get("parts"))
    else:
        content = _content(m.get("content"))
    out: dict[str, Any] = {"role": str(role), "content": content}
    if m.get("tool_calls"):
        out["tool_calls"] = m["tool_calls"]
    if m.get("name"):
        out["name"] = m["name"]
    return out


def as_messages(value: Any) -> list[dict[str, Any]] | None:
    """Whatever a source stored as the prompt -> OpenAI-style ``[{role, content}]`` (None if absent)."""
    value = _maybe_json(value)
    if value is None or value == "" or value == {} or value == []:
        return None
    if isinstance(value, dict):
        if isinstance(value.get("messages"), list):
            value = value["messages"]
        elif "role" in value:
            value = [value]
        elif isinstance(value.get("prompt"), str):
            return [{"role": "user", "content": value["prompt"]}]
        else:
            return [{"role": "user", "content": orjson.dumps(value).decode()}]
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, list):
        out = [m for m in (_message(x) for x in value) if m is not None]
        if not out and value:
            return [{"role": "user", "content": _content(value)}]
        return out or None
    return [{"role": "user", "content": str(value)}]


def as_text(value: Any) -> str | None:
    """Whatever a source stored as the answer -> its text (the first choice's message content)."""
    value = _maybe_json(value)
    if value is None or value == "" or value == {} or value == []:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if isinstance(value.get("choices"), list) and value["choices"]:
            c = value["choices"][0]
            if isinstance(c, dict):
                msg = c.get("message")
                if isinstance(msg, dict):
                    return as_text(msg.get("content")) if msg.get("content") is not None else (
                        orjson.dumps(msg["tool_calls"]).decode() if msg.get("tool_calls") else None)
                return as_text(c.get("text"))
        if "parts" in value:
            return _content(value["parts"])
        if "content" in value:
            return as_text(value["content"]) if not isinstance(value["content"], list) else _content(value["content"])
        if isinstance(value.get("message"), dict):
            return as_text(value["message"])
        if isinstance(value.get("text"), str):
            return value["text"]
        return orjson.dumps(value).decode()
    if isinstance(value, list):
        if value and all(isinstance(v, dict) and ("role" in v or "parts" in v) for v in value):
            return as_text(value[0])
        return _content(value)
    return str(value)


def num(value: Any, field: str, kind: type = int) -> Any:
    if value is None or value == "":
        return None
    if type(value) is kind:
        return value
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise RecordError(f"{field} {value!r} is not a number.") from None
