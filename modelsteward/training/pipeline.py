"""The fine-tuning pipeline on a workspace: dataset -> job row -> training -> MLflow -> registry.

``build_dataset(steward, spec)`` builds a dataset from the log store into
``<workspace>/datasets/<use case>/<UTC time>-<hash12>/`` and records it in MLflow.

``create_job(steward, request)`` runs every check that needs no compute (use case, base model,
LoRA targets or adapter fit, memory estimate) and inserts a ``queued`` ``fine_tuning_jobs`` row;
``run_job(steward, job_id)`` moves it to ``running``, builds (or reuses) the dataset, trains with
MLflow tracking, registers ``local:<name>`` (kind ``fine_tuned``, status ``candidate``) and ends in
``succeeded``, ``failed`` (error recorded) or ``cancelled`` (``cancel_requested`` is polled
between steps; the run checkpoints first, and running the job again resumes from there).

Registered row: LoRA -> ``adapter_path`` = the PEFT ``save_pretrained`` folder (loaded on the
parent's weights); full -> ``adapter_path`` None and ``metadata.weights_path`` (also
``metadata.path``, which the local provider reads) = a plain transformers folder.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from modelsteward.errors import Conflict, InvalidInput, NotFound, StewardError
from modelsteward.storage import jobs
from modelsteward.timeutil import utc_now_naive as utcnow
from modelsteward.training.dataset import DatasetCard, DatasetSpec, build_from_connection, load_initial_data
from modelsteward.training.trainer import TrainConfig

__all__ = ["FineTuneRequest", "build_dataset", "create_job", "run_job", "request_cancel", "get_job", "job_dict"]

log = logging.getLogger(__name__)
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


class FineTuneRequest(BaseModel):
    use_case: str
    base_model_id: str = "local:smollm2-135m-instruct"
    method: Literal["lora", "full"] = "lora"
    name: str | None = Field(default=None, description="registered as local:<name>; default <use case>-<method>-<time>")
    dataset_path: str | None = Field(default=None, description="a built dataset folder (with card.json); else build one")
    dataset: DatasetSpec | None = None
    train: TrainConfig = Field(default_factory=TrainConfig)
    memory_budget_bytes: int | None = Field(default=None, description="override the free-memory probe (tests, quotas)")


# ---------------------------------------------------------------------------------------------- datasets
def _holdout_ids(steward: Any, use_case_id: int) -> list[str]:
    return jobs.holdout_ids(steward.sessions, use_case_id)


def _learned_capabilities(base: Any, rows: list[Any]) -> list[str]:
    """The base's capabilities, plus ``tools`` when the fine-tune learned tool calls (the local
    provider renders tools with ``providers.chatformat``), so traffic with tools may try it."""
    caps = set(getattr(base, "capabilities", None) or [])
    if any(isinstance(r, dict) and r.get("tools") for r in rows):
        caps.add("tools")
    return sorted(caps)


def build_dataset(steward: Any, spec: DatasetSpec, *, track: bool = True) -> DatasetCard:
    """Build the dataset of ``spec.use_case`` from the workspace's log store (see ``dataset.py``)."""
    uc = steward.registry.get_use_case(spec.use_case)
    initial_path = spec.initial_path or uc.initial_data_path
    initial = load_initial_data(initial_path) if initial_path else []
    if initial_path and not spec.initial_path:
        spec = spec.model_copy(update={"initial_path": initial_path})
    logs = steward.logs  # the logs view reads the write-ahead rows too: nothing to flush first
    # the builder writes its files with DuckDB's COPY; it may spill under the workspace (issue 28)
    con = logs.reader.connect(lock_down=False, spill_dir=steward.settings.workspace / "tmp" / "duckdb")
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    root = steward.settings.workspace / "datasets" / spec.use_case
    tmp = root / f".building-{now:%Y%m%dT%H%M%S%f}"
    try:
        card = build_from_connection(con, spec, tmp, holdout_ids=_holdout_ids(steward, uc.id),
                                     initial_rows=initial, now=now)
    finally:
        con.close()
    final = root / f"{now:%Y%m%dT%H%M%SZ}-{card.sha256[:12]}"
    tmp.rename(final)
    card = card.model_copy(update={
        "path": str(final), "train_path": str(final / "train.jsonl"), "validation_path": str(final / "validation.jsonl"),
    })
    if track:
        from modelsteward.training.tracking import experiment_name, log_dataset_input, mlflow_run

        import mlflow

        with mlflow_run(steward.settings.tracking_uri, experiment_name(spec.use_case, "datasets"),
                        f"dataset-{card.sha256[:12]}", steward.settings.artifacts_path) as run:
            mlflow.log_params({"use_case": spec.use_case, "since": spec.since, "min_feedback": spec.min_feedback,
                               "sha256": card.sha256})
            mlflow.log_metrics({f"count_{k}": v for k, v in card.counts.items()})
            log_dataset_input(card, context="dataset")
            card = card.model_copy(update={"mlflow_run_id": run.info.run_id})
            (final / "card.json").write_text(card.model_dump_json(indent=2))
            mlflow.log_artifact(str(final / "card.json"))
    else:
        (final / "card.json").write_text(card.model_dump_json(indent=2))
    return card


