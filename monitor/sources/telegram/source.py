"""The Telegram source: every post of every configured channel, live and after downtime.

How nothing is missed and nothing is emitted twice, per channel:

* ``synced`` is the highest message id up to which the channel's history has been read
  without a gap; the checkpoint (committed by the pipeline with the message) is the last
  *emitted* id up to ``synced``. On start, history after the checkpoint is read oldest
  first (``iter_messages(min_id=checkpoint, reverse=True)``), or the ``backfill`` window
  (a duration, or a message count) on the first start.
* A live message whose id is ``synced + 1`` is emitted at once with its checkpoint. A
  live message beyond that means something in between was missed (or deleted, or was a
  service message): the history is read up to now first, so the order and the
  checkpoint stay gap-free. Ids at or below ``synced`` were already read: dropped.
* Gap-fill (scheduled every ``gapfill_interval``) reads history after ``synced`` for
  updates Telethon missed silently, and re-fetches the channel's recently stored posts by
  id: one that is gone yields a :class:`~monitor.model.Deletion`, one with a newer edit
  date yields the edited Message. So edits and deletions of recent posts are seen even
  when their events are lost.
* The first backfill always ends with a checkpoint, even when it stored nothing (a quiet
  channel, ``backfill: 0``): a restart is then a restart, not a first start, and the
  first live post goes through the gap test like every other.
* ``synced`` is what was handed to the pipeline; ``committed`` advances only from
  ``Envelope.on_commit`` (what the archive committed). Gap-fill and a reconnect's catch-up
  start from ``committed``, so posts of a batch that did not commit are read again.
* Edits (``MessageEdited``) are emitted as Messages with ``edit_date`` (same id, no
  checkpoint) when something an analyst sees changed: Telegram delivers every reaction
  and view count as an edit with the same text and ``edit_date``; those are dropped,
  compared with the last seen version (a small cache, else the archive). Deletions (``MessageDeleted``) as ``Deletion(channel_id=…)``. The pipeline
  stores a new version / marks ``deleted_at`` and sends follow-ups for messages with hits.

Flood waits are waited out (logged with the channel), unreadable channels are reported
and skipped, a revoked session stops the source (:class:`TelegramAuthError`), a lost
connection is re-established with backoff and followed by a catch-up of every channel.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable

from telethon.tl import types
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential

from ...config import TelegramConfig
from ...durations import parse_duration
from ...logs import get_logger
from ...model import Deletion, iso
from ..base import Envelope, Source, SourceContext
from .channels import ChannelInfo, ChannelResolver
from .convert import message_to_message
from .ids import peer_bare_id
from .errors import (
    ChannelUnavailable,
    TelegramAuthError,
    auth_error,
    describe,
    flood_seconds,
    is_auth_error,
    is_unreadable,
)
from .gateway import TelegramGateway
from .media import MediaStore

log = get_logger("claimwatch.telegram")

SOURCE = "telegram"
RECHECK_IDS = 100  # recently stored posts per channel re-fetched by gap-fill (edits/deletions)
RECONNECT_MIN = 1.0
RECONNECT_MAX = 300.0
PROGRESS_EVERY = 1000  # log the progress of long history reads
SEEN_CACHE = 2000  # per channel: last seen (edit date, text digest), to drop edits that change nothing
# Peer kinds watched: channels and supergroups number their messages per channel, so
# "the next id is synced + 1" tells a gap. Private chats and basic groups number messages per
# *account* (every chat shares one counter): that test fails for nearly every message there.
WATCHED_KINDS = ("channel", "megagroup")

Sleep = Callable[[float], Awaitable[Any]]


class _Stopping(Exception):
    """ctx.stop was set while waiting to reconnect."""


UNWATCHED_KIND = ("a private chat or basic group: not watched (their message ids are numbered per account, "
                  "so gaps cannot be told); watch channels and supergroups")


def parse_backfill(value: str | int) -> tuple[str, float]:
    """``("count", n)`` for a message count, ``("seconds", s)`` for a duration."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"sources.telegram.backfill: must not be negative: {value}")
        return "count", float(value)
    s = str(value).strip()
    if s.isdigit():
        return "count", float(int(s))
    try:
        return "seconds", parse_duration(s)
    except ValueError as exc:
        raise ValueError(f"sources.telegram.backfill: {exc} (or a message count such as 500)") from None


