"""Dataset builder: filters, duplicates, redaction and the card, checked row by row."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from modelsteward.errors import InsufficientData, InvalidInput
from modelsteward.storage.logstore import LogStore
from modelsteward.training.dataset import DatasetSpec, build_from_connection, load_initial_data
from modelsteward.training.pii import install, pii_kinds, redact
from training_helpers import log_row, story_rows

PII_CASES = [
    ("write to jane.doe+x@example.co.uk today", "write to [EMAIL] today"),
    ("call +44 20 7946 0958 now", "call [PHONE] now"),
    ("US line (415) 555-2671 or 415.555.2671", "US line [PHONE] or [PHONE]"),
    ("card 4111 1111 1111 1111 exp", "card [CARD] exp"),
    ("card 4111-1111-1111-1111", "card [CARD]"),
    ("key sk-proj0123456789abcdefXYZ end", "key [API_KEY] end"),
    ("AKIAIOSFODNN7EXAMPLE", "[API_KEY]"),
    ("token ghp_0123456789abcdefghijABCDEFGHIJ0123456", "token [API_KEY]"),
    ("api_key=\"s3cr3tvalue99\" done", "api_key=\"[SECRET]\" done"),
    ("password: hunter2hunter2", "password: [PASSWORD]"),
    ("on 2024-01-15 we had 12 apples and order 12345", "on 2024-01-15 we had 12 apples and order 12345"),
]


@pytest.mark.parametrize(("text", "expected"), PII_CASES)
def test_redaction_python_and_duckdb_agree(text: str, expected: str) -> None:
    assert redact(text) == expected
    con = duckdb.connect()
    sql = install(con)
    assert con.execute(f"SELECT {sql('$1')}", [text]).fetchall()[0][0] == expected


def test_every_case_with_pii_is_found() -> None:
    assert all(bool(pii_kinds(text)) == (text != expected) for text, expected in PII_CASES)


def _store(steward, rows):  # type: ignore[no-untyped-def]
    steward.registry.add_use_case("story", description="story game")
    steward.logs.append_many(rows)
    steward.logs.flush()
    return steward.logs.reader.connect(lock_down=False)


def _lines(path: str) -> list[list[dict[str, str]]]:
    return [json.loads(line)["messages"] for line in Path(path).read_text().splitlines()]


def test_filters_duplicates_and_redaction_row_by_row(steward, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    clean = story_rows(20)
    special = [
        log_row("err", "broken", "x", status="error"),
        log_row("shadow", "shadow call", "y", role="shadow"),
        log_row("canary", "canary call", "z", role="canary"),
        log_row("held", "held out prompt", "held out answer"),
        log_row("bad-fb", "rated badly", "bad answer", feedback=-0.5),
        log_row("good-fb", "rated well, mail bob@corp.example or call (415) 555-2671",
                "sure, card 4111 1111 1111 1111 noted, key sk-abcdefghijklmnop0123", feedback=0.9),
        log_row("old", "ancient prompt", "ancient answer", hours_ago=24 * 60),
        log_row("other-uc", "other", "other", use_case="other"),
        {**log_row("malformed", "m", "r"), "messages": "not json at all"},
        log_row("empty", "no answer", " "),
        log_row("long", "long " * 50, "answer " * 50),
        # exact duplicate of s0 (another request id), and a near duplicate of s1
        {**clean[0], "request_id": "dup-exact", "feedback": 0.1},
        {**clean[1], "request_id": "dup-near", "response": clean[1]["response"].replace("dusk", "dawn")},
    ]
    con = _store(steward, clean + special)
    spec = DatasetSpec(use_case="story", since="30d", min_feedback=0.0, keep_unrated=True, max_chars=400,
                       min_rows=5, validation_fraction=0.2)
    card = build_from_connection(con, spec, tmp_path / "out", holdout_ids=["held"])
    c = card.counts
    assert c["logs_in_window"] == 20 + 11  # 'old' and 'other-uc' are outside
    assert (c["status_not_ok"], c["not_primary"], c["eval_holdout"], c["feedback_below"]) == (1, 2, 1, 1)
    assert (c["malformed"], c["too_long"], c["unrated"]) == (2, 1, 0)  # 'empty' response counts as malformed
    assert c["exact_duplicates"] == 1 and c["near_duplicates"] == 1 and c["redacted_rows"] == 1
    rows = _lines(card.train_path) + _lines(card.validation_path)
    assert len(rows) == card.train_rows + card.validation_rows == 21
    texts = [" ".join(m["content"] for m in r) for r in rows]
    for word in ("broken", "shadow call", "canary call", "held out", "rated badly", "ancient", "other", "long long"):
        assert not any(word in t for t in texts), word
    # one copy of each duplicate group survives; the near-duplicate variant is gone
    assert sum(clean[0]["response"] in t for t in texts) == 1
    assert sum(clean[1]["messages"][1]["content"] in t for t in texts) == 1
    redacted = next(r for r in rows if "rated well" in r[1]["content"])
    assert redacted[1]["content"] == "rated well, mail [EMAIL] or call [PHONE]"
    assert redacted[2] == {"role": "assistant", "content": "sure, card [CARD] noted, key [API_KEY]"}
    raw = Path(card.train_path).read_text() + Path(card.validation_path).read_text()
    assert "bob@corp.example" not in raw and "4111" not in raw and "sk-abc" not in raw
    # every row is a chat: system, user, assistant
    assert all([m["role"] for m in r] == ["system", "user", "assistant"] for r in rows)
    saved = json.loads((tmp_path / "out" / "card.json").read_text())
    assert saved["sha256"] == card.sha256 and saved["counts"] == c


def test_feedback_filter_drops_unrated_and_split_is_stable(steward, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = story_rows(30)
    for i, r in enumerate(rows):
        r["feedback"] = None if i % 3 == 0 else (0.8 if i % 3 == 1 else 0.2)
    con = _store(steward, rows)
    spec = DatasetSpec(use_case="story", min_feedback=0.5, min_rows=3, validation_fraction=0.3)
    a = build_from_connection(con, spec, tmp_path / "a")
    assert a.counts["unrated"] == 10 and a.counts["feedback_below"] == 10
    assert a.train_rows + a.validation_rows == 10
    b = build_from_connection(con, spec, tmp_path / "b")
    assert a.sha256 == b.sha256  # same input, same bytes
    assert Path(a.validation_path).read_bytes() == Path(b.validation_path).read_bytes()


def test_initial_data_joins_and_is_redacted(steward, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    init = tmp_path / "init.jsonl"
    init.write_text("\n".join([
        json.dumps({"messages": [{"role": "user", "content": "Who are you? mail me at a@b.io"},
                                 {"role": "assistant", "content": "The narrator."}]}),
        json.dumps({"prompt": "Say hi", "completion": "Hi, traveller."}),
        "",
    ]))
    rows = load_initial_data(init)
    con = _store(steward, story_rows(4))
    card = build_from_connection(con, DatasetSpec(use_case="story", min_rows=1), tmp_path / "o", initial_rows=rows)
    assert card.counts["initial_rows"] == 2
    texts = [json.dumps(r) for r in _lines(card.train_path) + _lines(card.validation_path)]
    assert any("mail me at [EMAIL]" in t for t in texts) and not any("a@b.io" in t for t in texts)
    assert any("Hi, traveller." in t for t in texts)


def test_bad_initial_data_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "no answer"}]}) + "\n")
    with pytest.raises(InvalidInput, match="ending with an assistant turn"):
        load_initial_data(bad)
    with pytest.raises(InvalidInput, match="does not exist"):
        load_initial_data(tmp_path / "missing.jsonl")


def test_too_few_rows_refused_with_counts(steward, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = story_rows(6) + [log_row("e1", "x", "y", status="error"), log_row("sh", "x", "y", role="shadow")]
    con = _store(steward, rows)
    with pytest.raises(InsufficientData) as err:
        build_from_connection(con, DatasetSpec(use_case="story", min_rows=50), tmp_path / "o")
    msg = err.value.message
    assert "need 50" in msg and "status_not_ok=1" in msg and "not_primary=1" in msg and "logs_in_window=8" in msg
    assert err.value.details["counts"]["train_rows"] < 50
    assert not (tmp_path / "o").exists()  # nothing written


def test_near_duplicates_agree_with_datasketch(steward, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Pairs the SQL MinHash drops are near-duplicates by datasketch's MinHash estimate too."""
    from datasketch import MinHash

    base = story_rows(12)
    variants = []
    for i, r in enumerate(base[:6]):
        words = r["response"].split()
        words[-1 - i % 3] = "changed"
        variants.append({**r, "request_id": f"v{i}", "response": " ".join(words)})
    con = _store(steward, base + variants)
    card = build_from_connection(con, DatasetSpec(use_case="story", min_rows=1), tmp_path / "o")
    assert card.counts["near_duplicates"] == 6

    def mh(text: str) -> MinHash:
        w = text.lower().split()
        m = MinHash(num_perm=128, seed=1)
        for i in range(len(w) - 2):
            m.update(" ".join(w[i:i + 3]).encode())
        return m

    for r, v in zip(base[:6], variants):
        a = mh(r["messages"][1]["content"] + " " + r["response"])
        b = mh(v["messages"][1]["content"] + " " + v["response"])
        assert a.jaccard(b) >= 0.7
    # distinct rows stay distinct for datasketch as well
    assert mh(base[0]["response"]).jaccard(mh(base[1]["response"])) < 0.5


def test_build_dataset_cli_json(steward, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from modelsteward.cli import app

    steward.registry.add_use_case("story", description="story game")
    steward.logs.append_many(story_rows(24))
    steward.logs.flush()
    steward.close()
    res = CliRunner().invoke(app, ["dataset", "build", "--use-case", "story", "--since", "7d", "--min-rows", "5",
                                   "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["train_rows"] + out["validation_rows"] == 24 and len(out["sha256"]) == 64
    assert Path(out["path"]).parent == settings.workspace / "datasets" / "story"
    assert out["mlflow_run_id"]
    res = CliRunner().invoke(app, ["dataset", "build", "--use-case", "story", "--min-rows", "500"])
    assert res.exit_code != 0
    assert "counts per filter" in str(res.exception) or "counts per filter" in res.output
