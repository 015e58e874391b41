"""Issue 28 item 1: builds spill, ad-hoc queries stay bounded.

A dataset build over a store larger than the ad-hoc query limit (``STEWARD_QUERY_MEMORY``, here
shrunk to 32 MB so the store stays small) failed with DuckDB's OutOfMemoryException; with the
build's spill folder it completes, while an ad-hoc query on the same store keeps the hard limit."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from modelsteward.errors import StewardError
from modelsteward.storage.logstore import LogStore
from modelsteward.training.dataset import DatasetSpec, build_from_connection
from training_helpers import log_row

pytestmark = pytest.mark.slow


def _rows(n: int) -> list[dict]:
    return [log_row(f"r{i}", f"prompt {i} " + f"lorem ipsum dolor {i} " * 60,
                    f"answer {i} " + f"sit amet {i * 7} " * 60) for i in range(n)]


def test_a_build_larger_than_the_query_limit_spills_and_completes(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_QUERY_MEMORY", "32MB")
    spec = DatasetSpec(use_case="story", since="7d", min_rows=5)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    with LogStore(tmp_path / "logs") as store:
        store.append_many(_rows(30_000))
        store.flush()
        con = store.reader.connect(lock_down=False)  # the ad-hoc limit, no spill: what builds used before
        with pytest.raises(Exception, match="(?i)out of memory"):
            build_from_connection(con, spec, tmp_path / "a", holdout_ids=[], initial_rows=[], now=now)
        con.close()
        con = store.reader.connect(lock_down=False, spill_dir=tmp_path / "spill")
        card = build_from_connection(con, spec, tmp_path / "b", holdout_ids=[], initial_rows=[], now=now)
        con.close()
        assert card.train_rows + card.validation_rows > 20_000
        # the ad-hoc path keeps its hard limit: a query that needs more memory is refused, not spilled
        with pytest.raises(StewardError, match="STEWARD_QUERY_MEMORY"):
            store.query("SELECT messages, response, count(*) FROM logs GROUP BY ALL ORDER BY 3 DESC")
