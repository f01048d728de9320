"""The rendered alert handed to a destination: every format, built once by the renderer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Alert:
    """One message to deliver. All text in here is already safe for its medium.

    ``slack_text``/``slack_blocks`` are escaped Slack mrkdwn, ``html`` is escaped HTML,
    ``subject`` is a single line (no CR/LF), ``text`` is plain text and ``data`` is the
    JSON record written by the file and webhook destinations.
    """

    kind: str  # alert | followup | edited | deleted | digest | test
    level: str
    title: str
    subject: str
    text: str
    html: str
    slack_text: str
    slack_blocks: list[dict[str, Any]]
    data: dict[str, Any]
    outbox_id: int | None = None
    destination: str | None = None
    dedup_key: str | None = None
    # the incident of the alert's hit (docs/incidents.md) and, set by the worker just before
    # sending, the thread its earlier alerts started at this destination (Slack ts, email
    # Message-ID): destinations that can thread reply to it
    incident_id: int | None = None
    thread_ref: str | None = None
    # when the outbox row was created: with outbox_id, names this delivery even across
    # archives (the file destination's delivery key)
    created_at: str | None = None
