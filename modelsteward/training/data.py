"""Chat rows -> token ids with labels on assistant tokens only; batching and optional packing.

Each conversation is rendered with the tokenizer's chat template one message at a time; the tokens
a message adds are labelled when it is a target assistant message (``is_target``: the gateway's
response, never a client-written turn of the history; its ``<|im_start|>assistant`` header
is part of the prompt, its end-of-turn token is learned, so the model learns to stop).  Rows whose
assistant tokens fall entirely beyond ``max_seq_len`` are dropped and counted.

A row is its ``messages`` list, or the whole ``{"messages", "tools", "parallel_tool_calls"}``
object when it carries tools (``read_jsonl``).  Tools and tool calls are rendered by
``providers.chatformat.chat_inputs``: the template's own ``apply_chat_template(..., tools=...)``
when it renders tools, else the documented fallback (tools as a JSON block in the system message,
calls as ``<tool_call>{json}</tool_call>`` text, results as ``<tool_response>`` user turns) -- the
same rendering the local provider prompts with.  A tool-call target learns its ``<tool_call>``
text (or the template's call syntax) and its end-of-turn token.

Packing (optional) fills each row with whole examples up to ``max_seq_len`` and restarts
``position_ids`` per example.  With ``flash_attention_2`` transformers turns those restarts into
per-example attention; with the default kernels examples in one row can attend to earlier ones
(a mild cross-contamination, documented trade-off for throughput on CPU).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from modelsteward.errors import InvalidInput
from modelsteward.providers.chatformat import chat_inputs

__all__ = ["Example", "Row", "read_jsonl", "is_target", "tokenize_chat", "tokenize_rows", "make_batches", "collate",
           "IGNORE"]

IGNORE = -100
# a training row: its messages, or the whole row when it carries tools / parallel_tool_calls
Row = Union[list[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Example:
    input_ids: list[int]
    labels: list[int]

    @property
    def n_target(self) -> int:
        return sum(1 for x in self.labels[1:] if x != IGNORE)


def read_jsonl(path: str | Path) -> list[Row]:
    """The rows of a dataset file: the ``messages`` list of a plain row, the whole object of a row
    with ``tools`` / ``parallel_tool_calls`` (so plain datasets read as they always did)."""
    out: list[Row] = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{path}:{n}: not JSON ({exc.msg}).") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("messages"), list):
                raise InvalidInput(f"{path}:{n}: expected {{\"messages\": [...]}} (OpenAI's fine-tuning format).")
            out.append(obj if obj.get("tools") or obj.get("parallel_tool_calls") is not None else obj["messages"])
    return out


def _ids(tok: Any, messages: list[dict[str, Any]], gen: bool, tools: list[Any] | None = None) -> list[int]:
    kw = {"tools": tools} if tools else {}
    out = tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=gen, **kw)
    if isinstance(out, dict) or hasattr(out, "keys"):
        out = out["input_ids"]
    return list(out)


def is_target(messages: list[dict[str, Any]], i: int) -> bool:
    """Whether message ``i`` is learned: an assistant turn with ``weight`` 1.

    Datasets built here give every assistant turn of the request history ``"weight": 0`` (the client
    wrote it) and leave the gateway's response unweighted.  Without any ``weight`` in the row (files
    from elsewhere, or built before weights), only the final assistant turn is a target, so a
    client-written turn never becomes one by default.
    """
    msg = messages[i]
    if msg.get("role") != "assistant":
        return False
    if any("weight" in m for m in messages):
        return msg.get("weight", 1) not in (0, 0.0, False)
    return i == len(messages) - 1


def tokenize_chat(tok: Any, row: Row, max_seq_len: int) -> Example | None:
    """Token ids and labels (``IGNORE`` outside target assistant turns); None when no target token fits."""
    messages = row["messages"] if isinstance(row, dict) else row
    tools = row.get("tools") if isinstance(row, dict) else None
    targets = [is_target(messages, i) for i in range(len(messages))]
    # templates see no weights; tools through the template or the fallback rendering
    plain, tools_arg, flags = chat_inputs(tok, messages, tools, targets)
    ids: list[int] = []
    labels: list[int] = []
    for i in range(len(plain)):
        if flags[i]:
            prefix = _ids(tok, plain[:i], True, tools_arg) if i else []
            full = _ids(tok, plain[: i + 1], False, tools_arg)
            if full[: len(prefix)] != prefix or prefix[: len(ids)] != ids:
                raise ValueError("chat template is not prefix-stable; cannot mask assistant tokens")
            labels += [IGNORE] * (len(prefix) - len(ids)) + full[len(prefix):]
            ids = full
    if not ids:
        return None
    ids, labels = ids[:max_seq_len], labels[:max_seq_len]
    ex = Example(ids, labels)
    return ex if ex.n_target > 0 else None


def tokenize_rows(tok: Any, rows: list[Row], max_seq_len: int) -> tuple[list[Example], int]:
    """Tokenise every row; returns (examples, rows dropped because nothing to learn fitted)."""
    out, dropped = [], 0
    for msgs in rows:
        ex = tokenize_chat(tok, msgs, max_seq_len)
        if ex is None:
            dropped += 1
        else:
            out.append(ex)
    return out, dropped


def pack(examples: list[Example], max_seq_len: int) -> list[tuple[list[int], list[int], list[int]]]:
    """Greedy first-fit of whole examples into rows: (ids, labels, position_ids) per row."""
    rows: list[tuple[list[int], list[int], list[int]]] = []
    for ex in sorted(examples, key=lambda e: -len(e.input_ids)):
        for ids, labels, pos in rows:
            if len(ids) + len(ex.input_ids) <= max_seq_len:
                # The first label of a packed example must not be predicted from the previous one.
                ids += ex.input_ids
                labels += [IGNORE] + ex.labels[1:]
                pos += list(range(len(ex.input_ids)))
                break
        else:
            rows.append((list(ex.input_ids), [IGNORE] + list(ex.labels[1:]), list(range(len(ex.input_ids)))))
    return rows


def make_batches(
    examples: list[Example], batch_size: int, max_seq_len: int, packing: bool
) -> list[list[tuple[list[int], list[int], list[int]]]]:
    """Fixed list of micro-batches (the order within an epoch is chosen by the trainer)."""
    if packing:
        rows = pack(examples, max_seq_len)
    else:
        rows = [(e.input_ids, e.labels, list(range(len(e.input_ids)))) for e in examples]
    return [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]


def collate(batch: list[tuple[list[int], list[int], list[int]]], pad_id: int) -> dict[str, Any]:
    """Right-padded tensors: input_ids, attention_mask, labels, position_ids."""
    import torch

    n = max(len(r[0]) for r in batch)
    ids = torch.full((len(batch), n), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), n), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), n), dtype=torch.long)
    pos = torch.zeros((len(batch), n), dtype=torch.long)
    for i, (a, b, p) in enumerate(batch):
        ids[i, : len(a)] = torch.tensor(a)
        labels[i, : len(b)] = torch.tensor(b)
        mask[i, : len(a)] = 1
        pos[i, : len(p)] = torch.tensor(p)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "position_ids": pos}
