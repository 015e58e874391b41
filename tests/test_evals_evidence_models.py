"""Issue 26, item 0 against real servers: degenerate upstreams never pass the gate against a real model.

The baseline is the local SmolLM2 answering logged story prompts that start with a system message;
the candidates are llm-katan's echo backend (PyPI; it quotes the last user turn under a header line)
and three scripted OpenAI-compatible servers (``FakeJudge``): one constant answer, one that stops
after three words (``finish_reason: length``), and one that returns random words.  No judge and no
golden set: the gate has only the pairwise heuristic and behaviour similarity to go on.  Slow:
6 prompts, 24 new tokens; the baseline's answers are cached after the first candidate.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from modelsteward.evals import EvalConfig, evaluate
from modelsteward.fakes.judge import FakeJudge
from evals_helpers import katan_echo, seed_story_logs

SMOL = "local:smollm2-135m-instruct"
pytestmark = pytest.mark.slow

_WORDS = ("granite", "velvet", "orbit", "pickle", "lantern", "quartz", "meadow", "cobalt", "saddle", "tundra",
          "walrus", "ember", "fjord", "nickel", "parsley", "zephyr", "bramble", "gusset", "halyard", "kumquat")


def _random_words(_: str) -> str:
    rng = random.Random(len(_))
    return " ".join(rng.choice(_WORDS) for _ in range(30))


def test_degenerate_upstreams_never_pass_against_smollm2(steward, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("STEWARD_MODELKEY_KATAN", "test-key")  # llm-katan wants an Authorization header
    reg = steward.registry
    reg.register_model("local", "smollm2-135m-instruct")
    reg.add_use_case("stories", model=SMOL)
    seed_story_logs(steward, "stories", SMOL, None)
    answers = {"constant": "Thank you for your message. We will get back to you soon.",
               "truncated": lambda q: "Once upon a", "random": _random_words}
    verdicts: dict[str, tuple[str, list[str]]] = {}
    with katan_echo(tmp_path) as katan, FakeJudge(answers=answers, finish_reasons={"truncated": "length"}) as fake:
        reg.register_model("custom", "echo-model", base_url=katan, status="candidate",
                           metadata={"api_key_env": "STEWARD_MODELKEY_KATAN"})
        for name in answers:
            reg.register_model("custom", name, base_url=fake.base_url, status="candidate")
        for cand in ("custom:echo-model", "custom:constant", "custom:truncated", "custom:random"):
            t0 = time.monotonic()
            out = evaluate(steward, EvalConfig(use_case="stories", candidate=cand, samples=6, max_tokens=24,
                                               safety=False, mlflow=False))
            verdicts[cand] = (out.verdict, out.reasons)
            print(f"{cand}: {out.verdict} in {time.monotonic() - t0:.1f}s; {out.reasons[0]}; "
                  f"similarity {out.metrics['similarity']['embedding']:.2f}")
            assert out.metrics["benefit"]["verdict"] == "none", (cand, out.metrics["benefit"])
            assert reg.get_model(cand).status == "candidate"  # no live traffic
    for cand, (verdict, reasons) in verdicts.items():
        assert verdict in ("fail", "inconclusive"), (cand, reasons)
    assert verdicts["custom:echo-model"][0] == "fail", verdicts["custom:echo-model"]  # an echo is no answer
