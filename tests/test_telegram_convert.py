"""Conversion of real Telethon TL objects into Message."""

from __future__ import annotations

import inspect
import json
from datetime import timedelta

import pytest
from telethon.tl import types

from monitor.model import Message
from monitor.sources.telegram.convert import ChannelMeta, json_safe, message_to_message
from telegram_fakes import AMAQ_ID, T0, channel, post  # type: ignore[no-redef]

AMAQ = channel(AMAQ_ID, "Amaq Example", "amaq_example", access_hash=77)


def test_text_entities_views_author_url_and_raw():
    text = "🔥 Claimed responsibility: read more"  # the emoji is 2 UTF-16 code units
    tl = post(
        AMAQ_ID,
        501,
        text,
        entities=[
            types.MessageEntityBold(offset=3, length=7),  # "Claimed" (offsets count UTF-16 units)
            types.MessageEntityTextUrl(offset=27, length=9, url="https://example.org/claim"),
            types.MessageEntityHashtag(offset=0, length=2),
        ],
        views=1520,
        forwards=33,
        post_author="Media Office",
        grouped_id=13579,
        edit_date=T0 + timedelta(minutes=3),
    )
    m = message_to_message(tl, AMAQ)
    assert isinstance(m, Message)
    assert (m.platform, m.channel_id, m.message_id) == ("telegram", str(AMAQ_ID), "501")
    assert m.text == text
    assert m.date == T0 and m.edit_date == T0 + timedelta(minutes=3)
    assert m.channel == "amaq_example" and m.channel_title == "Amaq Example"
    assert m.url == "https://t.me/amaq_example/501"
    assert m.author == "Media Office"
    assert m.grouped_id == "13579"
    assert m.extra["views"] == 1520 and m.extra["forwards"] == 33
    bold, link, tag = m.extra["entities"]
    assert bold == {"type": "bold", "offset": 2, "length": 7, "text": "Claimed"}
    assert m.text[bold["offset"] : bold["offset"] + bold["length"]] == "Claimed"
    assert link["type"] == "text_url" and link["text"] == "read more" and link["url"] == "https://example.org/claim"
    assert tag["text"] == "🔥"
    assert m.extra["links"] == ["https://example.org/claim"]
    # raw is the TL dict, JSON-safe, and keeps the original UTF-16 offsets
    assert m.raw["_"] == "Message" and m.raw["id"] == 501
    assert m.raw["date"] == "2024-03-22T18:00:00Z"
    assert m.raw["entities"][0] == {"_": "MessageEntityBold", "offset": 3, "length": 7}
    json.dumps(m.raw)
    assert Message.from_dict(json.loads(json.dumps(m.to_dict()))) == m


def test_entity_splitting_an_emoji_does_not_break_the_message():
    tl = post(AMAQ_ID, 9, "a🔥b", entities=[types.MessageEntityBold(offset=2, length=2)])  # starts inside the emoji
    m = message_to_message(tl, AMAQ)
    (ent,) = m.extra["entities"]
    assert "\ufffd" in ent["text"]
    json.dumps(m.to_dict(), ensure_ascii=False).encode("utf-8")
    assert m.text_sha256()


def test_private_channel_url_uses_c_form():
    tl = post(AMAQ_ID, 7, "x")
    m = message_to_message(tl, ChannelMeta(str(AMAQ_ID), None, "Private one", "channel"))
    assert m.url == f"https://t.me/c/{AMAQ_ID}/7"
    assert m.channel == "Private one"
    # without any channel info the peer still gives id and link
    m2 = message_to_message(tl)
    assert m2.channel_id == str(AMAQ_ID) and m2.url == f"https://t.me/c/{AMAQ_ID}/7"


def test_forward_header_reply_and_names():
    fwd = types.MessageFwdHeader(
        date=T0 - timedelta(hours=2),
        from_id=types.PeerChannel(1900000001),
        channel_post=8812,
        post_author="Editor",
    )
    tl = post(
        AMAQ_ID,
        502,
        "reposted",
        fwd_from=fwd,
        reply_to=types.MessageReplyHeader(reply_to_msg_id=499, quote_text="earlier"),
    )
    m = message_to_message(tl, AMAQ, names={"1900000001": "Source Channel"})
    assert m.forwarded_from is not None
    assert m.forwarded_from.id == "1900000001"
    assert m.forwarded_from.message_id == "8812"
    assert m.forwarded_from.date == T0 - timedelta(hours=2)
    assert m.forwarded_from.name == "Source Channel"
    assert m.extra["forward_from_type"] == "channel"
    assert m.extra["forward_post_author"] == "Editor"
    assert m.reply_to == "499"
    assert m.extra["quote_text"] == "earlier"
    hidden = post(AMAQ_ID, 503, "x", fwd_from=types.MessageFwdHeader(date=T0, from_name="Hidden User"))
    assert message_to_message(hidden, AMAQ).forwarded_from.name == "Hidden User"


