"""The fine-tuning loop: LoRA or full fine-tuning of a causal LM, read top to bottom (nanoGPT style).

``train(cfg, base_dir, train_rows, val_rows, out_dir)`` loads the model, tokenises, then loops:
for each optimiser step it takes ``grad_accum`` micro-batches, sums the token losses (each
micro-batch weighted by its share of the step's target tokens, so accumulation equals one big
batch), clips, steps, and every ``eval_every`` steps measures the validation loss (early stopping
after ``patience`` evaluations without improvement) and writes a checkpoint.

Checkpoints (``out_dir/checkpoints/step-N``) hold the trainable weights (the LoRA matrices, or
every weight for a full fine-tune), the optimiser and scheduler state, the step, the best
validation loss and the Python / NumPy / torch (CPU and CUDA) RNG states: a run resumed from one
ends where the uninterrupted run ends.  A checkpoint's ``manifest.json`` names its run (a hash of the
config and the data) and each file's SHA-256; a run resumes only from a checkpoint whose manifest
names it and matches, and loads every file with ``torch.load(weights_only=True)`` -- a leftover or
planted folder is skipped, never unpickled.  The data order is a pure function of (seed, epoch), so a
resumed run sees exactly the batches it would have seen.

Outputs: LoRA -> ``out_dir/adapter`` (PEFT ``save_pretrained``: ``adapter_config.json`` +
``adapter_model.safetensors``, plus the tokenizer files); full -> ``out_dir/model`` (a plain
transformers folder: ``config.json`` + safetensors + tokenizer).  With validation data the saved
weights are those of the best validation loss.

Scale-out: the loop runs under ``accelerate launch`` unchanged
(``accelerate launch --multi_gpu --num_processes 2 -m modelsteward.training.launch --job ID``, see
``launch.py``):
each process takes every ``world_size``-th micro-batch of a step, gradients are all-reduced by
DDP on the last micro-batch only (``no_sync`` before), validation losses are summed across
processes, and only the main process writes checkpoints and outputs.  bf16 autocast is used on
GPUs that support it; CPU runs in fp32.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

__all__ = ["TrainKnobs", "TrainConfig", "TrainResult", "train", "lr_at", "latest_checkpoint", "own_checkpoint", "run_fingerprint"]

log = logging.getLogger(__name__)


class TrainKnobs(BaseModel):
    """The knobs a caller sets per run: the ``fine_tune`` tool's input derives from this model
    (``tools/training.py``), so the two never drift apart."""

    method: Literal["lora", "full"] = "lora"
    max_steps: int = Field(default=60, ge=1, le=1_000_000)
    learning_rate: float | None = Field(default=None, gt=0, description="default 2e-4 for LoRA, 2e-5 for full")
    batch_size: int = Field(default=4, ge=1)
    grad_accum: int = Field(default=1, ge=1)
    max_seq_len: int = Field(default=512, ge=16)
    packing: bool = False
    lora_r: int = Field(default=8, ge=1)
    lora_targets: list[str] | Literal["all-linear"] | None = Field(
        default=None, description="LoRA target modules; default q_proj and v_proj")
    eval_every: int = Field(default=20, ge=1)
    patience: int | None = Field(default=3, ge=1, description="evaluations without improvement before stopping")
    init_adapter: str | None = Field(default=None, description="LoRA: continue training this PEFT adapter folder")
    seed: int = 0


DEFAULT_LORA_TARGETS = ("q_proj", "v_proj")


class TrainConfig(TrainKnobs):
    """Every knob of a fine-tuning run (validated; saved beside its checkpoints): the per-run
    ``TrainKnobs`` plus the ones fixed by the operator's defaults."""

    warmup_steps: int = Field(default=0, ge=0)
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1)
    weight_decay: float = Field(default=0.0, ge=0)
    max_grad_norm: float = Field(default=1.0, gt=0)
    lora_alpha: int = Field(default=16, ge=1)
    lora_dropout: float = Field(default=0.0, ge=0, lt=1)
    save_every: int | None = Field(default=None, ge=1, description="checkpoint cadence; default = eval_every")
    keep_checkpoints: int = Field(default=2, ge=1)
    device: str = "auto"
    bf16: bool | None = Field(default=None, description="None = on when the GPU supports it")

    @model_validator(mode="after")
    def _defaults(self) -> TrainConfig:
        if self.learning_rate is None:
            self.learning_rate = 2e-4 if self.method == "lora" else 2e-5
        if not self.lora_targets:
            self.lora_targets = list(DEFAULT_LORA_TARGETS)
        return self


