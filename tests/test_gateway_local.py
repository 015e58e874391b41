"""The local provider: any transformers folder (a tiny random model built here, with no chat
template), a peft LoRA adapter on it registered as a fine-tune, and the SmolLM2 base."""

from __future__ import annotations

import asyncio

import pytest

from modelsteward.providers import LocalProvider, complete, get_provider, run_sync

pytestmark = pytest.mark.slow

WORDS = ["hello", "world", "the", "cat", "sat", "on", "mat", "a", "dog", "ran", "user", "assistant", ":"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 1-layer Llama with a word-level tokenizer, plus a LoRA adapter on it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("tiny")
    vocab = {"[UNK]": 0, "[EOS]": 1, "[PAD]": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", eos_token="[EOS]", pad_token="[PAD]")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128,
                      eos_token_id=1, pad_token_id=2, bos_token_id=None)
    model = LlamaForCausalLM(cfg)
    base = root / "base"
    model.save_pretrained(base)
    tok.save_pretrained(base)
    lora = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    adapter = root / "adapter"
    lora.save_pretrained(adapter)
    return base, adapter


def test_any_folder_and_a_lora_fine_tune(steward, tiny):
    base, adapter = tiny
    m = steward.registry.register_model("local", "tiny", metadata={"path": str(base)})
    ft = steward.registry.register_model("local", "tiny-ft", kind="fine_tuned", parent_model_id="local:tiny",
                                         adapter_path=str(adapter))
    msgs = [{"role": "user", "content": "the cat sat on the mat"}]
    r1 = complete(m, steward.settings, msgs, max_tokens=5)
    r2 = complete(m, steward.settings, msgs, max_tokens=5, temperature=0)
    assert r1.text == r2.text  # greedy: deterministic
    assert r1.output_tokens <= 5 and r1.input_tokens >= 7 and r1.model_id == "local:tiny"
    assert r1.finish_reason in ("stop", "length")
    p = get_provider(ft, steward.settings)
    assert isinstance(p, LocalProvider) and p.adapter_path == adapter and p.path == base
    assert get_provider(ft, steward.settings) is p
    rf = complete(ft, steward.settings, msgs, max_tokens=5)
    assert rf.model_id == "local:tiny-ft" and rf.output_tokens <= 5
    sampled = complete(m, steward.settings, msgs, max_tokens=5, temperature=1.0, seed=3)
    assert sampled.output_tokens <= 5

    async def collect():
        return [c async for c in get_provider(m, steward.settings).stream(msgs, max_tokens=4)]

    chunks = run_sync(collect())
    assert chunks[-1].final and 0 < chunks[-1].output_tokens <= 4
    assert "".join(c.text for c in chunks).strip() == complete(m, steward.settings, msgs, max_tokens=4).text.strip()


def test_adapter_is_merged_for_serving_with_the_same_outputs(tiny, monkeypatch):
    import torch

    base, adapter = tiny
    merged = LocalProvider("local:tiny-ft", base, adapter_path=adapter)
    merged.load()
    monkeypatch.setenv("STEWARD_LOCAL_MERGE_ADAPTER", "0")
    plain = LocalProvider("local:tiny-ft", base, adapter_path=adapter)
    plain.load()
    assert merged.merge_adapter and not plain.merge_adapter
    assert not any("lora" in n for n, _ in merged._model.named_parameters())
    assert any("lora" in n for n, _ in plain._model.named_parameters())
    ids = torch.tensor([[3, 4, 5, 6, 7]])
    with torch.no_grad():
        a, b = merged._model(ids).logits, plain._model(ids).logits
    assert torch.allclose(a, b, atol=1e-4), (a - b).abs().max()


def test_smollm2_base_chat_template_and_concurrency_limit(settings):
    from modelsteward.providers.local_assets import BASE_MODEL_ID, ensure_base_model

    p = LocalProvider(BASE_MODEL_ID, ensure_base_model(settings.cache_dir), concurrency=1)
    p.load()

    async def three():
        msgs = [{"role": "user", "content": "What is the capital of France?"}]
        return await asyncio.gather(*(p.chat(msgs, max_tokens=8, temperature=t) for t in (None, 0, None)))

    a, b, c = run_sync(three())
    assert a.text == b.text == c.text and "Paris" in a.text
    assert a.input_tokens > 20  # the chat template (system prompt) was applied
    assert p.peak_active == 1 and p.active == 0  # three at once, generated one at a time
