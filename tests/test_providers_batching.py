"""Dynamic batching of local requests: greedy ones answer as one at a time, sampled ones join the
batch each with its own settings (``providers/local_sampling.py``), fewer generate calls."""

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


@pytest.mark.slow
def test_sampled_requests_batch_each_with_its_own_settings(settings: Settings) -> None:
    path = ensure_base_model(settings.cache_dir)
    prov = LocalProvider("local:smollm2-135m-instruct", path, concurrency=1)
    q = [{"role": "user", "content": "Name a colour and a fruit."}]

    async def run(*kws: dict) -> list:
        return await asyncio.gather(*(prov.chat(q, max_tokens=10, **kw) for kw in kws))

    greedy = asyncio.run(run({}))[0]
    assert prov.batches == 0
    seeded = {"temperature": 1.0, "seed": 7}
    rows = asyncio.run(run({}, {"temperature": 1e-5}, seeded, {"temperature": 0.7, "top_p": 0.9}, seeded,
                           {"temperature": 1.0, "seed": 8}, {"temperature": 0.7, "stop": [" "]}))
    assert prov.batches == 1, "sampled requests did not join the greedy one's batch"
    assert rows[0].text == greedy.text and rows[0].output_tokens == greedy.output_tokens  # greedy rows unchanged
    assert rows[1].text == greedy.text  # temperature ~0: the greedy answer
    assert rows[2].text == rows[4].text  # one seed, one answer, whatever row it sits in
    again = asyncio.run(run(seeded))[0]  # alone, in a later call
    assert again.text == rows[2].text
    assert " " not in rows[6].text and rows[6].finish_reason == "stop"  # its own stop string
    assert all(r.finish_reason in ("stop", "length") and r.output_tokens <= 10 for r in rows)
