"""The redaction module: recall on the PII corpus, precision on clean text, SQL pre-filter parity."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

import modelsteward.privacy as privacy
from modelsteward.privacy import PREFILTER, find, kinds_in, might_contain, redact, redact_obj

CORPUS = Path(__file__).parent / "fixtures" / "pii_corpus.jsonl"
ROWS = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
DEMO = Path(privacy.__file__).parents[1] / "demo" / "prompts.jsonl"
CLEAN = [json.loads(line)["prompt"] for line in DEMO.read_text(encoding="utf-8").splitlines() if line.strip()] + [
    "The meeting is on 2024-01-15 at 10:30 in room 12.", "Version 1.2.3 is out; see https://example.com/docs?page=2",
    "We sold 1,234,567 units in 2023 for $12.5M.", "I forgot my password yesterday, can you help?",
    "The dragon hoards 40000 gold coins and 12 rubies.",
]


def test_public_surface() -> None:
    assert sorted(privacy.__all__) == sorted(["Finding", "KINDS", "PREFILTER", "find", "might_contain", "redact",
                                              "redact_obj", "kinds_in"])


def test_corpus_is_big_and_varied_enough() -> None:
    kinds = {r["kind"] for r in ROWS} - {"mixed"}
    assert len(ROWS) >= 100 and len(kinds) >= 25
    assert len({r["lang"] for r in ROWS}) >= 8
    assert all(r["secrets"] and all(s in r["text"] for s in r["secrets"]) for r in ROWS)


def test_recall_on_the_corpus_is_at_least_98_percent() -> None:
    missed = [r["id"] for r in ROWS if any(s in redact(r["text"]) for s in r["secrets"])]
    recall = 1 - len(missed) / len(ROWS)
    assert recall >= 0.98, f"recall {recall:.3f}, missed {missed}"


def test_clean_text_is_left_alone() -> None:
    changed = [t for t in CLEAN if redact(t) != t]
    assert changed == []


@pytest.mark.parametrize(("text", "expected"), [
    ("mail jane@example.com now", "mail [EMAIL] now"),
    ("Ruf an: +49 30 901820", "Ruf an: [PHONE]"),
    ("card 4111 1111 1111 1111 ok", "card [CARD] ok"),
    ("order 4111 1111 1111 1112 ok", "order 4111 1111 1111 1112 ok"),  # fails Luhn: not a card, not redacted
    ("IBAN DE89 3704 0044 0532 0130 00.", "IBAN [IBAN]."),
    ("ssn 219-09-9998", "ssn [SSN]"),
    ("from 203.0.113.42 and 2001:db8::1", "from [IP] and [IP]"),
    ("postgres://app:S3cret-pw@db:5432/x", "postgres://app:[PASSWORD]@db:5432/x"),
    ("mot de passe : soleil42", "mot de passe : [PASSWORD]"),
])
def test_tokens_name_the_kind(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_overlapping_findings_are_merged_so_nothing_is_half_replaced() -> None:
    text = "creds AKIAIOSFODNN7EXAMPLE/wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY end"
    out = redact(text)
    assert "AKIA" not in out and "EXAMPLEKEY" not in out and out.startswith("creds [") and out.endswith("] end")
    spans = find(text)
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:]))


def test_redact_obj_walks_nested_values_and_keys() -> None:
    obj = {"prompt": "mail a@b.io", "rows": [{"x": "card 4111111111111111"}, 3, None], "a@b.io": True}
    out = redact_obj(obj)
    assert out == {"prompt": "mail [EMAIL]", "rows": [{"x": "card [CARD]"}, 3, None], "[EMAIL]": True}
    assert kinds_in("a@b.io 4111111111111111") == ["CARD", "EMAIL"]


def test_prefilter_reads_the_same_in_duckdb_and_python() -> None:
    con = duckdb.connect()
    texts = [r["text"] for r in ROWS] + CLEAN
    sql_says = [con.execute("SELECT regexp_matches($1, $2)", [t, PREFILTER]).fetchone()[0] for t in texts]  # type: ignore[index]
    assert sql_says == [might_contain(t) for t in texts]
    # Nothing the detectors find hides behind the pre-filter.
    assert all(might_contain(r["text"]) for r in ROWS)


def test_the_stewards_own_timestamps_and_numbers_come_through_unchanged() -> None:
    """Issue 29 item 4: reports showed ``2026-12-07T18:26:[PHONE]`` and ``[SECRET].149e-06``."""
    from pathlib import Path

    from modelsteward.privacy import redact

    path = Path(__file__).parent / "fixtures" / "pii_false_positives.txt"
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(lines) >= 15
    assert [ln for ln in lines if redact(ln) != ln] == []
    # ... while the same shapes still go when they are personal data or a password
    assert redact("call +1 415 555 0132 at 2026-12-07 18:26") == "call [PHONE] at 2026-12-07 18:26"
    assert redact("password: 3.14159265") == "password: [PASSWORD]"


def test_a_credential_pasted_on_its_own_is_found_by_its_shape_and_prose_is_left_alone() -> None:
    """Issue 25 item 6: a password with no keyword beside it passed the redaction."""
    from pathlib import Path

    from modelsteward.privacy import redact

    bare = [r for r in ROWS if r["kind"] == "bare_credential"]
    assert len(bare) >= 30
    assert [r["id"] for r in bare if any(s in redact(r["text"]) for s in r["secrets"])] == []
    path = Path(__file__).parent / "fixtures" / "pii_prose.txt"
    prose = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]
    changed = [ln for ln in prose if redact(ln) != ln]
    assert len(changed) <= 0.01 * len(prose), changed