class TrainResult(BaseModel):
    status: Literal["succeeded", "cancelled"]
    steps: int
    output_path: str
    train_loss: float | None
    val_loss: float | None
    best_val_loss: float | None
    first_train_loss: float | None
    stopped_early: bool = False
    tokens: int = 0
    tokens_per_s: float = 0.0
    seconds: float = 0.0
    history: list[dict[str, float]] = Field(default_factory=list)
    dropped_rows: int = 0
    trainable_params: int = 0
    total_params: int = 0
    world_size: int = 1


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up then cosine decay to ``min_lr_ratio`` x lr at ``max_steps`` (a pure function)."""
    base = float(cfg.learning_rate or 0.0)
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return base * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.max_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    return base * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def _checkpoints(out_dir: Path) -> list[Path]:
    found = [p for p in (out_dir / "checkpoints").glob("step-*") if p.is_dir() and p.name[5:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[5:]))


def latest_checkpoint(out_dir: Path) -> Path | None:
    ckpts = _checkpoints(out_dir)
    return ckpts[-1] if ckpts else None


CHECKPOINT_FILES = ("trainable.pt", "optimizer.pt", "scheduler.pt", "rng.pt", "state.json")
MANIFEST = "manifest.json"


def run_fingerprint(cfg: TrainConfig, train_rows: list[Any], val_rows: list[Any]) -> str:
    """Identity of a run: its config (bar the device) and its data; a checkpoint resumes only its own run."""
    conf = cfg.model_dump(mode="json")
    conf.pop("device", None)
    h = hashlib.sha256(json.dumps(conf, sort_keys=True).encode())
    for rows in (train_rows, val_rows):
        h.update(b"\0" + json.dumps(rows, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def own_checkpoint(out_dir: Path, run_id: str) -> Path | None:
    """The newest checkpoint this run wrote: its manifest names ``run_id`` and every file's SHA-256 matches.

    Anything else in ``checkpoints/`` (no manifest, another run's, a changed file) is skipped with a
    warning and never unpickled.
    """
    for path in reversed(_checkpoints(out_dir)):
        why = _manifest_problem(path, run_id)
        if why is None:
            return path
        log.warning("fine-tuning: not resuming from %s: %s", path, why)
    return None


def _manifest_problem(path: Path, run_id: str) -> str | None:
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return "it has no readable manifest (not written by this trainer)"
    if not isinstance(manifest, dict) or manifest.get("run") != run_id:
        return "it belongs to another run (other config or data)"
    files = manifest.get("files") or {}
    for name in CHECKPOINT_FILES:
        f = path / name
        if name not in files or not f.is_file() or _sha256(f) != files[name]:
            return f"{name} does not match its manifest"
    return None


# ---------------------------------------------------------------------------------------------- helpers
def _rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    np_state: Any = np.random.get_state()
    name, keys, pos, has_gauss, gauss = np_state
    # plain types and tensors only, so the file loads with torch.load(weights_only=True)
    state = {"python": random.getstate(), "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos),
                                                     int(has_gauss), float(gauss)], "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _seed_all(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _trainable_state(model: Any) -> dict[str, Any]:
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}


def _save_checkpoint(path: Path, model: Any, opt: Any, sched: Any, state: dict[str, Any], keep: int,
                     run_id: str) -> None:
    import torch

    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(_trainable_state(model), tmp / "trainable.pt")
    torch.save(opt.state_dict(), tmp / "optimizer.pt")
    torch.save(sched.state_dict(), tmp / "scheduler.pt")
    torch.save(_rng_state(), tmp / "rng.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=2))
    manifest = {"format": 1, "run": run_id, "step": state.get("step"),
                "files": {name: _sha256(tmp / name) for name in CHECKPOINT_FILES}}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)
    for old in _checkpoints(path.parent)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def _load_checkpoint(path: Path, model: Any, opt: Any, sched: Any) -> dict[str, Any]:
    import torch

    weights = torch.load(path / "trainable.pt", map_location="cpu", weights_only=True)
    missing = [n for n, p in model.named_parameters() if p.requires_grad and n not in weights]
    if missing:
        raise ValueError(f"checkpoint {path} does not match this model (missing {missing[:3]} ...)")
    model.load_state_dict(weights, strict=False)
    opt.load_state_dict(torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True))
    sched.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    _set_rng_state(torch.load(path / "rng.pt", weights_only=True))
    state: dict[str, Any] = json.loads((path / "state.json").read_text())
    return state


def load_model(cfg: TrainConfig, base_dir: Path, device: str, dtype: Any) -> tuple[Any, Any]:
    """Tokenizer and model (wrapped with a fresh LoRA adapter for ``method='lora'``)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base_dir)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    model: Any = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    if cfg.method == "lora" and cfg.init_adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, cfg.init_adapter, is_trainable=True)
    elif cfg.method == "lora":
        from peft import LoraConfig, get_peft_model

        lcfg = LoraConfig(
            r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
            target_modules=cfg.lora_targets, task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lcfg)
    model.to(device)
    return tok, model


