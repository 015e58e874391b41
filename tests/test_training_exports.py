"""The public surface of modelsteward.training, and that importing it (and its CLI and tools) stays light."""

from __future__ import annotations

import subprocess
import sys

import modelsteward.training as training


def test_exported_members() -> None:
    assert sorted(training.__all__) == [
        "DatasetCard", "DatasetSpec", "FineTuneRequest", "TrainConfig", "TrainKnobs", "TrainResult", "build_dataset",
        "build_from_connection", "create_job", "get_job", "load_initial_data", "redact", "request_cancel", "run_job",
        "train",
    ]
    for name in training.__all__:
        assert getattr(training, name) is not None


def test_import_is_light() -> None:
    code = ("import sys, modelsteward.training, modelsteward.cli.training, modelsteward.tools.training; "
            "print(','.join(m for m in ('torch', 'transformers', 'peft', 'mlflow', 'duckdb', 'accelerate') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_tools_are_registered_with_their_flags() -> None:
    from modelsteward.tools import get_tool

    assert get_tool("build_dataset").mutating and not get_tool("build_dataset").long_running
    ft = get_tool("fine_tune")
    assert ft.mutating and ft.long_running and "base" in ft.input_model.model_fields
    assert not get_tool("fine_tune_status").mutating and get_tool("fine_tune_cancel").mutating
