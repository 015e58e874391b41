"""The local provider with a request's tools: rendered by a chat template that supports them, else by the
trainer's fallback rendering (providers/chatformat.py); tool calls parsed out of the output."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from modelsteward.providers.base import ChatResult
from modelsteward.providers.local import LocalProvider
from modelsteward.providers.chatformat import template_supports_tools
from modelsteward.providers.local_tools import parse_tool_calls
from kinds_helpers import TOOLS

NAMES = {"get_weather", "get_time"}
# a Hermes-style template (the shape Qwen2.5 and Hermes models ship), enough to show the tools are rendered
TOOL_TEMPLATE = (
    "{% if tools %}<|im_start|>system\nTools: {% for t in tools %}{{ t['function']['name'] }} {% endfor %}<|im_end|>\n"
    "{% endif %}{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
    "{% if m['tool_calls'] is defined %}{% for c in m['tool_calls'] %}<tool_call>{{ c['function'] | tojson }}"
    "</tool_call>{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% endif %}")


def test_tool_calls_are_read_from_hermes_blocks_and_whole_json() -> None:
    text = 'Checking.<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>' \
           '<tool_call>{"name": "get_time", "arguments": {"city": "Rome"}}</tool_call>'
    rest, calls = parse_tool_calls(text, NAMES)
    assert rest == "Checking." and [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Paris"}
    rest, calls = parse_tool_calls('{"name": "get_time", "parameters": {"city": "Oslo"}}', NAMES)
    assert rest is None and json.loads(calls[0]["function"]["arguments"]) == {"city": "Oslo"}
    for plain in ('{"name": "launch_rockets", "arguments": {}}', "It is sunny in Paris.", "<tool_call>{oops</tool_call>"):
        assert parse_tool_calls(plain, NAMES) == (plain, [])  # unknown function or no call: stays text


def _provider_with_template(template: str | None) -> LocalProvider:
    from transformers import AutoTokenizer

    from training_helpers import base_model_dir

    p = LocalProvider("local:t", base_model_dir())
    tok = AutoTokenizer.from_pretrained(base_model_dir())
    if template is not None:
        tok.chat_template = template
    p._tok, p._model = tok, object()  # the prompt only: no weights loaded
    return p


@pytest.mark.slow  # loads transformers and SmolLM2's tokenizer (~20 s on a shared CPU)
def test_the_chat_template_renders_the_tools_when_it_supports_them() -> None:
    msgs = [{"role": "user", "content": "weather in Paris?"}]
    p = _provider_with_template(TOOL_TEMPLATE)
    assert template_supports_tools(p._tok)
    prompt = p._tok.decode(p._prompt_ids(msgs, TOOLS)[0])
    assert "Tools: get_weather get_time" in prompt
    smol = _provider_with_template(None)  # SmolLM2's own template knows no tools: the trainer's fallback rendering
    assert not template_supports_tools(smol._tok)
    prompt = smol._tok.decode(smol._prompt_ids(msgs, TOOLS)[0])
    assert "<tools>" in prompt and '"get_weather"' in prompt and "<tool_call>" in prompt
    assert "<tools>" not in smol._tok.decode(smol._prompt_ids(msgs)[0])


def test_openai_completion_offers_tools_and_returns_the_parsed_calls(monkeypatch: Any) -> None:
    p = LocalProvider("local:t", "/nonexistent")
    seen: list[dict[str, Any]] = []
    output = {"text": '<tool_call>{"name": "get_weather", "arguments": {"city": "Lyon"}}</tool_call>'}

    async def fake_chat(messages: Any, params: dict[str, Any]) -> ChatResult:
        seen.append(params)
        return ChatResult(output["text"], 5, 7, 1.0, "stop", "local:t")

    monkeypatch.setattr(p, "_chat", fake_chat)
    body = {"messages": [{"role": "user", "content": "weather in Lyon?"}], "tools": TOOLS, "max_tokens": 20}
    resp = asyncio.run(p.openai_completion(body))
    choice = resp["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    assert choice["message"]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Lyon"}'}
    assert seen[0]["tools"] == TOOLS and seen[0]["max_tokens"] == 20
    resp = asyncio.run(p.openai_completion({**body, "tool_choice": "none"}))  # tools turned off: text
    assert "tools" not in seen[1] and "tool_calls" not in resp["choices"][0]["message"]
    output["text"] = "It is sunny."
    resp = asyncio.run(p.openai_completion(body))  # a model that answers in text: a text answer
    assert resp["choices"][0]["message"] == {"role": "assistant", "content": "It is sunny."}
