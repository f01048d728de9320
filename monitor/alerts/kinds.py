"""The outbox's vocabulary: alert kinds, row statuses, delivery results (StrEnum: stored and
compared as their string values)."""

from __future__ import annotations

from enum import StrEnum


class AlertKind(StrEnum):
    ALERT = "alert"  # a new hit
    FOLLOWUP = "followup"  # "N more hits" at the end of a throttle window
    EDITED = "edited"  # a message with a hit changed its text
    DELETED = "deleted"  # a message with a hit was deleted
    DIGEST = "digest"  # the periodic summary
    NOTICE = "notice"  # an operator notice (rules reload failed, archive writes failing)
    TEST = "test"  # `claimwatch alerts test`: a sample alert, never stored


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


class DeliveryResult(StrEnum):
    """What the delivery worker did with one claimed row."""

    SENT = "sent"
    RETRY = "retry"  # a temporary error: due again later
    FAILED = "failed"  # a permanent error, or out of retries
    RELEASED = "released"  # handed back unsent (the worker is stopping)
    DEFERRED = "deferred"  # handed back until the destination's rate-limit hold ends
