"""Issue 28 item 2: the dataset build redacts each distinct candidate once, in parallel processes
when there are many, and gets exactly what the one-value path gets."""

from __future__ import annotations

import duckdb
import pytest

from modelsteward.training import pii
from modelsteward.training.pii import install, install_json, redact, redact_all, redact_json

TEXTS = [f"row {i}: call +44 20 7946 {i:04d} or mail p{i}@example.com" for i in range(40)] + [
    "card 4111 1111 1111 1111 exp", "password: hunter2hunter2", "nothing to see here", "nothing to see here",
]
JSONS = ['{"to": "jane.doe@example.com", "n": 1}', '{"password": "hunter2hunter2"}', '{"city": "Paris"}']


def test_parallel_redaction_equals_the_one_value_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pii, "PARALLEL_MIN", 8)
    monkeypatch.setattr(pii, "_CHUNK", 8)
    many = redact_all(TEXTS, workers=2)  # 42 distinct values in chunks of 8: the process pool
    assert many == {t: redact(t) for t in TEXTS}
    assert many["row 3: call +44 20 7946 0003 or mail p3@example.com"] == "row 3: call [PHONE] or mail [EMAIL]"
    assert redact_all(JSONS, as_json=True, workers=2) == {j: redact_json(j) for j in JSONS}


def test_one_core_stays_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pii, "PARALLEL_MIN", 1)
    monkeypatch.setattr(pii, "_workers", lambda: 1)

    def no_pool(*_a: object, **_k: object) -> None:
        raise AssertionError("a process pool was started on one core")

    monkeypatch.setattr("concurrent.futures.ProcessPoolExecutor", no_pool)
    assert redact_all(TEXTS) == {t: redact(t) for t in TEXTS}


def test_known_results_are_looked_up_and_replaced_per_build() -> None:
    con = duckdb.connect()
    sql = install(con, known={"mail a@b.example": "FIRST"})
    assert con.execute(f"SELECT {sql('$1')}", ["mail a@b.example"]).fetchall()[0][0] == "FIRST"
    # a second build on the same connection brings its own results (the first build's are gone)
    sql = install(con, known={"mail c@d.example": "SECOND"})
    got = con.execute(f"SELECT {sql('$1')}, {sql('$2')}", ["mail a@b.example", "mail c@d.example"]).fetchall()[0]
    assert got == ("mail [EMAIL]", "SECOND")
    sql_json = install_json(con)
    assert con.execute(f"SELECT {sql_json('$1')}", [JSONS[0]]).fetchall()[0][0] == redact_json(JSONS[0])
