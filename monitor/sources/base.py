"""The one small interface every collector implements.

A source turns something remote (a file, Telegram, X) into :class:`Envelope` events:
a new or edited :class:`~monitor.model.Message`, or a :class:`~monitor.model.Deletion`.
Each envelope may carry a checkpoint ``(channel, value)``; the pipeline commits it in the
same transaction as the event, so a checkpoint never runs ahead of what is stored, and an
``on_commit`` callback the pipeline calls once that transaction committed. A batch that
fails to commit is retried (with backoff) until it commits, never dropped.

    class MySource(Source):
        name = "my"
        async def run(self, ctx, *, once=False): ...   # emit envelopes via ctx.emit
        def health(self): return {...}
"""

from __future__ import annotations

import abc
import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from ..model import Deletion, Message

if TYPE_CHECKING:  # pragma: no cover
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from ..archive import Archive


@dataclass(frozen=True, slots=True)
class Envelope:
    event: Message | Deletion
    source: str
    checkpoint: tuple[str, str] | None = None  # (channel, value) committed with the event
    # Called on the event loop after the transaction that stored this event committed (in
    # emit order); never for a batch that did not commit. Sources advance their in-memory
    # progress (follow positions, synced ids) only from here.
    on_commit: Callable[[], None] | None = None


@dataclass
class SourceContext:
    archive: "Archive"  # read checkpoints and the channel cache (writes go through the pipeline)
    emit: Callable[[Envelope], Awaitable[None]]
    scheduler: "AsyncIOScheduler | None" = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def checkpoint(self, source: str, channel: str) -> str | None:
        return self.archive.get_checkpoint(source, channel)


class Source(abc.ABC):
    """A collector. ``run`` emits envelopes; with ``once=True`` it returns when what the
    source has now has been emitted, otherwise it runs until ``ctx.stop`` is set."""

    name: str = "source"

    @abc.abstractmethod
    async def run(self, ctx: SourceContext, *, once: bool = False) -> None: ...

    def health(self) -> dict[str, Any]:
        return {}

    def input_problems(self) -> list[str]:
        """What this source was configured to read and could not (a missing file, a file that
        is no export), one line each: ``run --once`` prints them and exits 2."""
        return []

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (called once on shutdown)."""


class SourceStopped(Exception):
    """A source cannot go on (bad credentials, revoked session): the daemon logs the reason,
    shows it in ``claimwatch status`` and does not restart that source. Other exceptions
    make the daemon restart the source with backoff."""