# ---------------------------------------------------------------------------------------------- the loop
class _Run:
    """One run's state, shared by the named stages of :func:`train` (set up, load, optimise, resume,
    step, evaluate, checkpoint, save)."""

    def __init__(self, cfg: TrainConfig, out_dir: Path) -> None:
        import torch
        from accelerate import Accelerator

        self.cfg, self.out_dir = cfg, out_dir
        use_cuda = torch.cuda.is_available() and cfg.device in ("auto", "cuda")
        bf16 = cfg.bf16 if cfg.bf16 is not None else bool(use_cuda and torch.cuda.is_bf16_supported())
        self.acc = acc = Accelerator(mixed_precision="bf16" if bf16 else "no", cpu=not use_cuda)
        self.device, self.rank, self.world = acc.device, acc.process_index, acc.num_processes
        _seed_all(cfg.seed)
        self.step, self.best_val, self.bad_evals = 0, math.inf, 0
        self.history: list[dict[str, Any]] = []
        self.first_loss: float | None = None
        self.tokens = 0
        self.loss_val: float | None = None
        self.val_loss: float | None = None
        self.run_id = ""

    # -- model, data
    def load(self, base_dir: Path, train_rows: list[Any], val_rows: list[Any]) -> None:
        from modelsteward.training.data import make_batches, tokenize_rows

        cfg = self.cfg
        self.tok, self.model = load_model(cfg, base_dir, str(self.device), None)
        self.model.config.use_cache = False
        train_ex, dropped = tokenize_rows(self.tok, train_rows, cfg.max_seq_len)
        val_ex, dropped_v = tokenize_rows(self.tok, val_rows, cfg.max_seq_len)
        if not train_ex:
            from modelsteward.errors import InsufficientData

            raise InsufficientData(f"No training row has an assistant token within max_seq_len={cfg.max_seq_len} "
                                   f"({dropped} rows dropped); raise --max-seq-len.")
        self.dropped = dropped + dropped_v
        self.batches = make_batches(train_ex, cfg.batch_size, cfg.max_seq_len, cfg.packing)
        self.val_batches = make_batches(val_ex, cfg.batch_size, cfg.max_seq_len, False)
        self.pad_id = self.tok.pad_token_id
        self.n_trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        self.n_total = sum(p.numel() for p in self.model.parameters())

    # -- optimiser and schedule (the schedule is the pure function lr_at)
    def make_optimizer(self) -> None:
        import torch

        cfg = self.cfg
        params = [p for p in self.model.parameters() if p.requires_grad]
        decay = [p for p in params if p.dim() >= 2]
        no_decay = [p for p in params if p.dim() < 2]
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=float(cfg.learning_rate or 0), betas=(0.9, 0.95), fused=False,
        )
        self.sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(s, cfg) / float(cfg.learning_rate or 1))
        self.model, self.opt = self.acc.prepare(self.model, opt)

    # -- resume
    def resume(self, run_id: str, resume: bool) -> None:
        self.run_id = run_id
        ckpt = own_checkpoint(self.out_dir, run_id) if resume else None
        if ckpt is not None:
            state = _load_checkpoint(ckpt, self.acc.unwrap_model(self.model), self.opt, self.sched)
            self.step, self.best_val, self.bad_evals = state["step"], state["best_val"], state["bad_evals"]
            self.history, self.first_loss = state["history"], state.get("first_loss")

    def batch_at(self, micro: int) -> dict[str, Any]:
        """The ``micro``-th micro-batch of the run: epoch order is a permutation seeded by (seed, epoch)."""
        import torch

        from modelsteward.training.data import collate

        epoch, idx = divmod(micro, len(self.batches))
        g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.batches), generator=g).tolist()
        return {k: v.to(self.device) for k, v in collate(self.batches[order[idx]], self.pad_id).items()}

    @staticmethod
    def n_targets(b: dict[str, Any]) -> int:
        return int((b["labels"][:, 1:] != -100).sum())

    def evaluate(self) -> float | None:
        import torch

        from modelsteward.training.data import collate

        if not self.val_batches:
            return None
        acc, device = self.acc, self.device
        with torch.no_grad():
            self.model.eval()
            plain = acc.unwrap_model(self.model)  # no DDP hooks: ranks may hold different numbers of batches
            tot = torch.zeros(2, device=device)
            for vb in self.val_batches[self.rank::self.world]:
                b = {k: v.to(device) for k, v in collate(vb, self.pad_id).items()}
                n = self.n_targets(b)
                with acc.autocast():
                    out = plain(**b)
                tot += torch.tensor([float(out.loss) * n, n], device=device)
            tot = acc.reduce(tot, reduction="sum")
            self.model.train()
        return float(tot[0] / max(1.0, float(tot[1])))

    def checkpoint(self) -> None:
        acc = self.acc
        acc.wait_for_everyone()
        if acc.is_main_process:
            state = {"step": self.step, "best_val": self.best_val, "bad_evals": self.bad_evals,
                     "history": self.history, "first_loss": self.first_loss,
                     "config": self.cfg.model_dump(mode="json")}
            _save_checkpoint(self.out_dir / "checkpoints" / f"step-{self.step}", acc.unwrap_model(self.model),
                             self.opt, self.sched, state, self.cfg.keep_checkpoints, self.run_id)

    def target(self) -> Path:
        return self.out_dir / ("adapter" if self.cfg.method == "lora" else "model")

    def save_outputs(self, best: bool) -> Path:
        target = self.target()
        if self.acc.is_main_process:
            shutil.rmtree(target, ignore_errors=True)
            self.acc.unwrap_model(self.model).save_pretrained(target, safe_serialization=True)
            self.tok.save_pretrained(target)
            if best:
                (target / "best_step.txt").write_text(str(self.step))
        return target

    def stop_requested(self, should_stop: Callable[[], bool] | None) -> bool:
        import torch

        acc = self.acc
        stop = bool(should_stop()) if (should_stop is not None and acc.is_main_process) else False
        if self.world > 1:  # every process must leave the loop together
            stop = float(acc.reduce(torch.tensor([float(stop)], device=self.device), reduction="sum")[0]) > 0
        return stop

    def optimizer_step(self) -> dict[str, float]:
        """One optimiser step over ``grad_accum`` micro-batches per process; returns its metrics."""
        import torch

        cfg, acc, model, world = self.cfg, self.acc, self.model, self.world
        for g in self.opt.param_groups:
            g["lr"] = lr_at(self.step, cfg)
        t_step, tokens_before = time.perf_counter(), self.tokens
        micro = [self.batch_at(self.step * cfg.grad_accum * world + i) for i in range(cfg.grad_accum * world)]
        mine = micro[self.rank::world]
        total_targets = sum(self.n_targets(b) for b in micro)
        step_loss = torch.zeros((), device=self.device)
        for i, b in enumerate(mine):
            n = self.n_targets(b)
            sync = i == len(mine) - 1
            ctx = acc.no_sync(model) if (not sync and world > 1) else contextlib.nullcontext()
            with ctx, acc.autocast():
                out = model(**b)
                # mean loss x share of the step's target tokens; DDP averages over processes, hence x world
                loss = out.loss * (n / max(1, total_targets)) * world
            acc.backward(loss)
            step_loss += loss.detach() / world
            self.tokens += int(b["attention_mask"].sum()) * world
        acc.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        self.opt.step()
        self.sched.step()
        self.opt.zero_grad(set_to_none=True)
        self.step += 1
        self.loss_val = float(acc.reduce(step_loss, reduction="sum"))
        if self.first_loss is None:
            self.first_loss = self.loss_val
        return {"train_loss": self.loss_val, "lr": lr_at(self.step - 1, cfg),
                "tokens": float(self.tokens - tokens_before), "step_s": time.perf_counter() - t_step}

    def validate(self, metrics: dict[str, float]) -> None:
        """Every ``eval_every`` steps (and at the last): validation loss, best weights, patience count."""
        if self.step % self.cfg.eval_every == 0 or self.step == self.cfg.max_steps:
            self.val_loss = self.evaluate()
            if self.val_loss is not None:
                metrics["val_loss"] = self.val_loss
                if self.val_loss < self.best_val - 1e-6:
                    self.best_val, self.bad_evals = self.val_loss, 0
                    self.save_outputs(best=True)
                else:
                    self.bad_evals += 1

    def loop(self, should_stop: Callable[[], bool] | None, on_step: Callable[[int, dict[str, float]], None] | None,
             stop_after: int | None, progress_bar: bool | None) -> tuple[Literal["succeeded", "cancelled"], bool, float]:
        """The optimisation loop: (status, stopped early, loop seconds)."""
        from tqdm.auto import tqdm

        cfg, acc = self.cfg, self.acc
        self.model.train()
        status: Literal["succeeded", "cancelled"] = "succeeded"
        stopped_early = False
        save_every = cfg.save_every or cfg.eval_every
        bar = tqdm(total=cfg.max_steps, initial=self.step, desc="fine-tune", unit="step",
                   disable=(not acc.is_main_process) if progress_bar is None else not progress_bar)
        t_loop = time.perf_counter()
        while self.step < cfg.max_steps:
            if self.stop_requested(should_stop):
                status = "cancelled"
                break
            metrics = self.optimizer_step()
            self.validate(metrics)
            self.history.append({"step": self.step, **metrics})
            if acc.is_main_process and on_step is not None:
                on_step(self.step, metrics)
            bar.update(1)
            bar.set_postfix(loss=f"{self.loss_val:.4f}")
            if cfg.patience is not None and self.bad_evals >= cfg.patience:
                stopped_early = True
                self.checkpoint()
                break
            if self.step % save_every == 0 and self.step < cfg.max_steps:
                self.checkpoint()
            if stop_after is not None and self.step >= stop_after and self.step < cfg.max_steps:
                status = "cancelled"
                break
        bar.close()
        return status, stopped_early, time.perf_counter() - t_loop

    def finish(self, status: str) -> Path:
        """Checkpoint a cancelled run; save the last weights when no best validation weights were saved."""
        if status == "cancelled":
            self.checkpoint()
        if status == "succeeded" and not (self.val_batches and self.best_val < math.inf):
            target = self.save_outputs(best=False)
        else:
            target = self.target()
        self.acc.wait_for_everyone()
        return target


