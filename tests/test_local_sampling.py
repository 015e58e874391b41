"""Per-row sampling inside one batched generate (``providers/local_sampling.py``), on synthetic logits:
greedy rows untouched, each sampled row follows its own temperature / top_k / top_p / seed."""

from __future__ import annotations

import torch

from modelsteward.providers.local_sampling import RowSampler, RowSampling, RowStops, row_sampling

VOCAB = 50


def _scores(rows: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, VOCAB, generator=g) * 3


def _draw(sampler: RowSampler, scores: torch.Tensor, steps: int) -> list[list[int]]:
    ids = torch.zeros((scores.shape[0], 1), dtype=torch.long)
    picks: list[list[int]] = [[] for _ in range(scores.shape[0])]
    for _ in range(steps):
        out = sampler(ids, scores)  # type: ignore[arg-type]
        for i, t in enumerate(out.argmax(-1).tolist()):  # the greedy argmax generate takes
            picks[i].append(t)
    return picks


def test_greedy_rows_pass_through_and_sampled_rows_keep_one_token() -> None:
    scores = _scores(3)
    sampler = RowSampler([RowSampling(), RowSampling(temperature=0.7, seed=1), RowSampling(temperature=None)])
    out = sampler(torch.zeros((3, 1), dtype=torch.long), scores)  # type: ignore[arg-type]
    assert torch.equal(out[0], scores[0]) and torch.equal(out[2], scores[2])
    assert int(torch.isfinite(out[1]).sum()) == 1  # only the sampled token is left for the argmax
    assert torch.equal(scores, _scores(3))  # the input is not modified in place


def test_all_greedy_needs_no_sampler() -> None:
    assert not RowSampler([RowSampling(), RowSampling(temperature=0)]).sampled
    assert RowSampler([RowSampling(), RowSampling(temperature=0.5)]).sampled


def test_near_zero_temperature_and_top_k_1_follow_the_argmax() -> None:
    scores = _scores(3, seed=4)
    sampler = RowSampler([RowSampling(temperature=1e-6), RowSampling(temperature=1.5, top_k=1),
                          RowSampling(temperature=1.5, top_p=1e-9)])
    picks = _draw(sampler, scores, 20)
    for i in range(3):
        assert set(picks[i]) == {int(scores[i].argmax())}, i


def test_seeded_rows_are_reproducible_whatever_they_are_batched_with() -> None:
    scores = _scores(1, seed=2).repeat(3, 1)
    together = _draw(RowSampler([RowSampling(temperature=1.0, seed=11), RowSampling(),
                                 RowSampling(temperature=1.0, seed=12)]), scores, 30)
    alone = _draw(RowSampler([RowSampling(temperature=1.0, seed=11)]), scores[:1], 30)
    assert together[0] == alone[0]
    assert together[0] != together[2]  # another seed draws another sequence
    assert len(set(together[0])) > 1  # temperature 1 on spread logits really samples


def test_each_row_keeps_its_own_temperature() -> None:
    scores = _scores(1, seed=3).repeat(2, 1)
    picks = _draw(RowSampler([RowSampling(temperature=0.05, seed=1), RowSampling(temperature=5.0, seed=1)]),
                  scores, 200)
    top = int(scores[0].argmax())
    cold, hot = picks[0].count(top), picks[1].count(top)
    assert cold > 190 and hot < 100, (cold, hot)
    assert len(set(picks[1])) > 2 * len(set(picks[0]))


def test_row_sampling_reads_request_params() -> None:
    r = row_sampling({"temperature": 0.7, "top_p": 0.9, "seed": 3}, default_top_k=50)
    assert (r.temperature, r.top_p, r.top_k, r.seed, r.greedy) == (0.7, 0.9, 50, 3, False)
    assert row_sampling({"temperature": 0, "top_k": 5}).greedy
    assert row_sampling({"temperature": 0.5, "top_k": 5}, default_top_k=50).top_k == 5


class _Tok:
    """Token i decodes to the i-th letter."""

    def decode(self, ids, skip_special_tokens: bool = True) -> str:  # type: ignore[no-untyped-def]
        return "".join(chr(ord("a") + int(i)) for i in ids)


def test_row_stops_stop_each_row_at_its_own_strings() -> None:
    ids = torch.tensor([[9, 0, 1, 2], [9, 0, 1, 2], [9, 0, 1, 2]])  # prompt "j", then "abc"
    stops = RowStops(_Tok(), [["bc"], None, ["x", "ab"]], prompt_width=1)
    assert stops(ids, torch.zeros(3, 3)).tolist() == [True, False, True]  # type: ignore[arg-type]
    assert RowStops(_Tok(), [["ja"]], prompt_width=1)(ids[:1], torch.zeros(1, 3)).tolist() == [False]  # type: ignore[arg-type]