def load_card(path: str | Path) -> DatasetCard:
    p = Path(path).expanduser()
    card_file = p / "card.json" if p.is_dir() else p
    if not card_file.exists():
        raise InvalidInput(f"{path} is not a built dataset (no card.json); run `steward dataset build` first.")
    return DatasetCard.model_validate_json(card_file.read_text())


# ---------------------------------------------------------------------------------------------- jobs
def job_dict(job: Any) -> dict[str, Any]:
    return {
        "id": job.id, "status": job.status, "base_model_id": job.base_model_id, "method": job.method,
        "progress": job.progress, "dataset_hash": job.dataset_hash, "dataset_path": job.dataset_path,
        "metrics": job.metrics, "mlflow_run_id": job.mlflow_run_id, "result_model_id": job.result_model_id,
        "output_dir": job.output_dir, "error": job.error, "cancel_requested": job.cancel_requested,
    }


def get_job(steward: Any, job_id: int) -> Any:
    """The job (a read-only row view); NotFound for an unknown id."""
    return jobs.get_job(steward.sessions, job_id)


def _update(steward: Any, job_id: int, **fields: Any) -> None:
    jobs.update_job(steward.sessions, job_id, **fields)


def request_cancel(steward: Any, job_id: int) -> Any:
    """Ask a queued or running job to stop (it checkpoints and ends ``cancelled``)."""
    return jobs.request_cancel(steward.sessions, job_id)


def preflight(steward: Any, req: FineTuneRequest) -> dict[str, Any]:
    """Every refusal that needs no compute: use case, base model, adapter fit, memory."""
    from modelsteward.training.preflight import check_adapter_compatible, check_lora_targets, check_memory, resolve_base

    steward.registry.get_use_case(req.use_case)
    base = resolve_base(steward, req.base_model_id)
    if req.method == "lora":
        check_lora_targets(base.path, req.train.lora_targets)
        if req.train.init_adapter:
            check_adapter_compatible(Path(req.train.init_adapter), base.path)
    elif req.train.init_adapter:
        raise InvalidInput("--init-adapter only applies to LoRA fine-tunes.")
    mem = check_memory(base.path, req.method, req.train.device, req.memory_budget_bytes)
    if req.dataset_path:
        load_card(req.dataset_path)
    return {"base_path": str(base.path), "context_length": base.context_length, "memory": mem}


def create_job(steward: Any, req: FineTuneRequest) -> int:
    """Validate (no compute) and insert a ``queued`` job; returns its id."""
    name = req.name or f"{req.use_case}-{req.method}-{dt.datetime.now(dt.timezone.utc):%Y%m%d%H%M%S}".lower()
    if not _NAME.match(name):
        raise InvalidInput(f"Fine-tune name {name!r} must be lower-case letters, digits, '.', '_' or '-'.")
    if steward.registry.find_model(f"local:{name}") is not None:
        raise Conflict(f"Model local:{name} already exists; choose another --name.")
    checks = preflight(steward, req)
    uc = steward.registry.get_use_case(req.use_case)
    out_dir = steward.settings.workspace / "finetunes" / name
    return jobs.add_job(
        steward.sessions, use_case_id=uc.id, base_model_id=req.base_model_id, method=req.method, status="queued",
        config={"request": req.model_dump(mode="json"), "name": name, "preflight": checks},
        metrics={}, dataset_stats={}, output_dir=str(out_dir), dataset_path=req.dataset_path,
    )


def run_job(
    steward: Any,
    job_id: int,
    *,
    progress: Callable[[str, float], None] | None = None,
    stop_after: int | None = None,
    progress_bar: bool | None = None,
) -> dict[str, Any]:
    """Run a queued (or cancelled, to resume) job to its end; returns ``job_dict``."""
    job = get_job(steward, job_id)
    if job.status not in ("queued", "cancelled", "failed"):
        raise Conflict(f"Job {job_id} is {job.status}; only queued, failed or cancelled jobs can be run.")
    req = FineTuneRequest.model_validate(job.config["request"])
    name = job.config["name"]
    out_dir = Path(job.output_dir or steward.settings.workspace / "finetunes" / name)
    if job.status == "queued" and job.cancel_requested:
        _update(steward, job_id, status="cancelled", finished_at=utcnow())
        return job_dict(get_job(steward, job_id))
    resuming = job.status != "queued"  # a re-run clears the old cancel request; a queued one keeps a new one
    _update(steward, job_id, status="running", started_at=utcnow(), error=None,
            **({"cancel_requested": False} if resuming else {}))
    report = progress or (lambda _m, _f: None)
    try:
        result = _run(steward, job_id, req, name, out_dir, report, stop_after, progress_bar)
    except BaseException as exc:  # noqa: BLE001 - every failure is recorded on the job row
        msg = exc.message if isinstance(exc, StewardError) else f"{type(exc).__name__}: {exc}"
        _update(steward, job_id, status="failed", error=msg, finished_at=utcnow())
        raise
    return result