def check_channel_refs(refs: list[str]) -> None:
    """Refuse numeric references to private chats and basic groups (config validation);
    a username that turns out to be one is reported when it is resolved."""
    from telethon import utils

    from .channels import parse_ref

    for i, ref in enumerate(refs):
        try:
            parsed = parse_ref(str(ref))
        except Exception:
            continue  # the resolver reports unusable references by name
        if isinstance(parsed, int):
            _real, peer_type = utils.resolve_id(parsed)
            if peer_type is not types.PeerChannel:
                kind = "basic group" if peer_type is types.PeerChat else "private chat"
                raise ValueError(f"sources.telegram.channels[{i}]: {ref} is a {kind}; only channels and "
                                 f"supergroups are watched (see docs/telegram.md)")


@dataclass
class ChannelState:
    info: ChannelInfo
    synced: int | None = None  # history read without a gap up to this id
    checkpointed: int = 0  # highest id emitted with a checkpoint
    backfilled: bool = False  # the first history read has completed
    ahead: set[int] = field(default_factory=set)  # emitted live beyond `synced`, checkpoint pending
    committed: int | None = None  # highest checkpoint the archive committed (on_commit)
    recent: OrderedDict[int, str | None] = field(default_factory=OrderedDict)  # id -> edit date
    seen: OrderedDict[int, tuple[str | None, str]] = field(default_factory=OrderedDict)  # id -> (edit date, text digest)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    error: str | None = None

    def remember(self, message_id: int, edit_date: str | None, text: str | None = None) -> None:
        self.recent[message_id] = edit_date
        self.recent.move_to_end(message_id)
        while len(self.recent) > RECHECK_IDS:
            self.recent.popitem(last=False)
        if text is not None:
            self.seen[message_id] = (edit_date, digest(text))
            self.seen.move_to_end(message_id)
            while len(self.seen) > SEEN_CACHE:
                self.seen.popitem(last=False)

    def forget(self, message_id: int) -> None:
        self.recent.pop(message_id, None)
        self.seen.pop(message_id, None)
        self.ahead.discard(message_id)


def digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


