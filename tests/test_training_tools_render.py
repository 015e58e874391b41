"""Rendering tool conversations for training: the template's tool support or the fallback, and the loss mask."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from modelsteward.providers.chatformat import (
    chat_inputs,
    fallback_messages,
    parse_tool_calls,
    render_tool_call,
    template_supports_tools,
)
from modelsteward.training.data import IGNORE, read_jsonl, tokenize_chat
from training_helpers import base_model_dir

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
HISTORY_CALL = {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Bergen"}'}}
ROW: dict[str, Any] = {"tools": TOOLS, "parallel_tool_calls": False, "messages": [
    {"role": "system", "content": "You help travellers."},
    {"role": "user", "content": "Weather in Bergen?"},
    {"role": "assistant", "content": None, "tool_calls": [HISTORY_CALL], "weight": 0},
    {"role": "tool", "tool_call_id": "call_0", "content": "rain, 7C"},
    {"role": "assistant", "content": "Rain in Bergen.", "weight": 0},
    {"role": "user", "content": "And in Oslo?"},
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
]}

# A small ChatML template written for this test that renders tools, tool calls and tool results
# (the way Hermes-style templates do), to exercise the path where the tokenizer's template knows tools.
TOOL_TEMPLATE = (
    "{%- if tools %}<|im_start|>system\n{{ messages[0]['content'] if messages[0]['role'] == 'system' else '' }}"
    "\nTOOLS:{% for t in tools %} {{ t['function']['name'] }}{% endfor %}<|im_end|>\n{% endif %}"
    "{%- for m in messages %}{%- if m['role'] == 'system' and tools %}{%- elif m['role'] == 'assistant' and "
    "m.get('tool_calls') %}<|im_start|>assistant\n{% for c in m['tool_calls'] %}CALL {{ c['function']['name'] }} "
    "{{ c['function']['arguments'] | tojson }}{% endfor %}<|im_end|>\n{%- elif m['role'] == 'tool' %}"
    "<|im_start|>tool\n{{ m['content'] }}<|im_end|>\n{%- else %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
    "<|im_end|>\n{%- endif %}{%- endfor %}{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def tok():  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base_model_dir())


def _learned(tok, ex) -> str:  # type: ignore[no-untyped-def]
    return tok.decode([t for t, lab in zip(ex.input_ids, ex.labels) if lab != IGNORE])


def test_fallback_rendering_and_parse_round_trip() -> None:
    msgs, flags = fallback_messages(ROW["messages"], TOOLS, [False] * 6 + [True])
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant", "user", "assistant"]
    assert flags == [False] * 6 + [True]
    system = msgs[0]["content"]
    assert system.startswith("You help travellers.\n\n# Tools") and json.dumps(TOOLS[0]) in system
    assert msgs[2]["content"] == '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Bergen"}}\n</tool_call>'
    assert msgs[3]["content"] == "<tool_response>\nrain, 7C\n</tool_response>"
    # two tool results in a row merge into one user turn; no system message: one is added
    two = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "", "tool_calls": [CALL, HISTORY_CALL]},
           {"role": "tool", "tool_call_id": "call_1", "content": "a"}, {"role": "tool", "tool_call_id": "call_0", "content": "b"}]
    msgs2, flags2 = fallback_messages(two, TOOLS, [False, True, False, False])
    assert [m["role"] for m in msgs2] == ["system", "user", "assistant", "user"] and flags2 == [False, False, True, False]
    assert msgs2[3]["content"].count("<tool_response>") == 2
    # what the model generates in this format reads back as the same OpenAI tool calls
    content, calls = parse_tool_calls("Checking.\n" + msgs2[2]["content"])
    assert content == "Checking." and [c["function"]["name"] for c in calls] == ["get_weather", "get_weather"]
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [{"city": "Oslo"}, {"city": "Bergen"}]
    assert parse_tool_calls(render_tool_call(CALL)) == (None, [{**CALL, "id": "call_0"}])
    assert parse_tool_calls("no calls <tool_call>not json</tool_call>") == (
        "no calls <tool_call>not json</tool_call>", [])


def test_smollm2_template_has_no_tools_so_the_fallback_is_used(tok) -> None:  # type: ignore[no-untyped-def]
    assert template_supports_tools(tok) is False
    ex = tokenize_chat(tok, ROW, max_seq_len=1024)
    assert ex is not None
    prompt, learned = tok.decode(ex.input_ids), _learned(tok, ex)
    # only the final assistant turn (the gateway's tool call) is learned, with its end-of-turn token
    assert learned == '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call><|im_end|>\n'
    assert "Bergen" not in learned and "Rain" not in learned and "<tools>" not in learned
    assert '<tools>\n{"type": "function", "function": {"name": "get_weather"' in prompt
    assert "<tool_response>\nrain, 7C\n</tool_response>" in prompt and "Bergen" in prompt
    # labels sit exactly on the target's tokens: the IGNOREs form a prefix
    first = next(i for i, lab in enumerate(ex.labels) if lab != IGNORE)
    assert all(lab == IGNORE for lab in ex.labels[:first]) and ex.labels[first:] == ex.input_ids[first:]


def test_a_template_with_tool_support_renders_them_itself(tok) -> None:  # type: ignore[no-untyped-def]
    tool_tok = copy.deepcopy(tok)
    tool_tok.chat_template = TOOL_TEMPLATE
    assert template_supports_tools(tool_tok) is True
    msgs, tools, _ = chat_inputs(tool_tok, ROW["messages"], TOOLS)
    assert tools == TOOLS and msgs[-1]["tool_calls"][0]["function"]["arguments"] == {"city": "Oslo"}  # a dict
    ex = tokenize_chat(tool_tok, ROW, max_seq_len=1024)
    assert ex is not None
    assert _learned(tool_tok, ex) == 'CALL get_weather {"city": "Oslo"}<|im_end|>'  # this template strips the newline
    prompt = tool_tok.decode(ex.input_ids)
    assert "TOOLS: get_weather" in prompt and "<tool_call>" not in prompt and "<|im_start|>tool\nrain, 7C" in prompt


def test_plain_rows_render_as_before(tok) -> None:  # type: ignore[no-untyped-def]
    msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there."}]
    ex = tokenize_chat(tok, msgs, max_seq_len=256)
    direct = tok.apply_chat_template(msgs, tokenize=True)
    direct = direct["input_ids"] if hasattr(direct, "keys") else direct
    assert ex is not None and ex.input_ids == list(direct) and _learned(tok, ex) == "Hello there.<|im_end|>\n"


def test_read_jsonl_keeps_tools_and_refuses_broken_lines(tmp_path: Path) -> None:
    from modelsteward.errors import InvalidInput

    p = tmp_path / "train.jsonl"
    p.write_text(json.dumps(ROW) + "\n" + json.dumps({"messages": ROW["messages"][:2]}) + "\n")
    rows = read_jsonl(p)
    assert isinstance(rows[0], dict) and rows[0]["tools"] == TOOLS and isinstance(rows[1], list)
    p.write_text(json.dumps(ROW) + "\n{oops\n")
    with pytest.raises(InvalidInput, match=r"train.jsonl:2: not JSON"):
        read_jsonl(p)


@pytest.mark.slow
def test_smollm2_trains_on_a_tool_dataset_built_from_logs(steward, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Logged tool calls -> the dataset builder -> the trainer (real SmolLM2-135M, a few LoRA steps)."""
    from modelsteward.training.dataset import DatasetSpec, build_from_connection
    from modelsteward.training.trainer import TrainConfig, train
    from training_helpers import log_row

    cities = ["Oslo", "Bergen", "Lima", "Quito", "Hanoi", "Dakar", "Perth", "Turin", "Cork", "Riga", "Bern", "Split"]
    rows = []
    for i, city in enumerate(cities * 2):
        call = {"id": f"call_{i}", "type": "function",
                "function": {"name": "get_weather", "arguments": json.dumps({"city": city, "day": i})}}
        rows.append(log_row(f"w{i}", f"What is the weather in {city} on day {i}?", None,
                            request={"tools": TOOLS, "tool_choice": "auto"},
                            answer={"content": None, "tool_calls": [call], "finish_reason": "tool_calls"}))
    steward.registry.add_use_case("story", description="story game")
    steward.logs.append_many(rows)
    steward.logs.flush()
    con = steward.logs.reader.connect(lock_down=False)
    card = build_from_connection(con, DatasetSpec(use_case="story", min_rows=4, validation_fraction=0.2,
                                                  near_dup_threshold=None), tmp_path / "ds")
    train_rows, val_rows = read_jsonl(card.train_path), read_jsonl(card.validation_path)
    assert all(isinstance(r, dict) and r["tools"] == TOOLS for r in train_rows + val_rows)
    cfg = TrainConfig(max_steps=4, batch_size=4, max_seq_len=384, learning_rate=2e-3, eval_every=4, seed=1)
    res = train(cfg, base_model_dir(), train_rows, val_rows, tmp_path / "run", progress_bar=False)
    assert res.status == "succeeded" and res.dropped_rows == 0 and res.best_val_loss is not None
    losses = [h["train_loss"] for h in res.history]
    assert losses[-1] < losses[0], losses
