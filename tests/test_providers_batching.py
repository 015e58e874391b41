"""Dynamic batching of greedy local requests: same answers as one at a time, fewer generate calls."""

from __future__ import annotations

import asyncio

import pytest

from modelsteward.providers.local import LocalProvider
from modelsteward.providers.local_assets import ensure_base_model
from modelsteward.settings import Settings


@pytest.mark.slow
def test_concurrent_greedy_requests_are_batched_with_identical_answers(settings: Settings) -> None:
    path = ensure_base_model(settings.cache_dir)
    prov = LocalProvider("local:smollm2-135m-instruct", path, concurrency=1)
    prompts = [f"Name a colour and a fruit, number {i}." for i in range(4)] + ["Say hello in French."]

    async def run(max_batch: int) -> list:
        prov.max_batch = max_batch
        return await asyncio.gather(*(prov.chat([{"role": "user", "content": q}], max_tokens=12) for q in prompts))

    one_by_one = asyncio.run(run(1))
    assert prov.batches == 0
    batched = asyncio.run(run(8))
    assert prov.batches >= 1, "concurrent greedy requests were not batched"
    assert prov.peak_active == 1  # a batch is one generation: the concurrency limit holds
    for a, b in zip(one_by_one, batched):
        assert a.text == b.text
        assert (a.input_tokens, a.output_tokens, a.finish_reason) == (b.input_tokens, b.output_tokens, b.finish_reason)
    # sampling requests never join a batch
    before = prov.batches
    asyncio.run(prov.chat([{"role": "user", "content": "hi"}], max_tokens=4, temperature=0.7, seed=1))
    assert prov.batches == before