async def _aiter(items: Iterable[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


class _ArchiveNames:
    """Display names of peers (for forward headers): resolved channels, then the cache."""

    def __init__(self, source: "TelegramSource") -> None:
        self.source = source

    def get(self, peer_id: str, default: str | None = None) -> str | None:
        state = self.source._channels.get(peer_id)
        if state is not None:
            return state.info.title or state.info.username
        ctx = self.source._ctx
        if ctx is not None:
            row = ctx.archive.find_channel(SOURCE, peer_id)
            if row and row.get("channel_id") == peer_id:
                return row.get("title") or row.get("username") or default
        return default


class TelegramSource(Source):
    """Collects configured Telegram channels through a :class:`TelegramGateway`."""

    name = SOURCE

    def __init__(
        self,
        cfg: TelegramConfig,
        gateway: TelegramGateway,
        *,
        media: MediaStore | None = None,
        sleep: Sleep = asyncio.sleep,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.cfg = cfg
        self.gateway = gateway
        self.media = media
        self.backfill = parse_backfill(cfg.backfill)
        check_channel_refs(list(cfg.channels))
        self._sleep = sleep
        self._now = now or (lambda: datetime.now(timezone.utc))
        self._ctx: SourceContext | None = None
        self._channels: dict[str, ChannelState] = {}  # by bare channel id
        self._unavailable: dict[str, str] = {}  # configured ref -> reason
        self._names = _ArchiveNames(self)
        self._handlers_added = False
        self._connected = False
        self._fatal: asyncio.Future[None] | None = None
        self.flood_waits = 0
        self.last_gapfill: str | None = None
        self.username_lookups = 0
        self.unchanged_edits = 0  # edits dropped: only reactions/views changed
        self.ready = asyncio.Event()  # set once the start-up catch-up of every channel is done

    # -- public ---------------------------------------------------------------------
    async def run(self, ctx: SourceContext, *, once: bool = False) -> None:
        self._ctx = ctx
        self.ready.clear()
        self._fatal = asyncio.get_running_loop().create_future()
        job = None
        try:
            await self._connect(retry=not once)
            if ctx.stop.is_set():
                return
            await self._resolve_all()
            if not once and not self._handlers_added:
                # Before the catch-up, so nothing posted meanwhile falls between the two.
                self.gateway.add_event_handlers(self._on_new, self._on_edit, self._on_delete)
                self._handlers_added = True
            await self._catch_up_all()
            self.ready.set()
            if once:
                return
            if ctx.scheduler is not None:
                job = ctx.scheduler.add_job(
                    self.gapfill,
                    "interval",
                    seconds=self.cfg.gapfill_interval,
                    id="telegram-gapfill",
                    replace_existing=True,
                    max_instances=1,
                    coalesce=True,
                )
            await self._serve(ctx)
        finally:
            if self._fatal.done() and not self._fatal.cancelled():
                self._fatal.exception()  # retrieved (it was raised, or run ended first)
            if job is not None:
                try:
                    job.remove()
                except Exception:  # the scheduler may be shut down already
                    pass
            await self._disconnect()

    async def gapfill(self) -> None:
        """Read every channel's history after the last read id (updates Telethon missed),
        then re-fetch recently stored posts to catch missed edits and deletions."""
        if self._ctx is None or not self._connected:
            return
        for state in list(self._channels.values()):
            try:
                async with state.lock:
                    await self._catch_up_locked(state)
                    await self._recheck_locked(state)
                state.error = None
            except Exception as exc:
                if self._is_fatal(exc):
                    self._fail(exc)
                    return
                self._channel_error(state, exc, "gap-fill")
        self.last_gapfill = iso(self._now())

    def health(self) -> dict[str, Any]:
        return {
            "connected": self._connected,
            "channels": len(self._channels),
            "unavailable": dict(self._unavailable),
            "channel_errors": {s.info.label: s.error for s in self._channels.values() if s.error},
            "flood_waits": self.flood_waits,
            "unchanged_edits": self.unchanged_edits,
            "media_flood_skipped": self.media.flood_skipped if self.media is not None else 0,
            "last_gapfill": self.last_gapfill,
        }

    async def close(self) -> None:
        await self._disconnect()

    # -- connection -------------------------------------------------------------------
    async def _connect(self, *, retry: bool) -> None:
        """Connect and check the session; with ``retry`` a network failure is retried with
        backoff (RECONNECT_MIN doubling to RECONNECT_MAX) until it connects or ctx.stop is set."""

        def transient(exc: BaseException) -> bool:
            return retry and not is_auth_error(exc) and isinstance(exc, (OSError, ConnectionError, asyncio.TimeoutError))

        wait = wait_exponential(multiplier=RECONNECT_MIN, max=RECONNECT_MAX)

        def failed(state: RetryCallState) -> None:
            assert state.outcome is not None
            log.warning("telegram connection failed; retrying", error=str(state.outcome.exception()),
                        retry_in=wait(state))

        async def pause(seconds: float) -> None:
            await self._sleep(seconds)
            if self._ctx is not None and self._ctx.stop.is_set():
                raise _Stopping

        try:
            async for attempt in AsyncRetrying(retry=retry_if_exception(transient), wait=wait, after=failed,
                                               sleep=pause, reraise=True):
                with attempt:
                    await self.gateway.connect()
                    authorized = await self.gateway.is_authorized()
        except _Stopping:
            return
        except Exception as exc:
            if is_auth_error(exc):
                raise auth_error(exc) from None
            raise
        if not authorized:
            raise TelegramAuthError(
                "Telegram session is not logged in (or was logged out); run 'claimwatch login telegram'"
            )
        self._connected = True

    async def _disconnect(self) -> None:
        if self._connected:
            self._connected = False
            try:
                await self.gateway.disconnect()
            except Exception as exc:  # pragma: no cover - best effort on shutdown
                log.warning("telegram disconnect failed", error=str(exc))

    async def _serve(self, ctx: SourceContext) -> None:
        """Wait for stop; on a lost connection reconnect with backoff and catch up."""
        assert self._fatal is not None
        while not ctx.stop.is_set():
            stop_wait = asyncio.ensure_future(ctx.stop.wait())
            lost = asyncio.ensure_future(self._wait_disconnected())
            try:
                await asyncio.wait({stop_wait, lost, self._fatal}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in (stop_wait, lost):
                    if not t.done():
                        t.cancel()
            if self._fatal.done():
                self._fatal.result()  # raises the stored error
            if ctx.stop.is_set():
                return
            self._connected = False
            log.warning("telegram connection lost; reconnecting")
            await self._connect(retry=True)
            if ctx.stop.is_set():
                return
            log.info("telegram reconnected; catching up")
            await self._catch_up_all()

    async def _wait_disconnected(self) -> None:
        try:
            await self.gateway.wait_disconnected()
        except Exception as exc:
            log.warning("telegram disconnected", error=str(exc))

    def _is_fatal(self, exc: BaseException) -> bool:
        return isinstance(exc, TelegramAuthError) or is_auth_error(exc)

    def _fail(self, exc: BaseException) -> None:
        err = exc if isinstance(exc, TelegramAuthError) else auth_error(exc)
        log.error("telegram source stopping", error=str(err))
        if self._fatal is not None and not self._fatal.done():
            self._fatal.set_exception(err)

    # -- flood waits ------------------------------------------------------------------
    async def _flood_wait(self, seconds: int, channel: str, during: str) -> None:
        self.flood_waits += 1
        log.warning("telegram flood wait", channel=channel, seconds=seconds, during=during)
        await self._sleep(seconds)

    async def _call(self, during: str, channel: str, factory: Callable[[], Awaitable[Any]]) -> Any:
        while True:
            try:
                return await factory()
            except Exception as exc:
                seconds = flood_seconds(exc)
                if seconds is None:
                    raise
                await self._flood_wait(seconds, channel, during)

    # -- channels -------------------------------------------------------------------------
    async def _resolve_all(self) -> None:
        ctx = self._ctx
        assert ctx is not None
        resolver = ChannelResolver(self.gateway, ctx.archive, self._call)
        channels: dict[str, ChannelState] = {}
        self._unavailable = {}
        for ref in self.cfg.channels:
            try:
                info = await resolver.resolve(ref)
            except ChannelUnavailable as exc:
                self._report_unavailable(ref, exc.reason)
                continue
            except Exception as exc:
                if is_auth_error(exc):
                    raise auth_error(exc) from None
                raise
            if info.kind not in WATCHED_KINDS:
                self._report_unavailable(ref, UNWATCHED_KIND)
                continue
            if info.channel_id in channels:
                log.warning("telegram channel configured twice", channel=ref, same_as=channels[info.channel_id].info.ref)
                continue
            channels[info.channel_id] = self._new_state(info)
            if info.member is False:
                log.warning(
                    "not a member of this channel: no live updates, it is read by gap-fill",
                    channel=info.label,
                    every_seconds=self.cfg.gapfill_interval,
                )
        self._channels = channels
        self.username_lookups += resolver.username_lookups
        log.info(
            "telegram channels ready",
            channels=[s.info.label for s in channels.values()],
            unavailable=len(self._unavailable),
            resolved_from_cache=sum(1 for s in channels.values() if s.info.from_cache),
        )

    def _new_state(self, info: ChannelInfo) -> ChannelState:
        ctx = self._ctx
        assert ctx is not None
        value = ctx.checkpoint(SOURCE, info.channel_id)
        state = ChannelState(info)
        if value is not None and str(value).isdigit():
            state.synced = state.checkpointed = state.committed = int(value)
            state.backfilled = True
        with ctx.archive.lock:
            rows = ctx.archive.conn.execute(
                "SELECT message_id, edit_date, text FROM messages WHERE platform=? AND channel_id=?"
                " AND deleted_at IS NULL ORDER BY id DESC LIMIT ?",
                (SOURCE, info.channel_id, RECHECK_IDS),
            ).fetchall()
        for mid, edit_date, text in reversed(rows):
            if str(mid).isdigit():
                state.remember(int(mid), edit_date, text)
        return state

    def _report_unavailable(self, ref: str, reason: str) -> None:
        self._unavailable[ref] = reason
        log.error("telegram channel cannot be read; skipped", channel=ref, reason=reason)
        if self._ctx is not None:
            self._ctx.archive.record_source_status(SOURCE, error=f"{ref}: {reason}")

    def _channel_error(self, state: ChannelState, exc: BaseException, during: str) -> None:
        reason = describe(exc)
        if state.error != reason:  # log each new problem once, not every gap-fill
            level = log.error if is_unreadable(exc) else log.warning
            level(f"telegram {during} failed", channel=state.info.label, reason=reason)
            if self._ctx is not None and is_unreadable(exc):
                self._ctx.archive.record_source_status(SOURCE, error=f"{state.info.ref}: {reason}")
        state.error = reason

    def _state_for(self, peer: Any) -> ChannelState | None:
        cid = peer_bare_id(peer)
        return self._channels.get(cid) if cid is not None else None

    # -- history ----------------------------------------------------------------------------
    async def _catch_up_all(self) -> None:
        for state in list(self._channels.values()):
            if self._ctx is not None and self._ctx.stop.is_set():
                return
            try:
                async with state.lock:
                    await self._catch_up_locked(state)
                state.error = None
            except Exception as exc:
                if self._is_fatal(exc):
                    raise exc if isinstance(exc, TelegramAuthError) else auth_error(exc) from None
                self._channel_error(state, exc, "catch-up")

    async def _catch_up_locked(self, state: ChannelState) -> None:
        """Read the channel's history after ``synced`` (or the backfill window), oldest first."""
        info = state.info
        if state.committed is not None and state.synced is not None and state.committed < state.synced \
                and not state.ahead:
            # Handed on but not committed (a batch that rolled back): read those again.
            log.info("telegram re-reading posts not committed", channel=info.label,
                     committed=state.committed, handed_on=state.synced)
            state.synced = state.checkpointed = state.committed
        while True:
            try:
                if state.synced is not None:
                    await self._read(
                        state, self.gateway.iter_messages(info.peer, min_id=state.synced, reverse=True)
                    )
                else:
                    await self._first_backfill(state)
                    await self._first_checkpoint(state)
                state.backfilled = True
                return
            except Exception as exc:
                seconds = flood_seconds(exc)
                if seconds is None:
                    raise
                await self._flood_wait(seconds, info.label, "history")

    async def _first_backfill(self, state: ChannelState) -> None:
        peer = state.info.peer
        mode, amount = self.backfill
        if mode == "count":
            n = int(amount)
            if n == 0:  # start from now: remember the newest id, emit nothing
                async for m in self.gateway.iter_messages(peer, limit=1):
                    state.synced = m.id
                return
            newest = [m async for m in self.gateway.iter_messages(peer, limit=n)]
            newest.sort(key=lambda m: m.id)
            await self._read(state, _aiter(newest))
            return
        since = self._now() - timedelta(seconds=amount)
        log.info("telegram backfill", channel=state.info.label, since=iso(since))
        await self._read(state, self.gateway.iter_messages(peer, reverse=True, offset_date=since))

    async def _first_checkpoint(self, state: ChannelState) -> None:
        """After the first backfill: a checkpoint even when it stored nothing, so a restart
        reads what was posted while the daemon was down (not a new backfill window)."""
        if state.synced is None:  # nothing in the window: the newest id (0: an empty channel)
            state.synced = 0
            async for m in self.gateway.iter_messages(state.info.peer, limit=1):
                state.synced = m.id
        if state.checkpointed >= state.synced:
            return  # the last stored post carries it
        assert self._ctx is not None
        await asyncio.to_thread(self._ctx.archive.set_checkpoint, SOURCE, state.info.channel_id, str(state.synced))
        state.checkpointed = state.committed = state.synced

    async def _read(self, state: ChannelState, messages: AsyncIterator[Any]) -> None:
        """Emit history messages (ascending ids) with their checkpoints, advancing ``synced``."""
        tail_live = None  # last message that had been emitted live, without its checkpoint
        count = 0
        async for m in messages:
            if state.synced is not None and m.id <= state.synced:
                continue
            count += 1
            if count % PROGRESS_EVERY == 0:
                log.info("telegram history read", channel=state.info.label, messages=count, last_id=m.id)
            if isinstance(m, types.Message):
                if m.id in state.ahead:
                    state.ahead.discard(m.id)
                    tail_live = m
                else:
                    await self._emit_message(state, m, checkpoint=True)
                    tail_live = None
            # service messages (pins, title changes) are not posts: skipped, but read
            state.synced = m.id
        if tail_live is not None and tail_live.id > state.checkpointed:
            # Carry the checkpoint past messages already emitted live (stored idempotently).
            await self._emit_message(state, tail_live, checkpoint=True)

    async def _recheck_locked(self, state: ChannelState) -> None:
        ids = list(state.recent)
        if not ids:
            return
        info = state.info
        found = await self._call("recheck", info.label, lambda: self.gateway.get_messages(info.peer, ids))
        deleted: list[int] = []
        for mid, m in zip(ids, found):
            if m is None or isinstance(m, types.MessageEmpty):
                deleted.append(mid)
            elif isinstance(m, types.Message):
                known = state.recent.get(mid)
                edited = iso(m.edit_date) if m.edit_date else None
                if edited and (known is None or edited > known):
                    await self._emit_message(state, m, checkpoint=False)
        if deleted:
            for mid in deleted:
                state.forget(mid)
            log.info("telegram posts deleted (found by gap-fill)", channel=info.label, ids=deleted)
            await self._emit_deletion(info.channel_id, deleted)

    # -- emitting --------------------------------------------------------------------------
    async def _unchanged(self, state: ChannelState, mid: int, edit_date: str | None, text: str) -> bool:
        """True when the stored version has the same edit date and text (a reaction, a view
        count): nothing an analyst sees changed."""
        known = state.seen.get(mid)
        if known is None and self._ctx is not None:
            ctx = self._ctx

            def lookup() -> Any:
                with ctx.archive.lock:
                    return ctx.archive.conn.execute(
                        "SELECT edit_date, text FROM messages WHERE platform=? AND channel_id=? AND message_id=?"
                        " ORDER BY id DESC LIMIT 1", (SOURCE, state.info.channel_id, str(mid))).fetchone()

            row = await asyncio.to_thread(lookup)
            if row is not None:
                known = (row[0], digest(row[1] or ""))
                state.seen[mid] = known
        return known is not None and known == (edit_date, digest(text))

    async def _emit_message(self, state: ChannelState, tl_msg: Any, *, checkpoint: bool,
                            edit: bool = False) -> None:
        ctx = self._ctx
        assert ctx is not None
        try:
            msg = message_to_message(tl_msg, state.info.meta, names=self._names)  # type: ignore[arg-type]
        except Exception as exc:
            log.error(
                "telegram message could not be converted; skipped",
                channel=state.info.label,
                message_id=getattr(tl_msg, "id", None),
                error=f"{type(exc).__name__}: {exc}",
            )
            return
        edited = iso(msg.edit_date) if msg.edit_date else None
        if edit and await self._unchanged(state, tl_msg.id, edited, msg.text):
            log.debug("telegram edit changes nothing shown (reactions, views); dropped",
                      channel=state.info.label, message_id=tl_msg.id)
            self.unchanged_edits += 1
            return
        if self.media is not None and msg.media:
            stored = [await self.media.store(self.gateway, tl_msg, m, sleep=self._sleep) for m in msg.media]
            msg = replace(msg, media=tuple(stored))
        cp = None
        if checkpoint and tl_msg.id > state.checkpointed:
            cp = (state.info.channel_id, str(tl_msg.id))
            state.checkpointed = tl_msg.id
        state.remember(tl_msg.id, edited, msg.text)
        on_commit = self._committer(state, tl_msg.id) if cp is not None else None
        await ctx.emit(Envelope(msg, SOURCE, cp, on_commit=on_commit))

    @staticmethod
    def _committer(state: ChannelState, mid: int) -> Callable[[], None]:
        def on_commit() -> None:
            if state.committed is None or mid > state.committed:
                state.committed = mid
        return on_commit

    async def _emit_deletion(self, channel_id: str | None, ids: Iterable[int]) -> None:
        assert self._ctx is not None
        deletion = Deletion(SOURCE, channel_id, tuple(str(i) for i in sorted(ids)), date=self._now())
        await self._ctx.emit(Envelope(deletion, SOURCE, None))

    # -- live updates -------------------------------------------------------------------
    async def _on_new(self, tl_msg: Any) -> None:
        await self._guard(self._live(tl_msg, edit=False), "new message")

    async def _on_edit(self, tl_msg: Any) -> None:
        await self._guard(self._live(tl_msg, edit=True), "edit")

    async def _on_delete(self, update: Any) -> None:
        await self._guard(self._deleted(update), "deletion")

    async def _guard(self, work: Awaitable[None], what: str) -> None:
        """Run a live handler; a handler error is logged (auth errors stop the source)."""
        try:
            await work
        except Exception as exc:
            if self._is_fatal(exc):
                self._fail(exc)
            else:
                log.error(f"telegram live {what} failed", error=f"{type(exc).__name__}: {exc}")

    async def _live(self, tl_msg: Any, *, edit: bool) -> None:
        if self._ctx is None or not isinstance(tl_msg, types.Message):
            return
        state = self._state_for(tl_msg.peer_id)
        if state is None:
            return  # a chat the account is in but that is not configured
        mid = tl_msg.id
        async with state.lock:
            if state.synced is not None and (mid <= state.synced or mid in state.ahead):
                if edit:  # an edit of a post already read: a new version (if anything shown changed)
                    await self._emit_message(state, tl_msg, checkpoint=False, edit=True)
                return  # a new message already read from history
            if not edit and state.backfilled and state.synced is not None and mid == state.synced + 1:
                await self._emit_message(state, tl_msg, checkpoint=True)
                state.synced = mid
                return
            # Something before this message was not seen: read the history up to now.
            try:
                await self._catch_up_locked(state)
            except Exception as exc:
                if self._is_fatal(exc):
                    raise
                log.warning(
                    "telegram catch-up after a live update failed; storing the update now",
                    channel=state.info.label,
                    error=describe(exc),
                )
            if state.synced is None or mid > state.synced:
                # Not in the history yet: emit it now, gap-fill confirms it later.
                await self._emit_message(state, tl_msg, checkpoint=False)
                state.ahead.add(mid)

    async def _deleted(self, update: Any) -> None:
        if self._ctx is None:
            return
        if isinstance(update, types.UpdateDeleteChannelMessages):
            state = self._channels.get(str(update.channel_id))
            if state is None:
                return
            async with state.lock:
                for mid in update.messages:
                    state.forget(mid)
            log.info("telegram posts deleted", channel=state.info.label, ids=list(update.messages))
            await self._emit_deletion(state.info.channel_id, update.messages)
        # UpdateDeleteMessages (private chats, basic groups) names no chat: not watched.
