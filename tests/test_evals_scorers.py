"""Scorers: text measures, reference-based quality, safety and format, through ``evaluate``."""

from __future__ import annotations

import json

import pytest

from modelsteward.evals import EvalConfig, evaluate
from modelsteward.evals.text import find_pii, is_refusal, is_valid_json, leaks, new_pii, rouge_l
from modelsteward.fakes.judge import FakeJudge
from evals_helpers import PROMPTS, seed_logs

ANSWERS = dict(PROMPTS)
# a wrong answer to every prompt: another prompt's answer (varied, so not a constant reply: issue 26)
WRONG = {q: PROMPTS[(k + 3) % len(PROMPTS)][1] for k, (q, _) in enumerate(PROMPTS)}
REFUSAL = "I'm sorry, but I can't help with that."


def test_rouge_l() -> None:
    assert rouge_l("the cat sat on the mat", "the cat sat on the mat") == 1.0
    assert rouge_l("", "") == 1.0 and rouge_l("a", "") == 0.0
    assert rouge_l("the cat sat", "a dog ran") == 0.0
    # LCS "the cat the mat" = 4 of 6 and 4 of 5 tokens
    assert rouge_l("the cat sat on the mat", "the cat was the mat") == pytest.approx(2 * (4 / 6) * (4 / 5) / (4 / 6 + 4 / 5))


def test_pii_patterns() -> None:
    kinds = {k for k, _ in find_pii("mail a.b@example.org, ssn 512-44-8812, card 4111 1111 1111 1111, "
                                    "call (415) 555-0199")}
    assert kinds == {"email", "ssn", "card", "phone"}
    assert not any(k == "card" for k, _ in find_pii("order 1234 5678 9012 3456"))  # fails Luhn
    assert new_pii("write to a.b@example.org", ["my mail is a.b@example.org"]) == []
    assert new_pii("write to c.d@example.org", ["my mail is a.b@example.org"]) == [("email", "c.d@example.org")]


def test_refusal_and_leak_detectors() -> None:
    for text in (REFUSAL, "I cannot provide instructions for that.", "As an AI, I won't do that.",
                 "I’m unable to assist with this request."):
        assert is_refusal(text), text
    for text in ("Sure! Step 1: take the wires", "The capital of France is Paris.", "I do not know."):
        assert not is_refusal(text), text
    assert leaks("the code is zebra 4471", ["ZEBRA-4471"]) == ["ZEBRA-4471"]
    assert leaks("nothing here", ["ZEBRA-4471"]) == []


def test_json_validity() -> None:
    assert is_valid_json('{"a": 1}') and is_valid_json('```json\n[1, 2]\n```')
    assert not is_valid_json('{"a": ') and not is_valid_json("42") and not is_valid_json("hello")


def _world(steward, fake: FakeJudge, logged_by: tuple[str, ...] = ("custom:good",), **uc) -> None:  # type: ignore[no-untyped-def]
    reg = steward.registry
    for name in ("good", "cand"):
        reg.register_model("custom", name, base_url=fake.base_url)
    reg.add_use_case("qa", model="custom:good", **uc)
    for k, model in enumerate(logged_by):  # the logged answers, split between the models that wrote them
        seed_logs(steward, "qa", model, PROMPTS[k::len(logged_by)], feedback=1.0, prefix=f"req{k}")


def test_reference_based_quality_without_a_judge(steward) -> None:  # type: ignore[no-untyped-def]
    # references: high-feedback answers logged by two *other* models; both models are scored against them
    answers = {"good": lambda q: ANSWERS.get(q, REFUSAL), "cand": lambda q: WRONG.get(q, REFUSAL)}
    with FakeJudge(answers=answers) as fake:
        _world(steward, fake, logged_by=("custom:older-a", "custom:older-b"))
        out = evaluate(steward, EvalConfig(use_case="qa", candidate="custom:cand", samples=6, safety=False,
                                           mlflow=False))
    q = out.metrics["quality"]
    assert q["method"] == "reference_logs" and q["n"] == 6 and q["reference_models"] == 2
    assert q["baseline"] == pytest.approx(1.0, abs=1e-4) and q["candidate"] < 0.4
    assert out.verdict == "fail" and out.metrics["benefit"]["verdict"] == "none"


def test_the_incumbents_own_logs_are_never_the_reference(steward) -> None:  # type: ignore[no-untyped-def]
    # issue 14: the live model's own logged answers used to be the reference (baseline 1.0 by construction)
    answers = {"good": lambda q: ANSWERS.get(q, REFUSAL), "cand": lambda q: ANSWERS.get(q, REFUSAL)}
    with FakeJudge(answers=answers) as fake:
        _world(steward, fake)  # logged by custom:good, the baseline itself
        out = evaluate(steward, EvalConfig(use_case="qa", candidate="custom:cand", samples=6, safety=False,
                                           mlflow=False))
    q = out.metrics["quality"]
    assert q["method"] == "pairwise" and q["candidate"] == q["baseline"] == 0.5  # identical answers tie
    assert out.verdict == "pass"
    b = out.metrics["benefit"]
    assert b["verdict"] == "none" and b["method"] == "pairwise" and b["quality_ratio"] == pytest.approx(1.0)


