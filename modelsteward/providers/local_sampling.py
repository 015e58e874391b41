"""Per-request sampling and stop strings inside one batched ``generate`` (as serving engines do).

transformers' ``generate`` takes one set of sampling settings for the whole batch; a batch of
requests with their own temperature, ``top_p``, ``top_k`` and seed is run instead as a *greedy*
``generate`` with one :class:`RowSampler` (a ``LogitsProcessor``): for each sampled row it applies
that row's settings with transformers' own warpers (``TemperatureLogitsWarper``,
``TopKLogitsWarper``, ``TopPLogitsWarper``, in the order ``generate`` applies them), draws the next
token from the row's own ``torch.Generator`` (seeded when the request gives a seed, so a seeded
request answers the same whatever it is batched with) and leaves only that token finite, so the
greedy ``argmax`` picks it.  Greedy rows are left untouched: their answers are those of a plain
greedy ``generate``.  :class:`RowStops` stops each row at its own stop strings.

Only the local provider (``providers/local.py``) imports this module, inside its worker thread
(torch and transformers load with the model, never at ``import modelsteward``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import LogitsProcessor, StoppingCriteria
from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

__all__ = ["RowSampling", "RowSampler", "RowStops", "row_sampling"]


@dataclass(frozen=True)
class RowSampling:
    """One request's sampling settings; greedy when ``temperature`` is 0 or None."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return not self.temperature


def row_sampling(params: dict[str, Any], default_top_k: int | None = None) -> RowSampling:
    """The ``RowSampling`` of a request's params (``default_top_k``: the model's generation config,
    which a sampling ``generate`` would apply too)."""
    t, p, k, seed = params.get("temperature"), params.get("top_p"), params.get("top_k"), params.get("seed")
    return RowSampling(temperature=float(t) if t else None, top_p=float(p) if p else None,
                       top_k=int(k) if k else default_top_k, seed=int(seed) if seed is not None else None)


class RowSampler(LogitsProcessor):
    """Sample each non-greedy row with its own settings and generator; greedy rows pass through."""

    def __init__(self, rows: Sequence[RowSampling], device: str | torch.device = "cpu") -> None:
        self.rows = list(rows)
        self.generators: list[torch.Generator | None] = []
        self.warpers: list[list[Any]] = []
        for r in self.rows:
            gen = None
            if not r.greedy and r.seed is not None:
                gen = torch.Generator(device=device)
                gen.manual_seed(r.seed)
            self.generators.append(gen)
            chain: list[Any] = []
            if not r.greedy:
                chain.append(TemperatureLogitsWarper(float(r.temperature or 1.0)))
                if r.top_k and r.top_k > 0:
                    chain.append(TopKLogitsWarper(int(r.top_k)))
                if r.top_p is not None and r.top_p < 1.0:
                    chain.append(TopPLogitsWarper(float(r.top_p)))
            self.warpers.append(chain)

    @property
    def sampled(self) -> bool:
        return any(not r.greedy for r in self.rows)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        out = scores.clone()
        for i, r in enumerate(self.rows):
            if r.greedy:
                continue
            row = scores[i:i + 1].float()
            for w in self.warpers[i]:
                row = w(input_ids[i:i + 1], row)
            probs = torch.softmax(row, dim=-1)
            token = torch.multinomial(probs[0], 1, generator=self.generators[i])
            picked = torch.full_like(out[i], float("-inf"))
            picked[token] = 0.0
            out[i] = picked
        return out  # type: ignore[return-value]


class RowStops(StoppingCriteria):
    """Stop each row once its generated text holds one of its stop strings (rows without stop
    strings never stop here)."""

    def __init__(self, tokenizer: Any, stops: Sequence[Sequence[str] | None], prompt_width: int) -> None:
        self.tok = tokenizer
        self.stops = [list(s or []) for s in stops]
        self.start = prompt_width

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for i, stops in enumerate(self.stops):
            if stops:
                text = self.tok.decode(input_ids[i, self.start:], skip_special_tokens=True)
                done[i] = any(s in text for s in stops)
        return done  # type: ignore[return-value]
