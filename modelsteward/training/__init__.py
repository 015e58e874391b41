"""Fine-tuning: logs -> a redacted, de-duplicated chat dataset -> LoRA or full fine-tune -> a registered model.

Light to import: torch, transformers, peft, MLflow and DuckDB load only when a function runs, and
the submodules below load on first use of a name (so the tools can import ``trainer.TrainKnobs``
without the dataset pipeline).
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "DatasetCard": "dataset", "DatasetSpec": "dataset", "build_from_connection": "dataset",
    "load_initial_data": "dataset",
    "FineTuneRequest": "pipeline", "build_dataset": "pipeline", "create_job": "pipeline", "get_job": "pipeline",
    "request_cancel": "pipeline", "run_job": "pipeline",
    "redact": "pii",
    "TrainConfig": "trainer", "TrainKnobs": "trainer", "TrainResult": "trainer", "train": "trainer",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
