"""Run a queued fine-tuning job on one or many processes (the scale-out entry point).

    steward finetune --use-case story --base local:smollm2-135m-instruct --dataset DIR --queue-only
    accelerate launch --multi_gpu --num_processes 2 -m modelsteward.training.launch --job 7   # 2 processes
    torchrun --nproc_per_node 2 -m modelsteward.training.launch --job 7                      # the same
    python -m modelsteward.training.launch --job 7                                            # 1 process

On CPU-only hosts ``accelerate launch --cpu`` picks accelerate's single-process launcher; use
``--multi_gpu`` (torchrun underneath; with no GPU the processes join over gloo as MULTI_CPU).

The main process does everything ``run_job`` does (job row, dataset, MLflow, registry); the other
processes read the same job row, wait for its dataset, and join the same training loop (DDP over
``accelerate``; see ``trainer.py``).  Give ``--dataset`` when queueing a multi-process job so no
process waits for a dataset build; multi-host runs need the workspace (and its database, i.e.
``STEWARD_DATABASE_URL`` on PostgreSQL) reachable from every host.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m modelsteward.training.launch", description=__doc__.splitlines()[0])
    ap.add_argument("--job", type=int, required=True, help="id of a queued fine-tuning job")
    ap.add_argument("--wait-s", type=float, default=1800.0, help="how long other processes wait for the dataset")
    args = ap.parse_args(argv)

    import torch
    from accelerate import PartialState

    from modelsteward.context import open_steward
    from modelsteward.training.pipeline import FineTuneRequest, get_job, load_card, run_job

    state = PartialState(cpu=not torch.cuda.is_available())  # cpu=True is what makes CPU ranks join (gloo)
    if state.is_main_process:
        steward = open_steward()
        try:
            out = run_job(steward, args.job)
        finally:
            steward.close()
        print(f"job {out['id']}: {out['status']} {out.get('result_model_id') or ''}".strip())
        return 0 if out["status"] in ("succeeded", "cancelled") else 1

    from modelsteward.training.data import read_jsonl
    from modelsteward.training.preflight import resolve_base
    from modelsteward.training.trainer import train

    steward = open_steward(migrate=False)
    try:
        deadline = time.time() + args.wait_s
        job = get_job(steward, args.job)
        while not (job.status == "running" and job.dataset_hash) and time.time() < deadline:
            if job.status in ("failed", "succeeded"):
                return 1
            time.sleep(0.5)
            job = get_job(steward, args.job)
        req = FineTuneRequest.model_validate(job.config["request"])
        card = load_card(job.dataset_path or "")
        base = resolve_base(steward, req.base_model_id)
        train(req.train, base.path, read_jsonl(card.train_path), read_jsonl(card.validation_path),
              Path(job.output_dir or ""), progress_bar=False)
    finally:
        steward.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
