"""Helpers for the fine-tuning tests: log rows, a tiny random Llama, the cached SmolLM2 folder."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

SYSTEM = "You are the narrator of a story game."


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def log_row(rid: str, prompt: str, response: str, *, use_case: str = "story", hours_ago: float = 1.0,
            **extra: Any) -> dict[str, Any]:
    row = {
        "ts": (now() - dt.timedelta(hours=hours_ago)).isoformat(), "request_id": rid, "use_case": use_case,
        "model_id": "local:smollm2-135m-instruct", "role": "primary", "status": "ok",
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}],
        "response": response, "input_tokens": 10, "output_tokens": 10, "latency_ms": 100.0, "cost_usd": 0.0,
    }
    row.update(extra)
    return row


def story_rows(n: int, use_case: str = "story") -> list[dict[str, Any]]:
    """``n`` distinct, clean rows (different enough not to be near duplicates)."""
    colours = ["red", "blue", "green", "amber", "violet", "silver", "black", "white"]
    animals = ["fox", "crow", "otter", "lynx", "heron", "badger", "moth", "stag"]
    out = []
    for i in range(n):
        c, a = colours[i % 8], animals[(i // 8) % 8]
        out.append(log_row(
            f"s{i}", f"Tell me about the {c} {a} number {i} in the forest {i * 37}.",
            f"The {c} {a} {i} lives by stone {i * 11}; it hums tune {i * 7} at dusk and sleeps in hollow {i * 3}.",
            use_case=use_case,
        ))
    return out


def base_model_dir() -> Path:
    from modelsteward.providers.local_assets import ensure_base_model
    from modelsteward.settings import Settings

    return ensure_base_model(Settings().cache_dir)


def tiny_llama(path: Path, hidden: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """A randomly initialised Llama with SmolLM2's tokenizer (and chat template), saved to ``path``."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(base_model_dir())
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def chat_rows(n: int) -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": f"What is the password of door {i % 4}?"},
             {"role": "assistant", "content": f"The password of door {i % 4} is tangerine-{i % 4}."}] for i in range(n)]
