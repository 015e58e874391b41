"""MLflow for datasets and fine-tunes (imported lazily: ``steward --help`` never loads MLflow)."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["mlflow_run", "log_dataset_input", "register_version", "experiment_name"]

log = logging.getLogger(__name__)


def experiment_name(use_case: str, what: str) -> str:
    return f"steward/{use_case}/{what}"


@contextlib.contextmanager
def mlflow_run(tracking_uri: str, experiment: str, run_name: str, artifacts_root: Path | None = None) -> Iterator[Any]:
    """An active MLflow run on ``tracking_uri`` (created experiment stores artifacts under ``artifacts_root``)."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        loc = (artifacts_root / "mlflow").resolve().as_uri() if artifacts_root else None
        exp_id = mlflow.create_experiment(experiment, artifact_location=loc)
    else:
        exp_id = exp.experiment_id
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name) as run:
        yield run


def log_dataset_input(card: Any, context: str = "training") -> None:
    """Record the dataset (train and validation files, digest = the card's sha256) as run inputs."""
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    for split, path in (("train", card.train_path), ("validation", card.validation_path)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            source = resolve_dataset_source(str(path))
        ds = MetaDataset(source=source, name=f"{card.use_case}-{split}", digest=card.sha256[:16])  # type: ignore[abstract]
        mlflow.log_input(ds, context=context if split == "train" else "validation")


def register_version(name: str, artifact_path: str, run_id: str) -> str:
    """Register the run's artifact folder as a new version of model ``name``; returns ``models:/name/N``."""
    import mlflow
    from mlflow.client import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if "already exists" not in str(exc).lower() and "RESOURCE_ALREADY_EXISTS" not in str(exc):
            raise
    source = mlflow.get_artifact_uri(artifact_path)
    mv = client.create_model_version(name, source=source, run_id=run_id)
    return f"models:/{name}/{mv.version}"
