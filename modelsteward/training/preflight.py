"""Checks before any compute: the base model exists and is local, the adapter fits it, memory suffices.

Everything here reads configs and safetensors headers only (models are built on the ``meta``
device, which allocates nothing), so a refusal costs milliseconds.

Memory estimate (decision): a full fine-tune with AdamW in fp32 keeps weights, gradients and two
moments: ``params x 4 bytes x 4``; a LoRA run keeps the frozen weights (``params x 4``) plus the
adapter's share of that; both add 25% for activations and allocator slack.  The budget is the free
memory of the GPU when one is used, else ``MemAvailable`` from ``/proc/meminfo``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelsteward.errors import InvalidInput, NotFound, close_matches

__all__ = [
    "BaseModelInfo", "resolve_base", "count_params", "estimate_memory", "available_memory", "check_memory",
    "check_lora_targets", "check_adapter_compatible",
]


@dataclass(frozen=True)
class BaseModelInfo:
    model_id: str
    path: Path
    context_length: int | None


def resolve_base(steward: Any, model_id: str) -> BaseModelInfo:
    """The local weights folder of ``model_id``; refuses unknown, paid, remote and adapter bases."""
    from modelsteward.providers.local_assets import BASE_MODEL_ID, BASE_MODEL_NAME

    reg = steward.registry
    model = reg.find_model(model_id)
    if model is None and model_id == BASE_MODEL_ID:
        model = reg.register_model("local", BASE_MODEL_NAME, kind="self_hosted", context_length=8192,
                                   display_name="SmolLM2-135M-Instruct (local)")
    if model is None:
        ids = [m.id for m in reg.list_models()]
        raise NotFound(f"Unknown base model {model_id!r}." + close_matches(model_id, ids), kind="model", id=model_id)
    if model.provider != "local" or model.kind == "paid":
        raise InvalidInput(
            f"Base model {model_id!r} is served by {model.provider!r}; only local transformers models can be "
            f"fine-tuned (e.g. {BASE_MODEL_ID}, or register a folder with metadata path)."
        )
    from modelsteward.providers.factory import local_model_paths

    path, adapter = local_model_paths(model, steward.settings, reg)
    if adapter is not None:
        raise InvalidInput(
            f"Base model {model_id!r} is a LoRA adapter on {model.parent_model_id}; fine-tune its parent instead "
            "(stacked adapters are not supported)."
        )
    if not (Path(path) / "config.json").exists():
        raise InvalidInput(f"Base model {model_id!r}: {path} has no config.json (not a transformers folder).")
    return BaseModelInfo(model_id=model_id, path=Path(path), context_length=model.context_length)


def _meta_model(path: Path) -> Any:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(path)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)  # type: ignore[no-untyped-call]


def count_params(path: Path) -> int:
    """Parameters of the model in ``path`` (built on the meta device: no memory, no weights read)."""
    return sum(p.numel() for p in _meta_model(path).parameters())


def estimate_memory(n_params: int, method: str, *, bytes_per_param: int = 4, lora_fraction: float = 0.01) -> int:
    """Bytes needed for training (see the module docstring)."""
    if method == "full":
        need = n_params * bytes_per_param * 4  # weights + grads + Adam m and v
    else:
        need = n_params * bytes_per_param + int(n_params * lora_fraction) * bytes_per_param * 4
    return int(need * 1.25)


def available_memory(device: str = "auto") -> tuple[int, str]:
    """(free bytes, where) on the device a run would use."""
    import torch

    if device in ("auto", "cuda") and torch.cuda.is_available():
        free, _total = torch.cuda.mem_get_info()
        return int(free), f"GPU {torch.cuda.get_device_name(0)}"
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "RAM"
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")), "RAM"


def check_memory(path: Path, method: str, device: str = "auto", budget: int | None = None) -> dict[str, Any]:
    """Refuse (InvalidInput) when the estimate exceeds the free memory; returns the estimate."""
    n = count_params(path)
    need = estimate_memory(n, method)
    free, where = available_memory(device) if budget is None else (budget, "budget")
    info = {"params": n, "estimated_bytes": need, "available_bytes": free, "where": where}
    if need > free:
        gib = 1024**3
        hint = " Use --method lora." if method == "full" else " Use a smaller base model."
        raise InvalidInput(
            f"A {method} fine-tune of this {n / 1e6:.0f}M-parameter model needs about {need / gib:.1f} GiB "
            f"(params x 4 bytes x {'4 for AdamW' if method == 'full' else '1 + adapter'} + 25%) but only "
            f"{free / gib:.1f} GiB of {where} is free.{hint}",
            **info,
        )
    return info


def _linear_names(model: Any) -> dict[str, tuple[int, int]]:
    """Leaf module name suffix -> (in_features, out_features) for every Linear of the model."""
    import torch

    out: dict[str, tuple[int, int]] = {}
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear):
            out[name] = (mod.in_features, mod.out_features)
    return out


def check_lora_targets(path: Path, targets: list[str] | str) -> None:
    """Every LoRA target module name must name a Linear layer of the base model."""
    if targets == "all-linear":
        return
    names = _linear_names(_meta_model(path))
    leaves = sorted({n.rsplit(".", 1)[-1] for n in names})
    bad = [t for t in targets if t not in leaves]
    if bad:
        raise InvalidInput(
            f"LoRA target module(s) {bad} do not exist in the base model's linear layers." + close_matches(bad[0], leaves)
        )


def check_adapter_compatible(adapter_dir: Path, base_dir: Path) -> None:
    """Refuse an adapter whose target modules or matrix shapes do not match the base model."""
    cfg_file = Path(adapter_dir) / "adapter_config.json"
    if not cfg_file.exists():
        raise InvalidInput(f"{adapter_dir} is not a PEFT adapter folder (no adapter_config.json).")
    acfg = json.loads(cfg_file.read_text())
    linears = _linear_names(_meta_model(base_dir))
    targets = acfg.get("target_modules") or []
    if isinstance(targets, str):
        targets = [targets]
    leaves = {n.rsplit(".", 1)[-1] for n in linears}
    missing = [t for t in targets if t not in leaves and t != "all-linear"]
    if missing:
        raise InvalidInput(f"Adapter {adapter_dir} targets {missing}, which the base model {base_dir} does not have.")
    weights = Path(adapter_dir) / "adapter_model.safetensors"
    if not weights.exists():
        return
    from safetensors import safe_open

    by_suffix = {".".join(n.split(".")[-4:]): shape for n, shape in linears.items()}
    with safe_open(str(weights), framework="pt") as fh:
        for key in fh.keys():
            if ".lora_A." not in key and ".lora_B." not in key:
                continue
            module = key.split(".lora_")[0]
            suffix = ".".join(module.split(".")[-4:])
            shape = fh.get_slice(key).get_shape()
            base_shape = by_suffix.get(suffix)
            if base_shape is None:
                raise InvalidInput(f"Adapter {adapter_dir} has weights for {module}, which base {base_dir} lacks.")
            in_f, out_f = base_shape
            ok = shape[1] == in_f if ".lora_A." in key else shape[0] == out_f
            if not ok:
                raise InvalidInput(
                    f"Adapter {adapter_dir} does not fit base {base_dir}: {key} has shape {list(shape)} but the base "
                    f"layer is {in_f} -> {out_f} (was it trained on another model?)."
                )
