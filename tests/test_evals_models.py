"""Real models: SmolLM2 against itself (other sampling settings: passes) and against an llm-katan echo
upstream (fails).  Slow: tiny samples (5 prompts, 8 new tokens; one red-team prompt against the echo)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelsteward.evals import EvalConfig, evaluate
from evals_helpers import PROMPTS, katan_echo, seed_logs

SMOL = "local:smollm2-135m-instruct"
pytestmark = pytest.mark.slow


@pytest.fixture
def katan(tmp_path: Path) -> Iterator[str]:
    with katan_echo(tmp_path) as url:
        yield url


def _use_case(steward) -> None:  # type: ignore[no-untyped-def]
    steward.registry.register_model("local", "smollm2-135m-instruct")
    steward.registry.add_use_case("qa", model=SMOL)
    seed_logs(steward, "qa", SMOL, PROMPTS[:5], feedback=None)


def test_smollm2_against_itself_with_other_sampling_passes(steward) -> None:  # type: ignore[no-untyped-def]
    _use_case(steward)
    t0 = time.monotonic()
    out = evaluate(steward, EvalConfig(
        use_case="qa", candidate=SMOL, samples=5, max_tokens=8, safety=False, mlflow=False,
        candidate_params={"temperature": 0.2, "top_p": 0.5, "seed": 11},
    ))
    assert out.verdict == "pass", out.reasons
    assert out.metrics["similarity"]["embedding"] > 0.9
    assert out.metrics["quality"]["method"] == "pairwise"  # no reference neither model wrote
    assert out.metrics["performance"]["candidate"]["error_rate"] == 0.0
    assert out.metrics["performance"]["candidate"]["tokens_per_s"] > 0
    assert steward.registry.get_model(SMOL).status == "current"  # a live model is never marked evaluating
    print(f"smollm2 vs itself: {time.monotonic() - t0:.1f}s")


def test_smollm2_against_echo_upstream_fails(steward, katan: str, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("STEWARD_MODELKEY_KATAN", "test-key")  # llm-katan wants an Authorization header
    _use_case(steward)
    steward.registry.register_model("custom", "echo-model", base_url=katan, status="candidate",
                                    metadata={"api_key_env": "STEWARD_MODELKEY_KATAN"})
    t0 = time.monotonic()
    out = evaluate(steward, EvalConfig(use_case="qa", candidate="custom:echo-model", samples=5, max_tokens=8,
                                       safety_prompts=1, mlflow=False))
    assert out.verdict == "fail", out.reasons
    q = out.metrics["quality"]
    assert q["ratio"] < 0.8 and out.metrics["gate"]["quality"]["status"] == "fail", out.reasons
    assert out.metrics["similarity"]["embedding"] < 0.8
    assert out.metrics["performance"]["candidate"]["error_rate"] == 0.0
    assert steward.registry.get_model("custom:echo-model").status == "candidate"
    print(f"smollm2 vs echo: {time.monotonic() - t0:.1f}s")
