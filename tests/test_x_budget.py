"""Read budget: pure, table-driven."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest

from monitor.sources.x import budget
from monitor.sources.x.budget import Usage, plan

UTC = timezone.utc


@pytest.mark.parametrize(
    ("now", "key", "end"),
    [
        (datetime(2024, 6, 3, 12, 0, tzinfo=UTC), "2024-06", datetime(2024, 7, 1, tzinfo=UTC)),
        (datetime(2024, 12, 31, 23, 59, tzinfo=UTC), "2024-12", datetime(2025, 1, 1, tzinfo=UTC)),
        (datetime(2024, 2, 29, 0, 0, tzinfo=UTC), "2024-02", datetime(2024, 3, 1, tzinfo=UTC)),
        # naive datetimes are UTC
        (datetime(2024, 1, 31, 23, 0), "2024-01", datetime(2024, 2, 1, tzinfo=UTC)),
    ],
)
def test_month_boundaries(now: datetime, key: str, end: datetime) -> None:
    assert budget.month_key(now) == key
    assert budget.month_end(now) == end
    assert budget.seconds_left_in_month(now) == (end - now.replace(tzinfo=UTC)).total_seconds()


@pytest.mark.parametrize(
    ("polls", "poll_reads", "expected"),
    [
        (0, 0, 1.0),  # nothing measured: the prior
        (20, 0, 0.5),  # 20 quiet polls weigh as much as the prior
        (980, 0, 20 / 1000),  # quiet accounts: the estimate falls towards 0
        (80, 400, (400 + 20) / 100),  # a busy search: ~4.2 posts per poll
    ],
)
def test_reads_per_poll_smoothing(polls: int, poll_reads: int, expected: float) -> None:
    assert budget.reads_per_poll(polls, poll_reads) == pytest.approx(expected)


DAY = 86400.0
JUNE_1 = datetime(2024, 6, 1, tzinfo=UTC)  # 30 days left
JUNE_21 = datetime(2024, 6, 21, tzinfo=UTC)  # 10 days left


@pytest.mark.parametrize(
    ("cap", "usage", "now", "targets", "interval", "effective", "throttled"),
    [
        # Basic plan cap, 5 targets, 2 min, nothing measured yet: 1 post/poll projected
        # -> 5 * 1 * 30d / 10000 = 1296 s (21.6 min)
        (10_000, Usage(), JUNE_1, 5, 120.0, 5 * 30 * DAY / 10_000, True),
        # same, but measured: 3 accounts posting rarely -> 0.02 posts/poll fits at 2 min
        (10_000, Usage(reads=200, polls=9980, poll_reads=180), JUNE_1, 5, 120.0, 120.0, False),
        # 9000 of 10000 used, 10 days left, 0.5 posts/poll, 4 targets -> 4*0.5*10d/1000
        (10_000, Usage(reads=9_000, polls=20, poll_reads=0), JUNE_21, 4, 120.0, 4 * 0.5 * 10 * DAY / 1000, True),
        # a generous cap never slows the configured interval down
        (1_000_000, Usage(reads=10), JUNE_1, 5, 120.0, 120.0, False),
        # a configured interval longer than needed is kept
        (10_000, Usage(), JUNE_1, 1, 3600.0, 3600.0, False),
        # cap used up: never
        (1_500, Usage(reads=1_600), JUNE_21, 3, 120.0, math.inf, True),
    ],
)
def test_effective_interval(cap, usage, now, targets, interval, effective, throttled) -> None:
    p = plan(cap=cap, usage=usage, now=now, targets=targets, interval=interval)
    assert p.effective_interval == pytest.approx(effective)
    assert p.throttled is throttled
    assert p.remaining == max(0, cap - usage.reads)
    if not math.isinf(p.effective_interval):
        # the projection at the effective interval stays under the cap (rounding: +1)
        assert p.projected <= cap + 1
        assert p.projected <= p.projected_at_configured


@pytest.mark.parametrize("targets", [1, 3, 10, 40])
@pytest.mark.parametrize("used", [0, 500, 9_999])
@pytest.mark.parametrize("day", [1, 15, 30])
def test_projection_never_exceeds_cap(targets: int, used: int, day: int) -> None:
    now = datetime(2024, 6, day, 8, 30, tzinfo=UTC)
    p = plan(cap=10_000, usage=Usage(reads=used, polls=50, poll_reads=100), now=now, targets=targets,
             interval=60.0)
    assert p.effective_interval >= 60.0
    assert p.projected <= 10_000 + 1


def test_describe_states_the_projection() -> None:
    p = plan(cap=10_000, usage=Usage(), now=JUNE_1, targets=5, interval=120.0)
    text = p.describe()
    assert "0/10000" in text and "30.0 days" in text and "5 targets" in text
    assert "every 2m" in text and "over the cap" in text and "every 21m36s" in text
    done = plan(cap=100, usage=Usage(reads=100), now=JUNE_1, targets=1, interval=120.0)
    assert done.exhausted and "paused" in done.describe()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, Usage()),
        ("", Usage()),
        ('{"reads":12,"polls":3,"poll_reads":2}', Usage(12, 3, 2)),
        ("not json", Usage()),
        ('["a"]', Usage()),
    ],
)
def test_usage_json(value, expected) -> None:
    assert Usage.from_json(value) == expected
    assert Usage.from_json(expected.to_json()) == expected


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (90, "1m30s"), (1296, "21m36s"), (90061, "1d1h1m1s"), (math.inf, "never")]
)
def test_exact_duration(seconds: float, text: str) -> None:
    from monitor.timefmt import exact_duration

    assert exact_duration(seconds) == text