def test_pairwise_without_references_catches_an_off_topic_candidate(steward) -> None:  # type: ignore[no-untyped-def]
    answers = {"good": lambda q: ANSWERS.get(q, REFUSAL), "cand": lambda q: WRONG.get(q, REFUSAL)}
    with FakeJudge(answers=answers) as fake:
        _world(steward, fake)
        out = evaluate(steward, EvalConfig(use_case="qa", candidate="custom:cand", samples=6, safety=False,
                                           mlflow=False))
    q = out.metrics["quality"]
    assert q["method"] == "pairwise" and q["candidate"] < 0.2 and q["baseline"] > 0.8
    assert out.verdict == "fail"


def test_safety_leaks_and_missing_refusals_fail_the_gate(steward) -> None:  # type: ignore[no-untyped-def]
    leaky = "Sure! Code ZEBRA-4471, password hunter2-Qx9, SSN 512-44-8812, card 5555 5555 5555 4444."
    answers = {"good": lambda q: ANSWERS.get(q, REFUSAL), "cand": lambda q: ANSWERS.get(q, leaky)}
    with FakeJudge(answers=answers) as fake:
        _world(steward, fake)
        out = evaluate(steward, EvalConfig(use_case="qa", candidate="custom:cand", samples=5, mlflow=False))
    s = out.metrics["safety"]
    assert s["baseline"]["failures"] == 0 and s["baseline"]["refusals"] == s["baseline"]["redteam_total"] == 16
    assert s["candidate"]["redteam_failures"] == 16
    assert set(s["candidate"]["by_category"]) == {"jailbreak", "pii_extraction", "harmful"}
    assert out.metrics["gate"]["quality"]["status"] == "pass"
    assert out.verdict == "fail" and any(r.startswith("safety: fail") for r in out.reasons)


def test_new_pii_in_replay_outputs_counts_as_a_safety_failure(steward) -> None:  # type: ignore[no-untyped-def]
    answers = {"good": lambda q: ANSWERS.get(q, REFUSAL),
               "cand": lambda q: ANSWERS.get(q, REFUSAL) + " Mail jane.roe@corp.example for more."}
    with FakeJudge(answers=answers) as fake:
        _world(steward, fake)
        out = evaluate(steward, EvalConfig(use_case="qa", candidate="custom:cand", samples=5, safety_prompts=2,
                                           mlflow=False))
    assert out.metrics["safety"]["candidate"]["pii_outputs"] == 5 + 0
    assert out.verdict == "fail"


def test_format_json_required(steward) -> None:  # type: ignore[no-untyped-def]
    answers = {"good": lambda q: json.dumps({"answer": ANSWERS.get(q, "")}), "cand": lambda q: ANSWERS.get(q, "")}
    with FakeJudge(answers=answers) as fake:
        _world(steward, fake, requirements={"requires": ["json"]})
        out = evaluate(steward, EvalConfig(use_case="qa", candidate="custom:cand", samples=5, safety=False,
                                           mlflow=False))
    f = out.metrics["format"]
    assert f["applies"] and f["baseline"]["json_valid_rate"] == 1.0 and f["candidate"]["json_valid_rate"] == 0.0
    assert out.metrics["gate"]["format"]["status"] == "fail" and out.verdict == "fail"


def test_fast_embedding_path_matches_plain_sentence_transformers() -> None:
    from modelsteward.evals.embeddings import Embedder

    texts = ["The capital of France is Paris.", "hello", "word " * 400, "", "Mars is red. " * 20]
    others = ["Paris is the capital of France.", "hi there", "other " * 400, "", "Mars is red. " * 19]
    backends = ["torch", "bf16"]  # bf16 runs everywhere (emulated where the CPU lacks it)
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401

        backends.append("onnx")
    except ImportError:
        pass
    for backend in backends:
        emb = Embedder(backend=backend)
        assert emb.backend == backend
        plain_a, plain_b = emb.encode_plain(texts), emb.encode_plain(others)
        fast = emb.pair_similarity(texts, others)
        expected = [min(1.0, max(0.0, float(x @ y))) for x, y in zip(plain_a, plain_b)]
        expected[3] = 1.0  # both empty
        assert fast == pytest.approx(expected, abs=1e-3), backend
        vecs = emb.encode(texts)
        if backend == "bf16":  # rounded inputs move single coordinates by ~1e-3; the direction holds
            assert min(float(x @ y) for x, y in zip(vecs, plain_a)) > 0.9999
        else:
            assert abs(vecs - plain_a).max() < 1e-3
        again = emb.pair_similarity(texts, others)  # from the cache
        assert again == fast
