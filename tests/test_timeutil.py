"""The one duration reader (issue 18: five hand-written parsers had drifted apart)."""

from __future__ import annotations

import datetime as dt

import pytest

from modelsteward.errors import ConfigError, InvalidInput
from modelsteward.timeutil import parse_duration, window_start

NOW = dt.datetime(2026, 1, 10, 12, 0, 0)


def test_units_and_forms() -> None:
    assert parse_duration("45s") == dt.timedelta(seconds=45)
    assert parse_duration(" 1.5 h ") == dt.timedelta(minutes=90)
    assert parse_duration("2w") == dt.timedelta(days=14)
    assert parse_duration("1h30m", compound=True) == dt.timedelta(minutes=90)
    assert parse_duration("90", bare_seconds=True) == dt.timedelta(seconds=90)
    for bad, kw in (("1h30m", {}), ("90", {}), ("soon", {}), ("", {}), ("5s", {"units": "mhdw"}),
                    ("0d", {"positive": True}), ("-3d", {}), ("3x", {})):
        with pytest.raises(InvalidInput, match="is not like"):
            parse_duration(bad, **kw)


def test_window_start() -> None:
    assert window_start("7d", NOW) == NOW - dt.timedelta(days=7)
    assert window_start(dt.timedelta(hours=2), NOW) == NOW - dt.timedelta(hours=2)
    assert window_start("all", NOW) is None and window_start(None) is None and window_start("") is None
    assert window_start("2026-01-01", NOW, iso_dates=True) == dt.datetime(2026, 1, 1)
    with pytest.raises(InvalidInput):
        window_start("2026-01-01", NOW)  # a log window takes durations only
    with pytest.raises(InvalidInput, match="nor an ISO date"):
        window_start("yesterday", NOW, iso_dates=True)


def test_every_caller_reads_through_it() -> None:
    from modelsteward.agent.scheduler import parse_every
    from modelsteward.server.loopconfig import parse_period
    from modelsteward.storage.retention import parse_age

    assert parse_every("1h30m") == dt.timedelta(minutes=90)
    assert parse_age("90d") == dt.timedelta(days=90)
    with pytest.raises(InvalidInput):
        parse_age("30s")  # a purge age has no seconds
    assert parse_period("STEWARD_GUARD_EVERY", "2m") == 120.0
    assert parse_period("STEWARD_GUARD_EVERY", "30") == 30.0
    with pytest.raises(ConfigError, match="STEWARD_GUARD_EVERY"):
        parse_period("STEWARD_GUARD_EVERY", "1s")  # below its hard bound