def _run(
    steward: Any, job_id: int, req: FineTuneRequest, name: str, out_dir: Path,
    report: Callable[[str, float], None], stop_after: int | None, progress_bar: bool | None,
) -> dict[str, Any]:
    import mlflow

    from modelsteward.training.data import read_jsonl
    from modelsteward.training.preflight import resolve_base
    from modelsteward.training.tracking import experiment_name, log_dataset_input, mlflow_run, register_version
    from modelsteward.training.trainer import train

    base = resolve_base(steward, req.base_model_id)
    report("building dataset", 0.0)
    if req.dataset_path:
        card = load_card(req.dataset_path)
    else:
        card = build_dataset(steward, req.dataset or DatasetSpec(use_case=req.use_case), track=False)
    _update(steward, job_id, dataset_path=card.path, dataset_hash=card.sha256, dataset_stats=card.counts)
    train_rows, val_rows = read_jsonl(card.train_path), read_jsonl(card.validation_path)
    cfg = req.train
    max_steps = cfg.max_steps

    def should_stop() -> bool:
        return bool(get_job(steward, job_id).cancel_requested)

    def on_step(step: int, metrics: dict[str, float]) -> None:
        mlflow.log_metrics(metrics, step=step)
        frac = step / max_steps
        _update(steward, job_id, progress=frac, metrics={"step": step, **metrics})
        report(f"step {step}/{max_steps} loss {metrics['train_loss']:.4f}", frac)

    run_id = get_job(steward, job_id).mlflow_run_id
    with mlflow_run(steward.settings.tracking_uri, experiment_name(req.use_case, "fine-tune"), name,
                    steward.settings.artifacts_path) if run_id is None else _resume_run(steward, run_id) as run:
        run_id = run.info.run_id
        _update(steward, job_id, mlflow_run_id=run_id)
        mlflow.log_params({
            "base_model_id": req.base_model_id, "method": req.method, "dataset_sha256": card.sha256,
            "train_rows": card.train_rows, "validation_rows": card.validation_rows,
            **{k: v for k, v in cfg.model_dump(mode="json").items() if not isinstance(v, (list, dict))},
            "lora_targets": ",".join(cfg.lora_targets) if isinstance(cfg.lora_targets, list) else cfg.lora_targets,
        }) if not run.data.params else None
        log_dataset_input(card)
        result = train(cfg, base.path, train_rows, val_rows, out_dir, should_stop=should_stop, on_step=on_step,
                       stop_after=stop_after, progress_bar=progress_bar)
        summary = result.model_dump(exclude={"history"})
        if result.status == "cancelled":
            _update(steward, job_id, status="cancelled", metrics=summary, finished_at=utcnow())
            report("cancelled (checkpoint kept; run the job again to resume)", result.steps / max_steps)
            return job_dict(get_job(steward, job_id))
        mlflow.log_metrics({f"final_{k}": v for k, v in summary.items()
                            if isinstance(v, (int, float)) and v is not None and not isinstance(v, bool)},
                           step=result.steps)
        artifact = "adapter" if req.method == "lora" else "model"
        mlflow.log_artifacts(result.output_path, artifact_path=artifact)
        (out_dir / "dataset_card.json").write_text(card.model_dump_json(indent=2))
        mlflow.log_artifact(str(out_dir / "dataset_card.json"))
        model_uri = register_version(f"steward-{name}", artifact, run_id)
    meta = {"dataset_hash": card.sha256, "dataset_path": card.path, "mlflow_model_uri": model_uri,
            "mlflow_run_id": run_id, "use_case": req.use_case, "method": req.method, "job_id": job_id,
            "val_loss": result.best_val_loss, "train_loss": result.train_loss}
    if req.method == "full":
        meta.update({"weights_path": result.output_path, "path": result.output_path})
    steward.registry.register_model(
        "local", name, kind="fine_tuned", parent_model_id=req.base_model_id,
        adapter_path=result.output_path if req.method == "lora" else None, mlflow_model_uri=model_uri,
        use_case=req.use_case, status="candidate", context_length=base.context_length,
        display_name=f"{name} ({req.method} of {req.base_model_id})", metadata=meta,
        capabilities=_learned_capabilities(base, train_rows),
    )
    _update(steward, job_id, status="succeeded", progress=1.0, metrics=summary, result_model_id=f"local:{name}",
            finished_at=utcnow())
    report(f"registered local:{name}", 1.0)
    return job_dict(get_job(steward, job_id))


def _resume_run(steward: Any, run_id: str) -> Any:
    import mlflow

    mlflow.set_tracking_uri(steward.settings.tracking_uri)
    return mlflow.start_run(run_id=run_id)
