"""Monthly read budget for the X API (pure functions, no I/O).

X counts every post an app receives from the timeline and search endpoints against a
monthly post cap. With ``monthly_read_cap`` set, the source spreads its reads over the
month: it estimates how many posts one poll of one target (account or search) returns,
projects the reads until the end of the month at the configured interval and, when that
projection exceeds what is left of the cap, polls less often.

Backfill reads count as used but are kept out of the per-poll estimate (they are a
one-off burst, not the steady rate). Until enough polls have been seen the estimate leans
on a conservative prior of one post per target poll.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from ...timefmt import exact_duration

PRIOR_READS_PER_POLL = 1.0  # posts per target poll assumed before anything was measured
PRIOR_WEIGHT = 20.0  # how many polls the prior counts for


def utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        return now.replace(tzinfo=timezone.utc)
    return now.astimezone(timezone.utc)


def month_key(now: datetime) -> str:
    """``YYYY-MM`` of ``now`` in UTC (the checkpoint key of that month's counters)."""
    return utc(now).strftime("%Y-%m")


def month_end(now: datetime) -> datetime:
    """Start of the next UTC month."""
    n = utc(now)
    if n.month == 12:
        return datetime(n.year + 1, 1, 1, tzinfo=timezone.utc)
    return datetime(n.year, n.month + 1, 1, tzinfo=timezone.utc)


def seconds_left_in_month(now: datetime) -> float:
    return max(0.0, (month_end(now) - utc(now)).total_seconds())


@dataclass
class Usage:
    """This month's counters, persisted as JSON in the checkpoints table."""

    reads: int = 0  # every post received (backfill included)
    polls: int = 0  # steady (non-backfill) target polls
    poll_reads: int = 0  # posts received by those steady polls

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, value: str | None) -> "Usage":
        if not value:
            return cls()
        try:
            d = json.loads(value)
            return cls(int(d.get("reads", 0)), int(d.get("polls", 0)), int(d.get("poll_reads", 0)))
        except (ValueError, TypeError, AttributeError):
            return cls()


def reads_per_poll(polls: int, poll_reads: int, *, prior: float = PRIOR_READS_PER_POLL,
                   weight: float = PRIOR_WEIGHT) -> float:
    """Smoothed posts per target poll: the prior counts as ``weight`` polls."""
    return (poll_reads + prior * weight) / (polls + weight)


def required_interval(*, remaining: int, seconds_left: float, targets: int, per_poll: float) -> float:
    """Shortest interval whose projected reads until month end fit in ``remaining``.

    Projected reads at interval ``i`` = targets * per_poll * seconds_left / i.
    Returns ``inf`` when nothing remains.
    """
    if targets <= 0 or per_poll <= 0 or seconds_left <= 0:
        return 0.0
    if remaining <= 0:
        return math.inf
    return targets * per_poll * seconds_left / remaining


def projected_reads(*, used: int, seconds_left: float, targets: int, per_poll: float, interval: float) -> int:
    """Reads expected by month end when polling every ``interval`` seconds."""
    if interval <= 0 or math.isinf(interval):
        return used
    return used + int(math.ceil(targets * per_poll * seconds_left / interval))


@dataclass(frozen=True)
class BudgetPlan:
    cap: int
    used: int
    remaining: int
    targets: int
    per_poll: float
    seconds_left: float
    configured_interval: float
    effective_interval: float  # inf when the cap is used up
    projected_at_configured: int
    projected: int

    @property
    def exhausted(self) -> bool:
        return self.remaining <= 0

    @property
    def throttled(self) -> bool:
        return self.effective_interval > self.configured_interval

    def describe(self) -> str:
        """One human line for the start-up log and ``status``."""
        days = self.seconds_left / 86400
        head = (
            f"X read budget: {self.used}/{self.cap} posts used this month, {self.remaining} left, "
            f"{days:.1f} days to go, {self.targets} targets, ~{self.per_poll:.2f} posts per poll"
        )
        if self.exhausted:
            return head + "; cap used up: polling paused until the 1st of next month (UTC)"
        if self.throttled:
            return (
                head + f"; at every {exact_duration(self.configured_interval)} the projection is "
                f"{self.projected_at_configured} posts, over the cap: polling every "
                f"{exact_duration(self.effective_interval)} (projected {self.projected})"
            )
        return head + f"; projected {self.projected} posts at every {exact_duration(self.effective_interval)}"


def plan(*, cap: int, usage: Usage, now: datetime, targets: int, interval: float) -> BudgetPlan:
    """The effective poll interval that keeps this month's projected reads under ``cap``."""
    left = seconds_left_in_month(now)
    remaining = max(0, cap - usage.reads)
    per_poll = reads_per_poll(usage.polls, usage.poll_reads)
    needed = required_interval(remaining=remaining, seconds_left=left, targets=targets, per_poll=per_poll)
    effective = max(float(interval), needed)
    return BudgetPlan(
        cap=cap,
        used=usage.reads,
        remaining=remaining,
        targets=targets,
        per_poll=per_poll,
        seconds_left=left,
        configured_interval=float(interval),
        effective_interval=effective,
        projected_at_configured=projected_reads(
            used=usage.reads, seconds_left=left, targets=targets, per_poll=per_poll, interval=interval
        ),
        projected=projected_reads(
            used=usage.reads, seconds_left=left, targets=targets, per_poll=per_poll, interval=effective
        ),
    )


