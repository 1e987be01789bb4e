"""Crontab weekdays mean what cron means (0/7 = Sunday, 1-5 = Monday to Friday)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from avatarbot.errors import InvalidInput
from avatarbot.scheduler.validation import next_runs

SHANGHAI = ZoneInfo("Asia/Shanghai")
WEDNESDAY = datetime(2026, 11, 25, 12, 0, tzinfo=SHANGHAI)


def _weekdays(cron: str, n: int = 7) -> list[str]:
    return [t.strftime("%a") for t in next_runs(cron, "Asia/Shanghai", n, now=WEDNESDAY)]


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("0 9 * * 1-5", ["Thu", "Fri", "Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("0 9 * * mon-fri", ["Thu", "Fri", "Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("0 10 * * 1", ["Mon", "Mon"]),
        ("0 10 * * 0", ["Sun", "Sun"]),
        ("0 10 * * 7", ["Sun", "Sun"]),
        ("0 10 * * 6,0", ["Sat", "Sun", "Sat"]),
        ("0 10 * * 5-7", ["Fri", "Sat", "Sun", "Fri"]),
        ("0 10 * * */2", ["Thu", "Sat", "Sun", "Tue", "Thu"]),  # 0,2,4,6 = Sun Tue Thu Sat
    ],
)
def test_crontab_weekdays(cron: str, expected: list[str]) -> None:
    assert _weekdays(cron, len(expected)) == expected


def test_first_weekday_run_is_at_nine_local_time() -> None:
    first = next_runs("0 9 * * 1-5", "Asia/Shanghai", 1, now=WEDNESDAY)[0]
    assert (first.day, first.hour, first.tzinfo is not None) == (26, 9, True)


@pytest.mark.parametrize("cron", ["0 9 * * 8", "0 9 * * 5-1", "0 9 * * 1-x"])
def test_bad_weekdays_are_invalid_input(cron: str) -> None:
    with pytest.raises(InvalidInput):
        next_runs(cron, "UTC", 1, now=WEDNESDAY)
