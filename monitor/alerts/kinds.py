"""The outbox's vocabulary: alert kinds and row statuses (StrEnum: stored as their values)."""

from __future__ import annotations

from enum import StrEnum


class AlertKind(StrEnum):
    ALERT = "alert"  # a new hit
    FOLLOWUP = "followup"  # "N more hits" at the end of a throttle window
    EDITED = "edited"  # a message with a hit changed its text
    DELETED = "deleted"  # a message with a hit was deleted
    DIGEST = "digest"  # the periodic summary
    NOTICE = "notice"  # an operator notice (rules reload failed, archive writes failing)


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
