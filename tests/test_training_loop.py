"""Real training on CPU: LoRA on SmolLM2-135M end to end, exact resume, full fine-tuning, cancellation."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from modelsteward.tools import ToolContext, call_tool
from modelsteward.training.pipeline import FineTuneRequest, create_job, get_job, run_job
from modelsteward.training.trainer import TrainConfig, latest_checkpoint, train
from training_helpers import base_model_dir, chat_rows, log_row, tiny_llama

pytestmark = pytest.mark.slow


def _facts_logs(n: int) -> list[dict]:
    """Highly regular rows (so a few steps visibly lower the loss), distinct enough to survive de-duplication."""
    keys = ["amber", "birch", "cobalt", "delta", "ember", "fjord", "garnet", "harbor"]
    return [log_row(f"f{i}", f"Door {keys[i % 8]} {i}: what is its password?",
                    f"The password of door {keys[i % 8]} {i} is tangerine {keys[(i * 3) % 8]} {i * 17}.")
            for i in range(n)]


def test_lora_fine_tune_end_to_end_on_smollm2(steward, settings) -> None:  # type: ignore[no-untyped-def]
    import mlflow
    from mlflow.client import MlflowClient

    from modelsteward.providers.factory import complete

    steward.registry.add_use_case("story", description="story game")
    steward.logs.append_many(_facts_logs(24))
    seen: list[tuple[str, float]] = []
    ctx = ToolContext(steward=steward, actor="test", progress=lambda m, f: seen.append((m, f)))
    out = call_tool("fine_tune", {
        "use_case": "story", "name": "story-lora", "max_steps": 5, "batch_size": 2, "max_seq_len": 128,
        "learning_rate": 2e-3, "eval_every": 5, "lora_r": 8,
    }, ctx)
    assert out.status == "succeeded", out.error
    hist = [h["train_loss"] for h in _history(out.mlflow_run_id, settings)]
    assert len(hist) == 5 and hist[-1] < hist[0] - 0.3, hist  # the loss goes down
    assert out.metrics["best_val_loss"] is not None
    job = get_job(steward, out.job_id)
    assert job.status == "succeeded" and job.progress == 1.0 and job.finished_at is not None
    assert [round(f, 1) for m, f in seen if m.startswith("step")] == [0.2, 0.4, 0.6, 0.8, 1.0]

    model = steward.registry.get_model("local:story-lora")
    assert (model.kind, model.status, model.parent_model_id) == ("fine_tuned", "candidate", "local:smollm2-135m-instruct")
    adapter = Path(model.adapter_path or "")
    assert (adapter / "adapter_config.json").exists() and (adapter / "adapter_model.safetensors").exists()
    assert model.meta["dataset_hash"] == job.dataset_hash and len(job.dataset_hash or "") == 64
    assert model.mlflow_model_uri == "models:/steward-story-lora/1" == model.meta["mlflow_model_uri"]

    mlflow.set_tracking_uri(settings.tracking_uri)
    client = MlflowClient()
    run = client.get_run(out.mlflow_run_id)
    assert run.data.params["method"] == "lora" and run.data.params["dataset_sha256"] == job.dataset_hash
    assert {i.dataset.name for i in run.inputs.dataset_inputs} == {"story-train", "story-validation"}
    arts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"adapter", "dataset_card.json"} <= arts
    assert {a.path for a in client.list_artifacts(run.info.run_id, "adapter")} >= {
        "adapter/adapter_config.json", "adapter/adapter_model.safetensors", "adapter/tokenizer.json"}
    assert client.get_model_version("steward-story-lora", "1").run_id == run.info.run_id

    # the gateway's local provider serves the registered adapter
    res = complete(model, settings, [{"role": "user", "content": "Door amber 0: what is its password?"}],
                   max_tokens=8, temperature=0)
    assert res.text.strip()


def _history(run_id: str, settings) -> list[dict]:  # type: ignore[no-untyped-def]
    import mlflow
    from mlflow.client import MlflowClient

    mlflow.set_tracking_uri(settings.tracking_uri)
    return [{"step": m.step, "train_loss": m.value}
            for m in sorted(MlflowClient().get_metric_history(run_id, "train_loss"), key=lambda m: m.step)]


def test_interrupted_run_resumes_to_the_same_loss(tmp_path: Path) -> None:
    base = base_model_dir()
    rows, val = chat_rows(8), chat_rows(2)
    cfg = TrainConfig(max_steps=4, batch_size=2, max_seq_len=128, learning_rate=1e-3, eval_every=2,
                      lora_dropout=0.1, seed=3)
    full = train(cfg, base, rows, val, tmp_path / "a", progress_bar=False)
    part = train(cfg, base, rows, val, tmp_path / "b", stop_after=2, progress_bar=False)
    assert part.status == "cancelled" and part.steps == 2
    assert latest_checkpoint(tmp_path / "b") == tmp_path / "b" / "checkpoints" / "step-2"
    state = json.loads((tmp_path / "b" / "checkpoints" / "step-2" / "state.json").read_text())
    assert state["step"] == 2 and {"trainable.pt", "optimizer.pt", "scheduler.pt", "rng.pt"} <= {
        p.name for p in (tmp_path / "b" / "checkpoints" / "step-2").iterdir()}
    resumed = train(cfg, base, rows, val, tmp_path / "b", progress_bar=False)
    assert resumed.status == "succeeded" and resumed.steps == 4
    a = [h["train_loss"] for h in full.history]
    b = [h["train_loss"] for h in resumed.history]
    assert b == pytest.approx(a, abs=1e-4), (a, b)
    assert resumed.best_val_loss == pytest.approx(full.best_val_loss, abs=1e-4)


def test_full_fine_tune_of_a_tiny_llama(steward, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from modelsteward.providers.factory import local_model_paths

    tiny = tiny_llama(tmp_path / "tiny")
    steward.registry.add_use_case("story", description="story game")
    steward.registry.register_model("local", "tiny", metadata={"path": str(tiny)})
    steward.logs.append_many(_facts_logs(24))
    req = FineTuneRequest(use_case="story", base_model_id="local:tiny", method="full", name="tiny-full",
                          train=TrainConfig(method="full", max_steps=6, batch_size=4, max_seq_len=128,
                                            learning_rate=3e-3, eval_every=3, packing=True))
    job_id = create_job(steward, req)
    out = run_job(steward, job_id, progress_bar=False)
    assert out["status"] == "succeeded", out["error"]
    m = out["metrics"]
    assert m["train_loss"] < m["first_train_loss"] - 0.5 and m["trainable_params"] == m["total_params"]
    model = steward.registry.get_model("local:tiny-full")
    assert model.adapter_path is None and model.kind == "fine_tuned"
    weights = Path(model.meta["weights_path"])
    assert (weights / "config.json").exists() and (weights / "model.safetensors").exists()
    assert local_model_paths(model, settings, steward.registry) == (weights, None)


def test_background_job_can_be_cancelled(steward, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tiny = tiny_llama(tmp_path / "tiny")
    steward.registry.add_use_case("story", description="story game")
    steward.registry.register_model("local", "tiny", metadata={"path": str(tiny)})
    steward.logs.append_many(_facts_logs(20))
    ctx = ToolContext(steward=steward, actor="test")
    out = call_tool("fine_tune", {"use_case": "story", "base": "local:tiny", "name": "tiny-bg", "max_steps": 100_000,
                                  "batch_size": 2, "max_seq_len": 64, "eval_every": 1000, "background": True}, ctx)
    assert out.status in ("queued", "running")
    deadline = time.time() + 120
    while time.time() < deadline and (get_job(steward, out.job_id).progress or 0) <= 0:
        time.sleep(0.2)
    assert get_job(steward, out.job_id).status == "running"
    call_tool("fine_tune_cancel", {"job_id": out.job_id}, ctx)
    while time.time() < deadline and get_job(steward, out.job_id).status == "running":
        time.sleep(0.2)
    job = get_job(steward, out.job_id)
    assert job.status == "cancelled" and 0 < job.progress < 1
    assert latest_checkpoint(Path(job.output_dir or "")) is not None
    assert steward.registry.find_model("local:tiny-bg") is None


def test_two_cpu_processes_under_accelerate_launch(steward, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The same entry point under ``accelerate launch --num_processes 2`` (DDP over gloo on CPU)."""
    import os
    import subprocess
    import sys

    tiny = tiny_llama(tmp_path / "tiny")
    steward.registry.add_use_case("story", description="story game")
    steward.registry.register_model("local", "tiny", metadata={"path": str(tiny)})
    steward.logs.append_many(_facts_logs(16))
    ctx = ToolContext(steward=steward, actor="test")
    ds = call_tool("build_dataset", {"use_case": "story", "min_rows": 4}, ctx)
    out = call_tool("fine_tune", {"use_case": "story", "base": "local:tiny", "name": "tiny-ddp", "dataset": ds.path,
                                  "max_steps": 3, "batch_size": 2, "max_seq_len": 64, "eval_every": 3,
                                  "queue_only": True}, ctx)
    assert out.status == "queued"
    accelerate = Path(sys.executable).parent / "accelerate"
    env = {**os.environ, "STEWARD_HOME": str(settings.workspace), "OMP_NUM_THREADS": "1"}
    res = subprocess.run(
        [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
         "--dynamo_backend", "no", "-m", "modelsteward.training.launch", "--job", str(out.job_id)],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    job = get_job(steward, out.job_id)
    assert job.status == "succeeded" and job.metrics["world_size"] == 2 and job.metrics["steps"] == 3
    assert steward.registry.get_model("local:tiny-ddp").adapter_path


def test_finetune_cli_json_and_errors(steward, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from modelsteward.cli import app

    tiny = tiny_llama(tmp_path / "tiny")
    steward.registry.add_use_case("story", description="story game")
    steward.registry.register_model("local", "tiny", metadata={"path": str(tiny)})
    steward.logs.append_many(_facts_logs(20))
    steward.close()
    runner = CliRunner()
    res = runner.invoke(app, ["finetune", "--use-case", "story", "--base", "local:tiny", "--max-steps", "2",
                              "--batch-size", "2", "--max-seq-len", "64", "--name", "tiny-cli", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["status"] == "succeeded" and out["result_model_id"] == "local:tiny-cli" and out["metrics"]["steps"] == 2
    res = runner.invoke(app, ["finetune", "--use-case", "story", "--base", "local:nope", "--json"])
    assert res.exit_code != 0 and "Unknown base model 'local:nope'" in str(res.exception)
