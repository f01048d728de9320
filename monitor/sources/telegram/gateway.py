"""The one narrow interface between the Telegram source and Telegram.

:class:`TelegramGateway` lists the few calls the source needs; everything it returns is
a real Telethon TL object (``types.Message``, ``types.Channel``...) and every failure is a
real ``telethon.errors`` exception. :class:`TelethonGateway` implements it over
``telethon.TelegramClient``; tests implement it with a fake that never touches the network.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, AsyncIterator, Awaitable, Callable, Protocol, Sequence

from ...config import TelegramConfig
from .errors import TelegramSetupError
from .session import check_session_file, open_private_session, string_session

OnMessage = Callable[[Any], Awaitable[None]]  # receives a types.Message
OnDelete = Callable[[Any], Awaitable[None]]  # receives UpdateDeleteChannelMessages | UpdateDeleteMessages


class TelegramGateway(Protocol):
    async def connect(self) -> None:
        """Open the connection (raises OSError/ConnectionError when Telegram is unreachable)."""

    async def is_authorized(self) -> bool:
        """Whether the session is logged in."""

    async def get_me(self) -> Any:
        """The logged-in ``types.User`` (or None)."""

    async def resolve(self, ref: Any) -> Any:
        """Entity (``types.Channel``/``Chat``/``User``) for a username, t.me link, marked id
        or input peer. Raises telethon errors or ValueError when it cannot."""

    def iter_messages(
        self,
        peer: Any,
        *,
        min_id: int = 0,
        reverse: bool = False,
        offset_date: datetime | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Any]:
        """History of ``peer`` with Telethon's ``iter_messages`` semantics: newest first,
        or oldest first with ``reverse`` (then ``offset_date`` means "after this date");
        only ids above ``min_id``; at most ``limit`` messages."""

    async def get_messages(self, peer: Any, ids: Sequence[int]) -> list[Any]:
        """The messages with these ids, None for each that no longer exists."""

    def add_event_handlers(self, on_new: OnMessage, on_edit: OnMessage, on_delete: OnDelete) -> None:
        """Call ``on_new``/``on_edit`` with each new/edited message and ``on_delete`` with each
        deletion update, for every chat the account receives updates from."""

    async def download_media(self, message: Any, path: str) -> str | None:
        """Download the message's media to ``path``; returns the path written, or None."""

    async def wait_disconnected(self) -> None:
        """Return (or raise) when the connection is lost for good (after Telethon's own retries)."""

    async def disconnect(self) -> None: ...


class TelethonGateway:
    """:class:`TelegramGateway` over a ``telethon.TelegramClient``, created on :meth:`connect`
    (not in ``__init__``), with the file session checked to be private first."""

    def __init__(self, cfg: TelegramConfig, *, client_factory: Callable[..., Any] | None = None) -> None:
        if not cfg.api_id or cfg.api_hash is None or not cfg.api_hash.get_secret_value():
            raise TelegramSetupError(
                "sources.telegram: api_id and api_hash are required (get them at https://my.telegram.org)"
            )
        self.cfg = cfg
        self._client_factory = client_factory
        self.client: Any = None

    def _session(self) -> Any:
        if self.cfg.session_string is not None and self.cfg.session_string.get_secret_value():
            return string_session(self.cfg.session_string.get_secret_value())
        check_session_file(self.cfg.session)  # refuses a missing or group/other-readable file
        return open_private_session(self.cfg.session)

    def _make_client(self) -> Any:
        from telethon import TelegramClient

        factory = self._client_factory or TelegramClient
        assert self.cfg.api_hash is not None
        return factory(
            self._session(),
            int(self.cfg.api_id or 0),
            self.cfg.api_hash.get_secret_value(),
            # Not 0: Telethon's update loop gives up gap recovery (getDifference) on a flood
            # wait it may not sleep over, and raises at once for a request type under a wait.
            flood_sleep_threshold=int(self.cfg.flood_sleep_threshold),
            connection_retries=5,
            retry_delay=2,
            auto_reconnect=True,
        )

    async def connect(self) -> None:
        if self.client is None:
            self.client = self._make_client()
        await self.client.connect()

    async def is_authorized(self) -> bool:
        return bool(await self.client.is_user_authorized())

    async def get_me(self) -> Any:
        return await self.client.get_me()

    async def resolve(self, ref: Any) -> Any:
        return await self.client.get_entity(ref)

    async def iter_messages(
        self,
        peer: Any,
        *,
        min_id: int = 0,
        reverse: bool = False,
        offset_date: datetime | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Any]:
        async for message in self.client.iter_messages(
            peer, limit=limit, min_id=min_id, reverse=reverse, offset_date=offset_date
        ):
            yield message

    async def get_messages(self, peer: Any, ids: Sequence[int]) -> list[Any]:
        return list(await self.client.get_messages(peer, ids=list(ids)))

    def add_event_handlers(self, on_new: OnMessage, on_edit: OnMessage, on_delete: OnDelete) -> None:
        from telethon import events

        async def new(event: Any) -> None:
            await on_new(event.message)

        async def edited(event: Any) -> None:
            await on_edit(event.message)

        async def deleted(event: Any) -> None:
            await on_delete(event.original_update)

        self.client.add_event_handler(new, events.NewMessage())
        self.client.add_event_handler(edited, events.MessageEdited())
        self.client.add_event_handler(deleted, events.MessageDeleted())

    async def download_media(self, message: Any, path: str) -> str | None:
        result = await self.client.download_media(message, file=path)
        return str(result) if result else None

    async def wait_disconnected(self) -> None:
        await self.client.disconnected

    async def disconnect(self) -> None:
        if self.client is not None:
            await self.client.disconnect()
