"""Fine-tuning: logs -> a redacted, de-duplicated chat dataset -> LoRA or full fine-tune -> a registered model.

Light to import: torch, transformers, peft, MLflow and DuckDB load only when a function runs.
"""

from modelsteward.training.dataset import DatasetCard, DatasetSpec, build_from_connection, load_initial_data
from modelsteward.training.pipeline import (
    FineTuneRequest,
    build_dataset,
    create_job,
    get_job,
    request_cancel,
    run_job,
)
from modelsteward.training.pii import redact
from modelsteward.training.trainer import TrainConfig, TrainResult, train

__all__ = [
    "DatasetCard",
    "DatasetSpec",
    "FineTuneRequest",
    "TrainConfig",
    "TrainResult",
    "build_dataset",
    "build_from_connection",
    "create_job",
    "get_job",
    "load_initial_data",
    "redact",
    "request_cancel",
    "run_job",
    "train",
]
