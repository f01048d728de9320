"""What a store call did: per message (:class:`StoreOutcome`) and in total (:class:`StoreResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class StoreStatus(StrEnum):
    """What storing one message did."""

    NEW = "new"
    EDITED = "edited"  # a new text: a new version
    UPDATED = "updated"  # same text, other fields changed (views, media …)
    UNCHANGED = "unchanged"  # the same record again


_NEW, _EDITED, _UPDATED, _UNCHANGED = StoreStatus  # locals of the hot path


@dataclass
class StoreOutcome:
    key: str
    status: StoreStatus
    message_rowid: int
    new_hit_ids: list[int] = field(default_factory=list)
    new_outbox_ids: list[int] = field(default_factory=list)
    previous_text: str | None = None  # for status "edited": the text stored before
    followups: int = 0  # of new_outbox_ids: edited follow-ups


@dataclass
class StoreResult:
    new: int = 0
    edited: int = 0
    updated: int = 0
    unchanged: int = 0
    hits: int = 0
    outbox: int = 0
    followups: int = 0  # of outbox: edited/deleted follow-ups
    outcomes: list[StoreOutcome] = field(default_factory=list)

    def add(self, other: "StoreResult") -> None:
        self.new += other.new
        self.edited += other.edited
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.hits += other.hits
        self.outbox += other.outbox
        self.followups += other.followups

    def as_dict(self) -> dict[str, int]:
        return {
            "new": self.new,
            "edited": self.edited,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "hits": self.hits,
            "outbox": self.outbox,
        }
