"""TelethonGateway over a real (never connected) TelegramClient: Telethon's own event
builders turn raw updates into the calls the source receives."""

from __future__ import annotations

from telethon import TelegramClient
from telethon.crypto import AuthKey
from telethon.sessions import StringSession
from telethon.tl import types

from monitor.config import TelegramConfig
from monitor.sources.telegram.gateway import TelethonGateway

from telegram_fakes import AMAQ_ID, T0, post  # type: ignore[no-redef]

API_HASH = "0123456789abcdef0123456789abcdef"


async def dispatch(client: TelegramClient, update) -> None:
    update._entities = {}  # Telethon's update loop attaches the entities that came with it
    await client._dispatch_update(update)


async def test_telethon_events_reach_the_handlers_as_tl_objects():
    gw = TelethonGateway(TelegramConfig(api_id=1, api_hash=API_HASH, session_string="unused"))
    gw.client = TelegramClient(StringSession(), 1, API_HASH)  # offline: never connected
    gw.client._mb_entity_cache.set_self_user(42, False, 0)
    got: list[tuple] = []

    async def on_new(m):
        got.append(("new", m))

    async def on_edit(m):
        got.append(("edit", m))

    async def on_delete(u):
        got.append(("delete", u))

    gw.add_event_handlers(on_new, on_edit, on_delete)
    await dispatch(gw.client, types.UpdateNewChannelMessage(message=post(AMAQ_ID, 5, "claim"), pts=1, pts_count=1))
    edited = post(AMAQ_ID, 5, "claim (edited)", edit_date=T0)
    await dispatch(gw.client, types.UpdateEditChannelMessage(message=edited, pts=2, pts_count=1))
    await dispatch(gw.client, types.UpdateDeleteChannelMessages(channel_id=AMAQ_ID, messages=[5], pts=3, pts_count=1))
    await dispatch(gw.client, types.UpdateDeleteMessages(messages=[7, 8], pts=4, pts_count=2))
    pin = types.MessageService(id=6, peer_id=types.PeerChannel(AMAQ_ID), date=T0, action=types.MessageActionPinMessage())
    await dispatch(gw.client, types.UpdateNewChannelMessage(message=pin, pts=5, pts_count=1))

    kinds = [k for k, _ in got]
    assert kinds == ["new", "edit", "delete", "delete"]  # service messages are not posts
    assert isinstance(got[0][1], types.Message) and got[0][1].message == "claim"
    assert got[1][1].message == "claim (edited)" and got[1][1].edit_date == T0
    assert isinstance(got[2][1], types.UpdateDeleteChannelMessages) and got[2][1].channel_id == AMAQ_ID
    assert isinstance(got[3][1], types.UpdateDeleteMessages) and got[3][1].messages == [7, 8]


async def test_client_is_built_on_connect_with_a_flood_sleep_threshold():
    made = []

    class Client:
        def __init__(self, session, api_id, api_hash, **kw):
            made.append((session, api_id, api_hash, kw))

        async def connect(self):
            pass

    saved = StringSession()
    saved.set_dc(2, "149.154.167.40", 443)
    saved.auth_key = AuthKey(b"\x01" * 256)
    cfg = TelegramConfig(api_id=777, api_hash=API_HASH, session_string=saved.save())
    gw = TelethonGateway(cfg, client_factory=Client)
    assert made == []  # nothing happens in __init__
    await gw.connect()
    ((session, api_id, api_hash, kw),) = made
    assert isinstance(session, StringSession) and session.dc_id == 2
    assert (api_id, api_hash) == (777, API_HASH)
    # Not 0: Telethon's update loop must sleep over short flood waits during getDifference
    assert kw["flood_sleep_threshold"] == 60
    made.clear()
    cfg = TelegramConfig(api_id=777, api_hash=API_HASH, session_string=saved.save(), flood_sleep_threshold=120)
    await TelethonGateway(cfg, client_factory=Client).connect()
    assert made[0][3]["flood_sleep_threshold"] == 120