def train(
    cfg: TrainConfig,
    base_dir: Path,
    train_rows: list[Any],
    val_rows: list[Any],
    out_dir: Path,
    *,
    resume: bool = True,
    should_stop: Callable[[], bool] | None = None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    stop_after: int | None = None,
    progress_bar: bool | None = None,
) -> TrainResult:
    """Fine-tune ``base_dir`` on ``train_rows``; see the module docstring.

    ``should_stop`` is polled between steps (cancellation): the run checkpoints and returns
    ``status='cancelled'``.  ``stop_after`` does the same after that many steps (an interruption).
    ``on_step(step, metrics)`` receives every step's metrics on the main process.
    """
    t_start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    run = _Run(cfg, out_dir)
    run.load(base_dir, train_rows, val_rows)
    run.make_optimizer()
    run.resume(run_fingerprint(cfg, train_rows, val_rows), resume)
    status, stopped_early, loop_s = run.loop(should_stop, on_step, stop_after, progress_bar)
    target = run.finish(status)
    return TrainResult(
        status=status, steps=run.step, output_path=str(target), train_loss=run.loss_val, val_loss=run.val_loss,
        best_val_loss=None if run.best_val == math.inf else run.best_val, first_train_loss=run.first_loss,
        stopped_early=stopped_early, tokens=run.tokens, tokens_per_s=run.tokens / loop_s if loop_s > 0 else 0.0,
        seconds=time.perf_counter() - t_start, history=run.history, dropped_rows=run.dropped,
        trainable_params=run.n_trainable, total_params=run.n_total, world_size=run.world,
    )