def test_photo_media_with_caption():
    photo = types.Photo(
        id=5550001,
        access_hash=1,
        file_reference=b"\x01\x02\xff",
        date=T0,
        sizes=[
            types.PhotoSize(type="m", w=320, h=240, size=15000),
            types.PhotoSizeProgressive(type="y", w=1280, h=960, sizes=[20000, 90000, 181234]),
        ],
        dc_id=4,
    )
    tl = post(AMAQ_ID, 504, "caption text", media=types.MessageMediaPhoto(photo=photo))
    m = message_to_message(tl, AMAQ)
    assert m.text == "caption text"
    assert len(m.media) == 1
    media = m.media[0]
    assert (media.type, media.size, media.mime, media.file_name) == ("photo", 181234, "image/jpeg", None)
    # bytes in the TL tree become hex in raw
    assert m.raw["media"]["photo"]["file_reference"] == "0102ff"


@pytest.mark.parametrize(
    ("attributes", "flags", "expected"),
    [
        ([types.DocumentAttributeFilename(file_name="statement.pdf")], {}, "document"),
        ([types.DocumentAttributeVideo(duration=12.5, w=1280, h=720), types.DocumentAttributeFilename("clip.mp4")], {}, "video"),
        ([types.DocumentAttributeVideo(duration=9, w=240, h=240, round_message=True)], {}, "video_note"),
        ([types.DocumentAttributeAudio(duration=40, voice=True)], {}, "voice"),
        ([types.DocumentAttributeAudio(duration=200, title="Nasheed"), types.DocumentAttributeFilename("a.mp3")], {}, "audio"),
        ([types.DocumentAttributeSticker(alt="👍", stickerset=types.InputStickerSetEmpty())], {}, "sticker"),
        ([types.DocumentAttributeAnimated(), types.DocumentAttributeVideo(duration=3, w=200, h=200)], {}, "animation"),
    ],
)
def test_document_kinds(attributes, flags, expected):
    doc = types.Document(
        id=6660001,
        access_hash=2,
        file_reference=b"\x00",
        date=T0,
        mime_type="application/pdf" if expected == "document" else "video/mp4",
        size=2_345_678,
        dc_id=2,
        attributes=attributes,
    )
    tl = post(AMAQ_ID, 505, "", media=types.MessageMediaDocument(document=doc, **flags))
    (media,) = message_to_message(tl, AMAQ).media
    assert media.type == expected
    assert media.size == 2_345_678
    assert media.mime == doc.mime_type
    names = [a.file_name for a in attributes if isinstance(a, types.DocumentAttributeFilename)]
    assert media.file_name == (names[0] if names else None)


def test_web_page_preview():
    page = types.WebPage(
        id=1,
        url="https://news.example.com/story",
        display_url="news.example.com/story",
        hash=0,
        site_name="Example News",
        title="Attack claimed",
        description="A group claimed responsibility",
    )
    tl = post(
        AMAQ_ID,
        506,
        "see https://news.example.com/story",
        media=types.MessageMediaWebPage(webpage=page),
        entities=[types.MessageEntityUrl(offset=4, length=30)],
    )
    m = message_to_message(tl, AMAQ)
    assert [x.type for x in m.media] == ["webpage"]
    assert m.extra["webpage"] == {
        "url": "https://news.example.com/story",
        "display_url": "news.example.com/story",
        "site_name": "Example News",
        "title": "Attack claimed",
        "description": "A group claimed responsibility",
    }
    assert m.extra["links"] == ["https://news.example.com/story"]


def test_poll_and_other_media_kinds():
    poll = types.Poll(
        id=1,
        question=types.TextWithEntities(text="Who?", entities=[]),
        answers=[types.PollAnswer(text=types.TextWithEntities(text="Them", entities=[]), option=b"0")],
        **({"hash": 0} if "hash" in inspect.signature(types.Poll.__init__).parameters else {}),  # layer 199+
    )
    tl = post(AMAQ_ID, 507, "", media=types.MessageMediaPoll(poll=poll, results=types.PollResults()))
    m = message_to_message(tl, AMAQ)
    assert m.media[0].type == "poll" and m.extra["poll"] == {"question": "Who?", "answers": ["Them"]}
    geo = post(AMAQ_ID, 508, "", media=types.MessageMediaGeo(geo=types.GeoPoint(long=36.2, lat=33.5, access_hash=0)))
    assert message_to_message(geo, AMAQ).media[0].type == "geo"


def test_group_message_author_and_non_channel_chat_has_no_link():
    chat = types.Chat(id=4242, title="Small group", photo=types.ChatPhotoEmpty(), participants_count=5, date=T0, version=1)
    tl = types.Message(
        id=88,
        peer_id=types.PeerChat(4242),
        date=T0,
        message="hello",
        from_id=types.PeerUser(777),
    )
    m = message_to_message(tl, chat)
    assert m.channel_id == "4242" and m.channel == "Small group"
    assert m.url is None
    assert m.extra["from_id"] == "777" and m.extra["from_type"] == "user"


def test_service_messages_are_refused():
    svc = types.MessageService(id=9, peer_id=types.PeerChannel(AMAQ_ID), date=T0, action=types.MessageActionPinMessage())
    with pytest.raises(TypeError):
        message_to_message(svc, AMAQ)


def test_json_safe():
    assert json_safe({"a": [b"\x00\x10", T0], "b": (1, None)}) == {"a": ["0010", "2024-03-22T18:00:00Z"], "b": [1, None]}
