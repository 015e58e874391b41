"""Fine-tuning resumes only from its own checkpoints: a leftover folder (no manifest, another run's,
or a tampered file) is never unpickled, and every checkpoint file loads with ``weights_only=True``."""

from __future__ import annotations

import json
import pathlib
import shutil
from pathlib import Path

import pytest

from modelsteward.training.trainer import TrainConfig, train
from training_helpers import chat_rows, tiny_llama

pytestmark = pytest.mark.slow  # trains a tiny model


class _Boom:
    """A pickle that runs code when loaded (touches a marker file)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (pathlib.Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("tiny") / "base")


CFG = TrainConfig(max_steps=3, batch_size=2, max_seq_len=64, learning_rate=1e-3, eval_every=1, seed=1)


def _plant(src: Path, dst: Path, marker: Path, *, keep_manifest: bool) -> None:
    """Copy a genuine checkpoint to ``dst``, then put a code-running pickle in its optimizer file."""
    import torch

    shutil.copytree(src, dst)
    if not keep_manifest:
        (dst / "manifest.json").unlink(missing_ok=True)
    torch.save({"state": _Boom(marker), "param_groups": []}, dst / "optimizer.pt")


def test_a_leftover_checkpoint_is_not_unpickled(base: Path, tmp_path: Path) -> None:
    rows, val = chat_rows(6), chat_rows(2)
    part = train(CFG, base, rows, val, tmp_path / "own", stop_after=1, progress_bar=False)
    assert part.steps == 1
    genuine = tmp_path / "own" / "checkpoints" / "step-1"
    assert json.loads((genuine / "manifest.json").read_text())["files"]["optimizer.pt"]

    for case in ("foreign", "tampered"):
        marker = tmp_path / f"pwned-{case}"
        out = tmp_path / case
        _plant(genuine, out / "checkpoints" / "step-2", marker, keep_manifest=case == "tampered")
        res = train(CFG, base, rows, val, out, progress_bar=False)
        assert not marker.exists(), f"{case}: the checkpoint's pickle ran"
        assert res.status == "succeeded" and res.steps == 3
        assert len(res.history) == 3, f"{case}: resumed from the planted checkpoint"

    # another run's checkpoint (other data) is not resumed either
    other = tmp_path / "other"
    shutil.copytree(tmp_path / "own", other)
    res = train(CFG, base, chat_rows(8), val, other, progress_bar=False)
    assert len(res.history) == 3

    # its own checkpoint resumes
    res = train(CFG, base, rows, val, tmp_path / "own", progress_bar=False)
    assert res.steps == 3 and len(res.history) == 3 and res.history[0]["step"] == 1
