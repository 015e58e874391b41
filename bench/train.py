"""Benchmark: LoRA training tokens/s on SmolLM2-135M, our loop against a plain peft loop, same run.

    .venv/bin/python bench/train.py [--steps 6] [--batch-size 4] [--seq-len 256] [--repeats 1] [--threads N]

Both loops train the same LoRA (r=8, alpha=16, q_proj/v_proj) on the same chat rows with the same
batch size, sequence length, AdamW and fp32 (CPU; bf16 autocast on a GPU).  "Tokens" are the
non-padding tokens fed forward.  The first step of each loop is a warm-up and is not timed.
The loops alternate (plain, ours, plain, ours ...) so background load hits both alike; the
median per loop is reported as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def rows(n: int) -> list[list[dict[str, str]]]:
    out = []
    for i in range(n):
        story = " ".join(f"The lantern {i} glows over harbour {j} while the crow counts {i * j} coins." for j in range(8))
        out.append([{"role": "system", "content": "You narrate a story game."},
                    {"role": "user", "content": f"Continue the tale of lantern {i}."},
                    {"role": "assistant", "content": story}])
    return out


def plain_peft(base: Path, data: list, steps: int, batch: int, seq: int) -> float:
    """The textbook loop: tokenizer chat template, right padding, model(labels=...), AdamW."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                                             task_type="CAUSAL_LM"))
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(dev).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    texts = [tok.apply_chat_template(r, tokenize=False) for r in data]
    tokens, t0 = 0, 0.0
    for step in range(steps + 1):
        if step == 1:
            t0 = time.perf_counter()
        chunk = [texts[(step * batch + i) % len(texts)] for i in range(batch)]
        enc = tok(chunk, return_tensors="pt", padding=True, truncation=True, max_length=seq).to(dev)
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=dev == "cuda"):
            loss = model(**enc, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step >= 1:
            tokens += int(enc["attention_mask"].sum())
    return tokens / (time.perf_counter() - t0)


def ours(base: Path, data: list, steps: int, batch: int, seq: int) -> float:
    from modelsteward.training.trainer import TrainConfig, train

    cfg = TrainConfig(max_steps=steps + 1, batch_size=batch, max_seq_len=seq, eval_every=10_000, patience=None,
                      save_every=10_000, learning_rate=2e-4, warmup_steps=0)
    with tempfile.TemporaryDirectory() as out:
        res = train(cfg, base, data, [], Path(out), progress_bar=False, resume=False,
                    on_step=None, should_stop=None)
    timed = res.history[1:]  # step 1 is the warm-up
    return sum(h["tokens"] for h in timed) / sum(h["step_s"] for h in timed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    args = ap.parse_args()
    import torch

    from modelsteward.providers.local_assets import ensure_base_model
    from modelsteward.settings import Settings

    if args.threads:
        torch.set_num_threads(args.threads)
    base = ensure_base_model(Settings().cache_dir)
    data = rows(64)
    res: dict[str, list[float]] = {"plain_peft": [], "ours": []}
    for _ in range(args.repeats):
        res["plain_peft"].append(plain_peft(base, data, args.steps, args.batch_size, args.seq_len))
        res["ours"].append(ours(base, data, args.steps, args.batch_size, args.seq_len))
    med = {k: statistics.median(v) for k, v in res.items()}
    print(json.dumps({
        "bench": "lora_tokens_per_s", "model": "SmolLM2-135M-Instruct", "device": "cuda" if torch.cuda.is_available()
        else f"cpu x{torch.get_num_threads()} threads", "lora": "r=8 q_proj,v_proj", "batch": args.batch_size,
        "seq_len": args.seq_len, "steps": args.steps, "runs": {k: [round(x, 1) for x in v] for k, v in res.items()},
        "plain_peft_tok_s": round(med["plain_peft"], 1), "ours_tok_s": round(med["ours"], 1),
        "ratio": round(med["ours"] / med["plain_peft"], 2),
    }))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _table import row

    device = "cuda" if torch.cuda.is_available() else "CPU"
    row("train", f"LoRA fine-tuning throughput, SmolLM2-135M ({device}, batch {args.batch_size}, seq {args.seq_len})",
        round(med["ours"], 1), "tokens/s", baseline=round(med["plain_peft"], 1),
        baseline_what="plain transformers + peft loop, same model and data")


if __name__ == "__main__":
    main()
