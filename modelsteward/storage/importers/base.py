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
from modelsteward.exchange import Answer, answer_from_completion, answer_from_message, normalise_tool_call

__all__ = ["Skip", "RecordError", "as_messages", "as_answer", "as_text", "maybe_json", "iso_us", "model_id", "provider_of"]


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


def maybe_json(value: Any) -> Any:
    if isinstance(value, str):
        s = value.strip()
        if s[:1] in ("[", "{"):
            try:
                return orjson.loads(s)
            except orjson.JSONDecodeError:
                return value
    return value


_TEXT_PARTS = frozenset(("text", "input_text", "output_text"))


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _content(value: Any) -> Any:
    """A message's content in the canonical shape: text stays text; a list of only text parts is
    their text joined (what the model read); a list with other parts (images, audio) is kept whole
    as OpenAI content parts."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for p in value:
            if isinstance(p, str):
                texts.append(p)
            elif isinstance(p, dict) and p.get("type", "text") in _TEXT_PARTS:
                t = p.get("text", p.get("content"))
                if isinstance(t, str):
                    texts.append(t)
            elif isinstance(p, dict) and p.get("type"):
                return value  # multi-part content (image_url, input_audio, ...): kept as sent
        if texts or not value:
            return "".join(texts)
        return orjson.dumps(value).decode()
    if isinstance(value, dict):
        t = value.get("text", value.get("content"))
        return t if isinstance(t, str) else orjson.dumps(value).decode()
    return str(value)


def _media_part(p: dict[str, Any]) -> dict[str, Any] | None:
    """An OTel ``uri`` / ``blob`` part as an OpenAI image part (other modalities are not chat content)."""
    if p.get("modality") not in (None, "image"):
        return None
    if p.get("type") == "uri" and isinstance(p.get("uri"), str):
        return {"type": "image_url", "image_url": {"url": p["uri"]}}
    if p.get("type") == "blob" and isinstance(p.get("content"), str):
        return {"type": "image_url", "image_url": {"url": f"data:{p.get('mime_type') or 'image/png'};base64,{p['content']}"}}
    return None


def _otel_parts(role: str, parts: Any) -> list[dict[str, Any]]:
    """An OTel GenAI message (``{role, parts}``, semantic conventions v1.37+) as OpenAI messages:
    ``text`` parts -> content, ``tool_call`` parts -> the assistant's ``tool_calls`` (arguments as
    JSON text), each ``tool_call_response`` part -> a tool turn with its ``tool_call_id``, image
    ``uri`` / ``blob`` parts -> ``image_url`` parts.  Other parts (reasoning, ...) are not part of a chat
    request and are left out."""
    texts: list[str] = []
    media: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    tool_turns: list[dict[str, Any]] = []
    for p in parts if isinstance(parts, list) else [parts]:
        if isinstance(p, str):
            texts.append(p)
            continue
        if not isinstance(p, dict):
            continue
        kind = p.get("type", "text")
        if kind == "text" and isinstance(p.get("content"), str):
            texts.append(p["content"])
        elif kind == "tool_call":
            calls.append({"id": str(p.get("id") or f"call_{len(calls)}"), "type": "function",
                          "function": {"name": p.get("name"), "arguments": _json_text(p.get("arguments") or {})}})
        elif kind == "tool_call_response":
            result = p.get("response", p.get("result"))
            tool_turns.append({"role": "tool", "tool_call_id": str(p.get("id") or ""),
                               "content": "" if result is None else _json_text(result)})
        elif kind in ("uri", "blob") and (part := _media_part(p)) is not None:
            media.append(part)
    if tool_turns:
        return tool_turns
    content: Any = "".join(texts)
    if media:
        content = [{"type": "text", "text": t} for t in texts] + media
    msg: dict[str, Any] = {"role": role, "content": content}
    if calls:
        msg["tool_calls"] = calls
        if not content:
            msg["content"] = None
    return [msg]


def _message(m: Any, role: str | None = None) -> list[dict[str, Any]]:
    """One source message as OpenAI chat messages (usually one; an OTel tool message with several
    responses gives several tool turns)."""
    if not isinstance(m, dict):
        return []
    role = str(m.get("role") or role or "user")
    if "parts" in m and "content" not in m:
        return _otel_parts(role, m.get("parts"))
    out: dict[str, Any] = {"role": role, "content": _content(m.get("content"))}
    calls = m.get("tool_calls")
    if calls:
        try:
            out["tool_calls"] = [normalise_tool_call(c, i) for i, c in enumerate(calls)]
        except InvalidInput as exc:
            raise RecordError(f"{role} message: {exc.message}") from None
    elif m.get("function_call"):
        out["function_call"] = m["function_call"]
    if role == "tool":
        tcid = m.get("tool_call_id", m.get("id"))
        if tcid:
            out["tool_call_id"] = str(tcid)
    if m.get("name"):
        out["name"] = m["name"]
    if m.get("refusal"):
        out["refusal"] = m["refusal"]
    return [out]


def as_messages(value: Any) -> list[dict[str, Any]] | None:
    """Whatever a source stored as the prompt -> OpenAI chat messages (None if absent): tool calls
    of assistant turns, ``tool_call_id`` of tool turns and multi-part content kept."""
    value = maybe_json(value)
    if value is None or value == "" or value == {} or value == []:
        return None
    if isinstance(value, dict):
        if isinstance(value.get("messages"), list):
            value = value["messages"]
        elif "role" in value or "parts" in value:
            value = [value]
        elif isinstance(value.get("prompt"), str):
            return [{"role": "user", "content": value["prompt"]}]
        else:
            return [{"role": "user", "content": orjson.dumps(value).decode()}]
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, list):
        out = [msg for x in value for msg in _message(x)]
        if not out and value:
            return [{"role": "user", "content": _content(value)}]
        return out or None
    return [{"role": "user", "content": str(value)}]


def as_answer(value: Any, finish_reason: Any = None) -> Answer | None:
    """Whatever a source stored as the answer -> a whole ``exchange.Answer`` (content, tool calls,
    refusal, finish reason), or None when nothing was stored.  Read: a chat completion
    (``choices``), an assistant message (OpenAI's or OTel's ``{role, parts, finish_reason}``), a
    choice (``{message, finish_reason}``), a list of output messages (the first), or text."""
    value = maybe_json(value)
    if value is None or value == "" or value == {} or value == []:
        return None
    fr = finish_reason if isinstance(finish_reason, str) else None
    if isinstance(value, str):
        return {"content": value, "finish_reason": fr}
    if isinstance(value, list):
        if all(isinstance(v, dict) and ("role" in v or "parts" in v) for v in value):
            return as_answer(value[0], fr)
        return {"content": _content(value), "finish_reason": fr}
    if not isinstance(value, dict):
        return {"content": str(value), "finish_reason": fr}
    if isinstance(value.get("choices"), list) and value["choices"]:
        c = value["choices"][0]
        if isinstance(c, dict) and not isinstance(c.get("message"), dict) and "text" in c:  # a text completion
            return {"content": _content(c.get("text")), "finish_reason": c.get("finish_reason") or fr}
        ans = answer_from_completion(value)
        if ans.get("content") is not None:
            ans["content"] = _content(ans["content"])
        ans["finish_reason"] = ans.get("finish_reason") or fr
        return ans
    fr = value.get("finish_reason") if isinstance(value.get("finish_reason"), str) else fr
    if isinstance(value.get("message"), dict):
        return as_answer(value["message"], fr)
    if "parts" in value or "role" in value or "tool_calls" in value or "content" in value:
        msgs = _message(value, "assistant")
        if not msgs:
            return None
        try:
            ans = answer_from_message(msgs[0], fr)
        except InvalidInput as exc:
            raise RecordError(f"answer: {exc.message}") from None
        return ans
    if isinstance(value.get("text"), str):
        return {"content": value["text"], "finish_reason": fr}
    return {"content": orjson.dumps(value).decode(), "finish_reason": fr}


def as_text(value: Any) -> str | None:
    """Whatever a source stored as text (the answer's content when it is an answer)."""
    ans = as_answer(value)
    if ans is None:
        return None
    content = ans.get("content")
    return content if isinstance(content, str) or content is None else _content(content)


def num(value: Any, field: str, kind: type = int) -> Any:
    if value is None or value == "":
        return None
    if type(value) is kind:
        return value
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise RecordError(f"{field} {value!r} is not a number.") from None
