"""MLflow logging of one evaluation (imported lazily: MLflow is heavy)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelsteward.evals.report import flatten_metrics
from modelsteward.privacy import redact, redact_obj

if TYPE_CHECKING:
    from modelsteward.settings import Settings

__all__ = ["log_to_mlflow", "tag_run"]


def _experiment(client: Any, name: str, artifact_root: Path) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    artifact_root.mkdir(parents=True, exist_ok=True)
    try:
        return client.create_experiment(name, artifact_location=artifact_root.resolve().as_uri())
    except Exception:  # noqa: BLE001 - created concurrently by another process
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def log_to_mlflow(settings: Settings, *, use_case: str, params: dict[str, Any], metrics: dict[str, Any],
                  verdict: str, rows: list[dict[str, Any]], report_dir: Path) -> str:
    """One run in experiment ``evals/<use case>``: params, flattened metrics, per-sample table, report.

    Params and the per-sample table are redacted (``modelsteward.privacy``); the report folder was
    written redacted by ``write_report``.
    """
    from mlflow.tracking import MlflowClient

    params, rows = redact_obj(params), redact_obj(rows)

    client = MlflowClient(tracking_uri=settings.tracking_uri)
    exp_id = _experiment(client, f"evals/{use_case}", settings.artifacts_path / "mlflow" / "evals")
    run = client.create_run(exp_id, run_name=f"{params.get('candidate')} vs {params.get('baseline')}",
                            tags={"steward.kind": "eval", "steward.use_case": use_case, "steward.verdict": verdict})
    run_id = run.info.run_id
    try:
        from mlflow.entities import Metric, Param

        flat = {re.sub(r"[^\w\-. :/]", "_", k): v for k, v in flatten_metrics(metrics).items()}
        ts = run.info.start_time
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, ts, 0) for k, v in sorted(flat.items())],
            params=[Param(k, redact(v if isinstance(v, str) else json.dumps(v, default=str))[:6000])
                    for k, v in sorted(params.items())],
        )
        table = {k: [r.get(k) for r in rows] for k in sorted({k for r in rows for k in r})}
        client.log_table(run_id, data=table, artifact_file="samples_table.json")
        client.log_artifacts(run_id, str(report_dir), artifact_path="report")
        client.set_terminated(run_id, "FINISHED")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    return run_id


def tag_run(settings: Settings, run_id: str, key: str, value: str) -> None:
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=settings.tracking_uri).set_tag(run_id, key, value)
