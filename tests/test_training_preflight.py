"""Bad input is refused before any compute: unknown or remote base, bad adapter, a full fine-tune that won't fit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelsteward.errors import Conflict, InvalidInput, NotFound
from modelsteward.training.pipeline import FineTuneRequest, create_job, get_job
from modelsteward.training.preflight import (
    check_adapter_compatible,
    check_memory,
    count_params,
    estimate_memory,
)
from modelsteward.training.trainer import TrainConfig, lr_at
from training_helpers import tiny_llama


def _uc(steward) -> None:  # type: ignore[no-untyped-def]
    steward.registry.add_use_case("story", description="story game")


def test_unknown_base_names_close_matches(steward) -> None:  # type: ignore[no-untyped-def]
    _uc(steward)
    steward.registry.register_model("local", "tiny-llama", metadata={"path": "/nowhere"})
    with pytest.raises(NotFound, match="Unknown base model 'local:tiny-lama'.*local:tiny-llama"):
        create_job(steward, FineTuneRequest(use_case="story", base_model_id="local:tiny-lama"))
    assert get_job_count(steward) == 0


def get_job_count(steward) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from modelsteward.storage.models import FineTuningJob

    with steward.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(FineTuningJob)) or 0)


def test_paid_base_refused(steward) -> None:  # type: ignore[no-untyped-def]
    _uc(steward)
    steward.registry.register_model("openrouter", "openai/gpt-4o-mini", price_in_per_m="0.15")
    with pytest.raises(InvalidInput, match="only local transformers models can be fine-tuned"):
        create_job(steward, FineTuneRequest(use_case="story", base_model_id="openrouter:openai/gpt-4o-mini"))


def test_unknown_lora_target_refused(steward, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _uc(steward)
    path = tiny_llama(tmp_path / "tiny")
    steward.registry.register_model("local", "tiny", metadata={"path": str(path)})
    req = FineTuneRequest(use_case="story", base_model_id="local:tiny", train=TrainConfig(lora_targets=["qkv_proj"]))
    with pytest.raises(InvalidInput, match=r"qkv_proj.*do not exist"):
        create_job(steward, req)


def _adapter_on(base: Path, out: Path) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")).save_pretrained(out)
    return out


def test_incompatible_adapter_refused(steward, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    small = tiny_llama(tmp_path / "small", hidden=32)
    other = tiny_llama(tmp_path / "other", hidden=64)
    adapter = _adapter_on(small, tmp_path / "adapter")
    check_adapter_compatible(adapter, small)  # fits its own base
    with pytest.raises(InvalidInput, match=r"does not fit base .*shape \[4, 32\].*64 -> "):
        check_adapter_compatible(adapter, other)
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    cfg["target_modules"] = ["c_attn"]
    (adapter / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(InvalidInput, match="c_attn"):
        check_adapter_compatible(adapter, small)
    # through the job API: refused before a job row exists
    _uc(steward)
    steward.registry.register_model("local", "other", metadata={"path": str(other)})
    good = _adapter_on(small, tmp_path / "adapter2")
    req = FineTuneRequest(use_case="story", base_model_id="local:other", train=TrainConfig(init_adapter=str(good)))
    with pytest.raises(InvalidInput, match="does not fit base"):
        create_job(steward, req)
    assert get_job_count(steward) == 0


def test_full_fine_tune_that_will_not_fit_is_refused(steward, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A 70B-shaped config (no weights): the estimate alone refuses it, on this machine's real free memory."""
    from transformers import LlamaConfig

    big = tmp_path / "big"
    LlamaConfig(hidden_size=8192, intermediate_size=28672, num_hidden_layers=80, num_attention_heads=64,
                num_key_value_heads=8, vocab_size=128256).save_pretrained(big)
    n = count_params(big)
    assert 69e9 < n < 72e9
    assert estimate_memory(n, "full") == int(n * 4 * 4 * 1.25)
    _uc(steward)
    steward.registry.register_model("local", "big", metadata={"path": str(big)})
    with pytest.raises(InvalidInput, match=r"full fine-tune of this 70\d\d\dM-parameter model needs about .* GiB.*--method lora"):
        create_job(steward, FineTuneRequest(use_case="story", base_model_id="local:big", method="full"))
    assert get_job_count(steward) == 0


def test_memory_budget_is_compared_to_estimate(tmp_path: Path) -> None:
    tiny = tiny_llama(tmp_path / "tiny")
    n = count_params(tiny)
    info = check_memory(tiny, "full", budget=estimate_memory(n, "full") + 1)
    assert info["params"] == n
    with pytest.raises(InvalidInput, match="budget"):
        check_memory(tiny, "full", budget=estimate_memory(n, "full") - 1)


def test_duplicate_name_refused_and_job_queued(steward, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _uc(steward)
    tiny = tiny_llama(tmp_path / "tiny")
    steward.registry.register_model("local", "tiny", metadata={"path": str(tiny)})
    job_id = create_job(steward, FineTuneRequest(use_case="story", base_model_id="local:tiny", name="ft-a"))
    job = get_job(steward, job_id)
    assert job.status == "queued" and job.method == "lora" and job.config["name"] == "ft-a"
    steward.registry.register_model("local", "ft-b", metadata={"path": str(tiny)})
    with pytest.raises(Conflict, match="local:ft-b already exists"):
        create_job(steward, FineTuneRequest(use_case="story", base_model_id="local:tiny", name="ft-b"))
    with pytest.raises(InvalidInput, match="lower-case"):
        create_job(steward, FineTuneRequest(use_case="story", base_model_id="local:tiny", name="Bad Name"))


def test_lr_schedule_is_warmup_then_cosine() -> None:
    cfg = TrainConfig(max_steps=100, warmup_steps=10, learning_rate=1e-3, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(1e-4)
    assert lr_at(9, cfg) == pytest.approx(1e-3)
    assert lr_at(10, cfg) == pytest.approx(1e-3)
    assert lr_at(100, cfg) == pytest.approx(1e-4)
    assert all(lr_at(s, cfg) >= lr_at(s + 1, cfg) for s in range(10, 100))
