"""Test support for the Telegram source (no tests here): a fake TelegramGateway that keeps
channels and their histories as real Telethon TL objects and raises real telethon errors,
and a collector that commits envelopes to a real archive the way the pipeline does."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator, Sequence

from telethon import errors, utils
from telethon.tl import types

from monitor.archive import Archive
from monitor.config import TelegramConfig
from monitor.model import Deletion, Message
from monitor.sources.base import Envelope, SourceContext
from monitor.sources.telegram.ids import peer_bare_id

T0 = datetime(2024, 3, 22, 18, 0, tzinfo=timezone.utc)
AMAQ_ID = 1234500000
AMAQ_HASH = 987654321
OTHER_ID = 1500000001
OTHER_HASH = 55555


def channel(cid: int, title: str, username: str | None = None, access_hash: int = 1, left: bool = False) -> types.Channel:
    return types.Channel(
        id=cid,
        title=title,
        photo=types.ChatPhotoEmpty(),
        date=T0 - timedelta(days=400),
        broadcast=True,
        username=username,
        access_hash=access_hash,
        left=left,
    )


def post(cid: int, mid: int, text: str = "", *, minutes: float = 0, **kw: Any) -> types.Message:
    return types.Message(
        id=mid,
        peer_id=types.PeerChannel(cid),
        date=kw.pop("date", T0 + timedelta(minutes=minutes)),
        message=text,
        post=True,
        **kw,
    )


def service(cid: int, mid: int, *, minutes: float = 0) -> types.MessageService:
    return types.MessageService(
        id=mid,
        peer_id=types.PeerChannel(cid),
        date=T0 + timedelta(minutes=minutes),
        action=types.MessageActionPinMessage(),
        reply_to=types.MessageReplyHeader(reply_to_msg_id=mid - 1),
    )


class FakeGateway:
    """In-memory Telegram: ``history`` per channel id; live events pushed by the test.

    Behaves as Telethon over Telegram does where the source can tell:

    * ``iter_messages`` reads in chunks of 100 (one GetHistory each); an error queued in
      ``history_errors`` is raised by the next request, which may be after messages were
      already yielded (``fail_after``: raise at the chunk boundary after N messages);
    * flood waits are per *request type*, for every channel (``flood``: request type ->
      seconds raised by the next calls of that type, whatever the peer);
    * live handlers run as separate tasks (Telethon's update loop spawns one per update),
      so concurrent pushes race for the source's locks; reactions arrive as edits with
      the same text and ``edit_date`` (:meth:`push_reaction`);
    * authorisation is asked every time: a logged-out session fails every request.
    """

    def __init__(self) -> None:
        self.channels: dict[int, Any] = {}
        self.history: dict[int, dict[int, Any]] = {}
        self.usernames: dict[str, int] = {}
        self.invites: dict[str, Any] = {}  # invite hash -> entity or exception
        self.resolve_errors: dict[Any, BaseException] = {}  # ref -> raised (every time)
        self.history_errors: dict[int, list[BaseException]] = {}  # channel -> raised by next reads
        self.fail_after: dict[int, tuple[int, BaseException]] = {}  # channel -> (after N messages, error)
        self.flood: dict[str, list[int]] = {}  # "GetHistory"/"GetMessages"/"GetFile" -> next calls' waits (0: none), any peer
        self.tasks: list[asyncio.Task[Any]] = []  # live handler tasks
        self.get_errors: dict[int, list[BaseException]] = {}  # channel -> raised by next get_messages
        self.connect_errors: list[BaseException] = []
        self.authorized = True
        self.calls: list[tuple[Any, ...]] = []
        self.handlers: tuple[Any, Any, Any] | None = None
        self.media_bytes: dict[int, bytes] = {}  # message id -> file content
        self.connects = 0
        self.disconnects = 0
        self._lost = asyncio.Event()

    # -- setup ---------------------------------------------------------------------
    def add_channel(self, entity: Any) -> Any:
        self.channels[entity.id] = entity
        self.history.setdefault(entity.id, {})
        if getattr(entity, "username", None):
            self.usernames[entity.username.lower()] = entity.id
        return entity

    def add(self, *messages: Any) -> None:
        for m in messages:
            self.history[int(peer_bare_id(m.peer_id))][m.id] = m

    def lose_connection(self) -> None:
        self._lost.set()

    # -- TelegramGateway ---------------------------------------------------------------
    async def connect(self) -> None:
        self.connects += 1
        self.calls.append(("connect",))
        if self.connect_errors:
            raise self.connect_errors.pop(0)

    async def is_authorized(self) -> bool:
        return self.authorized

    def _request(self, kind: str) -> None:
        """What every API request meets first: the session, then a flood wait of its type."""
        if not self.authorized:
            raise errors.AuthKeyUnregisteredError(request=None)
        waits = self.flood.get(kind)
        if waits:
            seconds = waits.pop(0)
            if seconds:  # 0: this call goes through
                raise errors.FloodWaitError(request=None, capture=seconds)

    async def get_me(self) -> Any:
        return types.User(id=42, first_name="Desk", username="desk_analyst")

    async def resolve(self, ref: Any) -> Any:
        self.calls.append(("resolve", ref))
        key = ref if isinstance(ref, (str, int)) else ("peer", peer_bare_id(ref))
        if key in self.resolve_errors:
            raise self.resolve_errors[key]
        if isinstance(ref, str):
            if ref.startswith("https://t.me/+"):
                found = self.invites.get(ref.rsplit("+", 1)[1])
                if found is None:
                    raise errors.InviteHashInvalidError(request=None)
                if isinstance(found, BaseException):
                    raise found
                return found
            cid = self.usernames.get(ref.lower())
            if cid is None:
                raise errors.UsernameNotOccupiedError(request=None)
            return self.channels[cid]
        if isinstance(ref, int):
            real, _kind = utils.resolve_id(ref)
            if real not in self.channels:
                raise ValueError(f"Could not find the input entity for PeerChannel(channel_id={real})")
            return self.channels[real]
        if isinstance(ref, types.InputPeerChannel):
            entity = self.channels.get(ref.channel_id)
            if entity is None or entity.access_hash != ref.access_hash:
                raise errors.ChannelInvalidError(request=None)
            return entity
        if isinstance(ref, types.InputPeerChat):
            if ref.chat_id not in self.channels:
                raise errors.ChatIdInvalidError(request=None)
            return self.channels[ref.chat_id]
        raise TypeError(f"Cannot cast {type(ref).__name__} to any kind of peer")

    def _cid(self, peer: Any) -> int:
        return int(peer_bare_id(peer))

    async def iter_messages(
        self,
        peer: Any,
        *,
        min_id: int = 0,
        reverse: bool = False,
        offset_date: datetime | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Any]:
        cid = self._cid(peer)
        self.calls.append(("iter_messages", cid, min_id, reverse, offset_date, limit))
        self._request("GetHistory")
        pending = self.history_errors.get(cid)
        if pending:
            raise pending.pop(0)
        entity = self.channels.get(cid)
        if entity is None or isinstance(entity, BaseException):
            raise errors.ChannelPrivateError(request=None)
        msgs = sorted(self.history[cid].values(), key=lambda m: m.id)
        msgs = [m for m in msgs if m.id > (min_id or 0)]
        if offset_date is not None:
            msgs = [m for m in msgs if (m.date >= offset_date if reverse else m.date < offset_date)]
        if not reverse:
            msgs.reverse()
        if limit is not None:
            msgs = msgs[:limit]
        for i, m in enumerate(msgs):
            if i and i % 100 == 0:  # the next chunk is a new GetHistory request
                self._request("GetHistory")
                failing = self.fail_after.get(cid)
                if failing is not None and failing[0] <= i:
                    del self.fail_after[cid]
                    raise failing[1]
            yield m

    async def get_messages(self, peer: Any, ids: Sequence[int]) -> list[Any]:
        cid = self._cid(peer)
        self.calls.append(("get_messages", cid, list(ids)))
        self._request("GetMessages")
        pending = self.get_errors.get(cid)
        if pending:
            raise pending.pop(0)
        return [self.history[cid].get(i) for i in ids]

    def add_event_handlers(self, on_new: Any, on_edit: Any, on_delete: Any) -> None:
        self.handlers = (on_new, on_edit, on_delete)

    async def download_media(self, message: Any, path: str) -> str | None:
        self._request("GetFile")
        data = self.media_bytes.get(message.id)
        if data is None:
            return None
        with open(path, "wb") as fh:
            fh.write(data)
        return path

    async def wait_disconnected(self) -> None:
        await self._lost.wait()
        self._lost.clear()

    async def disconnect(self) -> None:
        self.disconnects += 1

    # -- live events (what Telethon would deliver) ----------------------------------------
    def _spawn(self, work: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(work)
        self.tasks.append(task)
        return task

    async def settle(self) -> None:
        """Wait for every handler task started so far."""
        while self.tasks:
            tasks, self.tasks = self.tasks, []
            await asyncio.gather(*tasks)

    async def push_new(self, message: Any, *, store: bool = True, wait: bool = True) -> None:
        """Deliver a new message to the handler, as its own task (``wait``: until it is done)."""
        if store:
            self.add(message)
        assert self.handlers is not None, "the source registered no handlers"
        task = self._spawn(self.handlers[0](message))
        if wait:
            await task

    async def push_edit(self, message: Any, *, wait: bool = True) -> None:
        self.add(message)
        assert self.handlers is not None
        task = self._spawn(self.handlers[1](message))
        if wait:
            await task

    async def push_reaction(self, cid: int, mid: int, emoticon: str = "👍", count: int = 1) -> None:
        """Someone reacted: Telegram sends UpdateEditChannelMessage, Telethon a MessageEdited
        with the same text and edit_date, only ``reactions`` differ."""
        old = self.history[cid][mid]
        reacted = types.Message(
            id=old.id, peer_id=old.peer_id, date=old.date, message=old.message, post=old.post,
            edit_date=old.edit_date, media=old.media, entities=old.entities, views=(old.views or 0) + 1,
            reactions=types.MessageReactions(results=[types.ReactionCount(
                reaction=types.ReactionEmoji(emoticon=emoticon), count=count)]),
        )
        await self.push_edit(reacted)

    async def push_delete(self, cid: int | None, ids: list[int]) -> None:
        assert self.handlers is not None
        if cid is None:
            await self.handlers[2](types.UpdateDeleteMessages(messages=ids, pts=1, pts_count=len(ids)))
            return
        for i in ids:
            self.history[cid].pop(i, None)
        await self.handlers[2](types.UpdateDeleteChannelMessages(channel_id=cid, messages=ids, pts=1, pts_count=len(ids)))


class Collector:
    """A SourceContext.emit that records envelopes and commits them to the archive the
    way the pipeline does (message + checkpoint in one transaction; deletions marked)."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.envelopes: list[Envelope] = []

    failing = False  # while set, batches "roll back": nothing stored, no on_commit

    async def emit(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)
        if self.failing:
            return
        ev = envelope.event
        if isinstance(ev, Message):
            cps = {(envelope.source, envelope.checkpoint[0]): envelope.checkpoint[1]} if envelope.checkpoint else None
            self.archive.store([(ev, [])], checkpoints=cps)
        else:
            self.archive.mark_deleted(ev)
        if envelope.on_commit is not None:  # as the pipeline does once the transaction committed
            envelope.on_commit()

    def messages(self) -> list[Message]:
        return [e.event for e in self.envelopes if isinstance(e.event, Message)]

    def ids(self) -> list[int]:
        return [int(m.message_id) for m in self.messages()]

    def deletions(self) -> list[Deletion]:
        return [e.event for e in self.envelopes if isinstance(e.event, Deletion)]

    def clear(self) -> None:
        self.envelopes.clear()


def context(archive: Archive, collector: Collector, scheduler: Any = None) -> SourceContext:
    return SourceContext(archive=archive, emit=collector.emit, scheduler=scheduler)


def tg_config(**kw: Any) -> TelegramConfig:
    base: dict[str, Any] = {"api_id": 12345, "api_hash": "0123456789abcdef0123456789abcdef", "channels": ["@amaq_example"]}
    base.update(kw)
    return TelegramConfig.model_validate(base)


class Sleeps:
    """An injectable sleep that records what it was asked to wait, without waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        await asyncio.sleep(0)


async def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
