"""File importers on real files: Telegram Desktop exports, X API v2 JSONL, canonical JSONL.

Every test writes real files to tmp_path (or reads samples/) and, where storage matters,
imports into a real SQLite archive.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import tweepy

from monitor.archive import Archive
from monitor.ingest import import_file
from monitor.model import Forward, Media, Message, MessageError, canonical_json
from monitor.sources.telegram import export as telegram_export
from monitor.sources.x import convert as x_convert
from monitor.sources.files import (
    ImportStats,
    InputError,
    canonical_line,
    detect_format,
    parse_jsonl_record,
    read_messages,
)

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
TG = SAMPLES / "telegram" / "result.json"
TG_ACCOUNT = SAMPLES / "telegram" / "account-export.json"
X = SAMPLES / "x" / "tweets.jsonl"
UTC = timezone.utc


def read(path: Path, **kw: Any) -> tuple[list[Message], ImportStats]:
    stats = ImportStats()
    return list(read_messages(path, stats=stats, **kw)), stats


def by_id(messages: list[Message]) -> dict[str, Message]:
    return {m.message_id: m for m in messages}


def tg_message(mid: int, text: Any = "hello", unix: int = 1704373770, **kw: Any) -> dict[str, Any]:
    m = {"id": mid, "type": "message", "date": "2024-01-04T16:49:30", "date_unixtime": str(unix),
         "from": "Test Channel", "from_id": "channel555", **kw, "text": text}
    return m


def write_export(path: Path, messages: list[dict], *, name: str = "Test Channel", cid: int = 555,
                 kind: str = "public_channel", indent: int | None = 1) -> Path:
    doc = {"name": name, "type": kind, "id": cid, "messages": messages}
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=indent), encoding="utf-8")
    return path


# --- Telegram Desktop export ---------------------------------------------------------------
def test_telegram_sample_counts_and_skips_service_messages() -> None:
    msgs, stats = read(TG)
    assert stats.format == "telegram"
    assert (stats.read, stats.skipped_service, stats.bad) == (22, 4, 0)
    ids = {m.message_id for m in msgs}
    assert {"1", "3", "18", "25"}.isdisjoint(ids)  # create_channel, pin, title edit, pin
    assert all(m.platform == "telegram" and m.channel_id == "1234500000" for m in msgs)


def test_telegram_entity_split_text_is_joined_exactly(tmp_path: Path) -> None:
    parts = ["قال ", {"type": "bold", "text": "المتحدث"}, " إن ",
             {"type": "text_link", "text": "البيان", "href": "https://example.org/b"}, "",
             {"type": "hashtag", "text": "#كرمان"}, " \u200c ", {"type": "mention", "text": "@someone"}]
    p = write_export(tmp_path / "r.json", [tg_message(1, parts), tg_message(2, "plain"), tg_message(3, [])])
    msgs = by_id(read(p)[0])
    assert msgs["1"].text == "قال المتحدث إن البيان#كرمان \u200c @someone"
    assert (msgs["2"].text, msgs["3"].text) == ("plain", "")
    sample = by_id(read(TG)[0])
    assert sample["5"].text.startswith("عاجل | انفجاران قرب مقبرة كرمان")
    assert sample["5"].text.endswith("عشرات القتلى #كرمان")
    assert sample["17"].text == "للاطلاع على الإصدارات السابقة اضغط هنا أو تابع @amaq_mirror_backup"


def test_telegram_uses_date_unixtime_not_the_local_date() -> None:
    m = by_id(read(TG)[0])["9"]
    assert m.raw["date"] == "2024-01-04T16:49:30"  # local time of the exporting computer (UTC+3)
    assert m.date == datetime(2024, 1, 4, 13, 49, 30, tzinfo=UTC)
    assert m.edit_date == datetime(2024, 1, 4, 13, 58, 2, tzinfo=UTC)


def test_telegram_edits_forwards_replies_media_and_signatures_are_kept() -> None:
    msgs = by_id(read(TG)[0])
    assert msgs["6"].forwarded_from == Forward(name="شبكة أخبار الخليج", id="1612300000")
    assert msgs["6"].extra["forward_from_type"] == "channel"
    assert msgs["13"].reply_to == "10" and msgs["21"].reply_to == "20"
    photo = msgs["10"]
    assert photo.text.startswith("بيان: تبنى تنظيم الدولة الإسلامية")
    assert photo.media == (Media(type="photo", file_name="photo_10@04-01-2024_16-52-47.jpg", size=148213),)
    assert (photo.extra["width"], photo.extra["height"]) == (1280, 853)
    assert msgs["11"].text == "" and msgs["11"].media[0].type == "photo"
    assert msgs["12"].media == (Media(type="document", file_name="bayan_kerman.pdf", size=312577, mime="application/pdf"),)
    assert msgs["15"].media[0].type == "audio" and msgs["15"].extra["duration_seconds"] == 1994
    assert msgs["20"].media[0].type == "video" and msgs["20"].extra["export_path"] == "files/video_kerman.mp4"
    assert msgs["19"].author == "المراسل"
    assert msgs["9"].channel == msgs["9"].channel_title == "أعماق - المرآة ٧"
    assert msgs["9"].url == "https://t.me/c/1234500000/9"


def test_telegram_raw_is_the_message_object_as_read() -> None:
    doc = json.loads(TG.read_text(encoding="utf-8"))
    originals = {str(m["id"]): m for m in doc["messages"]}
    for m in read(TG)[0]:
        assert m.raw == originals[m.message_id]
        assert json.loads(m.raw_json()) == originals[m.message_id]


def test_telegram_channel_username_override_makes_public_links() -> None:
    m = by_id(read(TG, channel_username="@amaq_mirror7")[0])["9"]
    assert (m.channel, m.channel_title) == ("amaq_mirror7", "أعماق - المرآة ٧")
    assert m.url == "https://t.me/amaq_mirror7/9"


def test_telegram_full_account_export() -> None:
    msgs, stats = read(TG_ACCOUNT)
    assert (stats.read, stats.skipped_service) == (12, 2)
    chats = {(m.channel_id, m.channel_title) for m in msgs}
    assert chats == {("1987600000", "خبرگزاری پیام ملت"), ("1744400000", "Kerman OSINT desk"),
                     ("5550009", None), ("1612300000", "شبكة أخبار الخليج")}  # left_chats included
    keyed = {(m.channel_id, m.message_id): m for m in msgs}
    statement = keyed[("1987600000", "3")]
    assert "محکوم" in statement.text and "رژیم صهیونیستی" in statement.text
    assert statement.edit_date == datetime(2024, 1, 3, 14, 31, 40, tzinfo=UTC)
    group = keyed[("1744400000", "102")]
    assert group.author == "Omid K." and group.reply_to == "101" and group.extra["from_id"] == "user5550002"
    assert group.text == "Geolocated: this junction, about 700 m from the tomb"
    assert keyed[("5550009", "9001")].url is None  # saved messages have no t.me link
    assert keyed[("1612300000", "56")].url == "https://t.me/c/1612300000/56"


def test_telegram_partial_tree_reader_matches_whatever_the_chunk_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """The general (account / unusual layout) reader converts messages between chunks."""
    expected = read(TG_ACCOUNT)[0]
    monkeypatch.setattr(telegram_export, "CHUNK", 97)
    small = read(TG_ACCOUNT)[0]
    assert small == expected


def test_telegram_messages_before_header_use_the_general_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telegram_export, "CHUNK", 64)
    doc = {"messages": [tg_message(1, "first"), tg_message(2, [{"type": "bold", "text": "b"}, "c"])],
           "id": 777, "type": "private_channel", "name": "Late header"}
    p = tmp_path / "odd.json"
    p.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    msgs, stats = read(p)
    assert [(m.channel_id, m.channel_title, m.text) for m in msgs] == [("777", "Late header", "first"), ("777", "Late header", "bc")]
    assert msgs[0].url == "https://t.me/c/777/1"


def test_telegram_bom_and_minified_exports(tmp_path: Path) -> None:
    p = write_export(tmp_path / "min.json", [tg_message(1, "x")], indent=None)
    p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())
    assert detect_format(p) == "telegram"
    assert [m.text for m in read(p)[0]] == ["x"]


# --- X API v2 JSONL -----------------------------------------------------------------------
def test_x_sample_pages_and_flattened_tweets() -> None:
    msgs, stats = read(X)
    assert stats.format == "x" and stats.read == 14 and stats.bad == 0
    m = by_id(msgs)["1742552774333198337"]
    assert (m.platform, m.channel_id, m.channel, m.channel_title, m.author, m.lang) == (
        "x", "1188000000000000001", "PayamMellat_FA", "خبرگزاری پیام ملت", "PayamMellat_FA", "fa")
    assert m.url == "https://x.com/PayamMellat_FA/status/1742552774333198337"
    assert m.date == datetime(2024, 1, 3, 14, 25, 31, tzinfo=UTC)
    assert "رژیم صهیونیستی" in m.text and m.extra["edit_history_tweet_ids"] == ["1742552774333198337"]
    flat = by_id(msgs)["1742910154199822337"]  # flattened: author embedded, no includes
    assert (flat.channel, flat.channel_title) == ("levant_monitor", "Levant Conflict Monitor")
    assert "claimed responsibility" in flat.text and "__twarc" in flat.raw


def test_x_long_post_uses_note_tweet() -> None:
    m = by_id(read(X)[0])["1742955482043150337"]
    assert "…" in m.raw["text"]
    assert m.text == m.raw["note_tweet"]["text"]
    assert m.text.endswith("at the time and place of its choosing.")


def test_x_retweets_keep_the_full_original_text() -> None:
    msgs = by_id(read(X)[0])
    rt = msgs["1742913983599374337"]  # retweet of a long Arabic post (note_tweet in includes.tweets)
    assert rt.raw["text"].startswith("RT @GulfNewsNet_AR:") and rt.raw["text"].endswith("…")
    assert rt.text.startswith("عاجل | تنظيم الدولة الإسلامية يعلن مسؤوليته")
    assert rt.text.endswith("فيما لم يصدر تعليق فوري من واشنطن على البيان.")
    assert rt.forwarded_from == Forward(name="GulfNewsNet_AR", id="2901234567", message_id="1742911798366990337",
                                        date=datetime(2024, 1, 4, 14, 12, 9, tzinfo=UTC))
    flat_rt = msgs["1742557757166350337"]  # flattened retweet: original expanded in referenced_tweets
    assert flat_rt.text == msgs["1742556427571982337"].text
    assert flat_rt.forwarded_from is not None and flat_rt.forwarded_from.name == "PayamMellat_EN"


def test_x_quotes_keep_both_texts() -> None:
    q = by_id(read(X)[0])["1742931691950862337"]
    assert q.text.startswith("Amaq's claim for Kerman follows the usual IS format")
    assert q.extra["quoted_id"] == "1742908363232014338"
    assert q.extra["quoted_text"] == "وكالة أعماق: مقاتلو الدولة الإسلامية ينفذون هجوماً مزدوجاً في مدينة كرمان جنوب إيران"
    assert q.extra["quoted_author"] == "GulfNewsNet_AR"


def test_x_edited_post_becomes_a_version_of_the_original() -> None:
    msgs = by_id(read(X)[0])
    m = msgs["1742577101296398337"]  # the first id of the edit history
    assert "۸۴" in m.text
    assert m.extra["edit_history_tweet_ids"] == ["1742577101296398337", "1742578984538894337"]
    assert m.extra["version_id"] == "1742578984538894337"
    assert m.date == datetime(2024, 1, 3, 16, 2, 11, tzinfo=UTC)  # the original's created_at (includes.tweets)
    assert m.edit_date == datetime(2024, 1, 3, 16, 9, 40, tzinfo=UTC)
    assert m.url == "https://x.com/KermanGov_IR/status/1742578984538894337"
    assert "1742578984538894337" not in msgs


def test_x_replies_and_media() -> None:
    msgs = by_id(read(X)[0])
    reply = msgs["1742554175230734337"]
    assert reply.reply_to == "1742552774333198337"
    assert reply.extra["in_reply_to_user_id"] == "1188000000000000001"
    assert reply.media == (Media(type="photo", file_name="GC-statement.jpg"),)


def test_x_tweepy_models_give_the_same_message() -> None:
    page = json.loads(X.read_text(encoding="utf-8").splitlines()[0])
    users = {u["id"]: u for u in page["includes"]["users"]}
    tweets = {t["id"]: t for t in page["includes"]["tweets"]}
    raw = page["data"][2]  # the retweet
    from_dicts = x_convert.tweet_to_message(raw, users, tweets)
    from_models = x_convert.tweet_to_message(
        tweepy.Tweet(raw), {int(k): tweepy.User(v) for k, v in users.items()}, {k: tweepy.Tweet(v) for k, v in tweets.items()}
    )
    assert from_models == from_dicts
    page2 = json.loads(X.read_text(encoding="utf-8").splitlines()[0])  # tweepy.Tweet rewrites edit_controls in place
    response = tweepy.Response(
        data=[tweepy.Tweet(t) for t in page2["data"]],
        includes={"users": [tweepy.User(u) for u in page2["includes"]["users"]],
                  "tweets": [tweepy.Tweet(t) for t in page2["includes"]["tweets"]]},
        errors=[], meta=page["meta"],
    )
    expected = x_convert.page_to_messages(json.loads(X.read_text(encoding="utf-8").splitlines()[0]))
    got = x_convert.page_to_messages(response)
    assert [(m.key, m.text, m.date, m.edit_date, m.extra) for m in got] == [
        (m.key, m.text, m.date, m.edit_date, m.extra) for m in expected]


def test_x_tweet_parsing_does_not_alter_the_raw_record() -> None:
    line = X.read_text(encoding="utf-8").splitlines()[0]
    page = json.loads(line)
    msgs = x_convert.page_to_messages(page)
    assert page == json.loads(line)  # tweepy rewrites edit_controls in place: we parse a copy
    edited = next(m for m in msgs if m.extra.get("version_id"))
    assert edited.raw["edit_controls"]["editable_until"] == "2024-01-03T17:02:11.000Z"


def test_x_missing_created_at_uses_the_snowflake_time() -> None:
    (m,) = parse_jsonl_record({"id": "1742552774333198337", "text": "t", "author_id": "5", "edit_history_tweet_ids": ["1742552774333198337"]})
    assert m.date == datetime(2024, 1, 3, 14, 25, 31, tzinfo=UTC)
    assert m.extra["date_from_id"] is True and m.url == "https://x.com/i/status/1742552774333198337"


def test_snowflake_time_has_one_home() -> None:
    """The live X source and the page walker read a post id's time with one function (the
    source kept a copy of its own, in milliseconds, with no range check)."""
    from monitor.sources.x import source as x_source

    root = SAMPLES.parent
    homes = [p.relative_to(root).as_posix() for p in (root / "monitor").rglob("*.py")
             if "def snowflake_time(" in p.read_text(encoding="utf-8")]
    assert homes == ["monitor/sources/x/convert.py"]
    assert x_source.snowflake_time is x_convert.snowflake_time
    assert x_source.snowflake_time(1742552774333198337) == datetime(2024, 1, 3, 14, 25, 31, tzinfo=UTC)
    with pytest.raises(MessageError, match="not an X post id"):
        x_source.snowflake_time(1 << 80)


def test_x_lone_surrogates_are_replaced_in_text_and_kept_in_raw(tmp_path: Path, archive: Archive) -> None:
    # X may cut a post in the middle of an emoji: a lone UTF-16 surrogate escape.
    line = '{"id":"1742552774333198338","text":"cut \\ud83c","author_id":"9","created_at":"2024-01-03T14:25:31.000Z"}\n'
    p = tmp_path / "s.jsonl"
    p.write_text(line, encoding="ascii")
    (m,) = read(p)[0]
    assert m.text == "cut \ufffd"
    assert json.loads(m.raw_json())["text"] == "cut \ud83c"
    report = import_file(archive, p)
    assert report.result.new == 1
    assert archive.get_message("x", "9", "1742552774333198338")["text"] == "cut \ufffd"


# --- canonical JSONL and parse_jsonl_record ---------------------------------------------------
def test_canonical_round_trip_is_exact(tmp_path: Path) -> None:
    originals = read(TG)[0] + read(TG_ACCOUNT)[0] + read(X)[0]
    originals.append(Message("telegram", "42", "7", datetime(2024, 1, 5, tzinfo=UTC), "geo", raw={"lat": 35.6892, "n": [1, 2.5]},
                             extra={"views": 1200, "ratio": 0.25}, media=(Media("geo"),), grouped_id="13"))
    originals += parse_jsonl_record({"id": "1742552774333198337", "text": "no date", "author_id": "5"})
    p = tmp_path / "export.jsonl"
    p.write_text("".join(canonical_line(m) for m in originals), encoding="utf-8")
    assert detect_format(p) == "canonical"
    back, stats = read(p)
    assert stats.format == "canonical"
    assert back == originals
    assert [m.to_dict() for m in back] == [json.loads(canonical_json(m.to_dict())) for m in originals]


def test_parse_jsonl_record_kinds() -> None:
    lines = X.read_text(encoding="utf-8").splitlines()
    assert len(parse_jsonl_record(json.loads(lines[0]))) == 6  # page
    assert len(parse_jsonl_record(json.loads(lines[2]))) == 1  # flattened tweet
    assert parse_jsonl_record(json.loads(lines[-1])) == []  # empty page
    msg = read(TG)[0][0]
    assert parse_jsonl_record(json.loads(canonical_line(msg))) == [msg]
    with pytest.raises(MessageError, match="not a tweet, X API page or canonical message"):
        parse_jsonl_record({"hello": "world"})
    with pytest.raises(MessageError, match="missing required field 'author_id'"):
        parse_jsonl_record({"id": "1", "text": "t", "edit_history_tweet_ids": ["1"]})
    with pytest.raises(MessageError, match="unsupported schema"):
        parse_jsonl_record({"schema": "claimwatch.message/9", "platform": "x"})
    with pytest.raises(MessageError, match="read as 'canonical'"):
        parse_jsonl_record(json.loads(lines[0]), "canonical")
    errors: list[str] = []
    page = {"data": [{"id": "1", "text": "no author"}, json.loads(lines[2])], "includes": {}}
    assert len(parse_jsonl_record(page, errors=errors)) == 1
    assert errors == ["data[0] (tweet 1): missing required field 'author_id'"]


# --- detection ---------------------------------------------------------------------------
def test_detect_format(tmp_path: Path) -> None:
    assert detect_format(TG) == "telegram"
    assert detect_format(TG_ACCOUNT) == "telegram"
    assert detect_format(X) == "x"
    pretty_page = tmp_path / "page.json"
    pretty_page.write_text(json.dumps(json.loads(X.read_text().splitlines()[1]), indent=2), encoding="utf-8")
    assert detect_format(pretty_page) == "x"
    assert len(read(pretty_page)[0]) == 3  # one pretty-printed response is read whole
    flat = tmp_path / "flat.jsonl"
    flat.write_text("\n" + X.read_text().splitlines()[3] + "\n", encoding="utf-8")
    assert detect_format(flat) == "x"
    broken_first = tmp_path / "broken.jsonl"  # a broken first line: the next lines decide
    broken_first.write_text('{"id": "5", "text": "cut\n' + X.read_text().splitlines()[3] + "\n", encoding="utf-8")
    assert detect_format(broken_first) == "x"
    msgs, stats = read(broken_first, skip_bad=True)
    assert len(msgs) == 1 and stats.bad_examples[0].endswith(":1: invalid JSON: Unterminated string starting at (column 21)")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file"),
        (b"   \n\n", "empty file"),
        (b"[1, 2, 3]", "unknown format: a JSON array"),
        (b"id,text\n1,hello\n", "unknown format: text starting 'id,text"),
        (b'{"foo": 1, "bar": 2}\n', "unknown format: a record with keys foo, bar"),
        (b'{\n "foo": {"a": 1},\n "bar": 2\n}\n', "unknown format: a JSON object without Telegram, X or canonical keys"),
    ],
)
def test_unknown_formats_name_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    p = tmp_path / "mystery.json"
    p.write_bytes(content)
    with pytest.raises(InputError) as exc:
        detect_format(p)
    assert str(exc.value).startswith(f"{p}: ") and message in str(exc.value)
    with pytest.raises(InputError, match="mystery.json"):
        read(p)


def test_format_override(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"tweets.jsonl: not a Telegram export"):
        read(X, fmt="telegram")
    with pytest.raises(InputError, match=r"result.json: not a tweet, X API page or canonical message \(keys: name, type, id, messages\)"):
        read(TG, fmt="x")
    with pytest.raises(InputError, match=r"tweets.jsonl:1: .*read as 'canonical'"):
        read(X, fmt="canonical")
    with pytest.raises(InputError, match="unknown format 'csv'"):
        read(X, fmt="csv")


# --- bad input ---------------------------------------------------------------------------
def broken_export(tmp_path: Path) -> tuple[Path, bytes]:
    p = write_export(tmp_path / "result.json", [tg_message(i, f"message {i}") for i in range(1, 6)])
    return p, p.read_bytes()


def test_telegram_malformed_json_names_byte_line_and_message(tmp_path: Path) -> None:
    p, data = broken_export(tmp_path)
    pos = data.index(b'"message 3"') + len(b'"message 3"')
    p.write_bytes(data[:pos] + b",," + data[pos:])  # a stray comma after message 3's text
    line = data[:pos].count(b"\n") + 1
    col = pos - data.rfind(b"\n", 0, pos) + 1  # 1-based column of the second comma
    with pytest.raises(InputError) as exc:
        read(p)
    assert str(exc.value) == (
        f"{p}: invalid JSON at byte offset {pos + 1} (line {line}, column {col}), in messages[2] (after message id 2):"
        " invalid object key (must be a string)"
    )


def test_telegram_truncated_file(tmp_path: Path) -> None:
    p, data = broken_export(tmp_path)
    cut = data.index(b'"message 4"')
    p.write_bytes(data[:cut])
    for skip_bad in (False, True):  # a structural error is never skippable
        with pytest.raises(InputError) as exc:
            read(p, skip_bad=skip_bad)
        assert str(exc.value) == f"{p}: truncated JSON: the file ends at byte {cut}, in messages[3] (after message id 3)"


def test_telegram_invalid_utf8(tmp_path: Path) -> None:
    p, data = broken_export(tmp_path)
    pos = data.index(b"message 2") + len(b"message")
    p.write_bytes(data[:pos] + b"\xff" + data[pos:])
    with pytest.raises(InputError) as exc:
        read(p)
    line = data[:pos].count(b"\n") + 1
    assert str(exc.value).startswith(f"{p}: invalid UTF-8 at byte offset {pos} (line {line}, ")
    assert "messages[1]" in str(exc.value)


@pytest.mark.parametrize(
    "drop, reason",
    [("date_unixtime", "missing required field 'date_unixtime'"), ("id", "missing required field 'id'")],
)
def test_telegram_message_missing_required_field(tmp_path: Path, drop: str, reason: str) -> None:
    msgs = [tg_message(i, f"m{i}") for i in range(1, 5)]
    del msgs[2][drop]
    p = write_export(tmp_path / "result.json", msgs)
    with pytest.raises(InputError) as exc:
        read(p)
    where = "messages[2] (id 3)" if drop != "id" else "messages[2]"
    assert str(exc.value) == f"{p}: {where}: {reason}"
    kept, stats = read(p, skip_bad=True)
    assert [m.message_id for m in kept] == ["1", "2", "4"]
    assert stats.bad == 1 and stats.bad_examples == [f"{p}: {where}: {reason}"]


def test_telegram_bad_field_types_are_bad_records(tmp_path: Path) -> None:
    msgs = [tg_message(1, "ok"), tg_message(2, {"not": "text"}), tg_message(3, "ok", unix="yesterday"), "junk"]
    p = write_export(tmp_path / "result.json", msgs)
    kept, stats = read(p, skip_bad=True)
    assert [m.message_id for m in kept] == ["1"]
    assert stats.bad_examples == [
        f"{p}: messages[1] (id 2): field 'text' must be a string or a list, not dict",
        f"{p}: messages[2] (id 3): field 'date_unixtime' is not a unix time: 'yesterday'",
        f"{p}: messages[3]: message is a JSON str, not an object",
    ]


def test_missing_path_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.json: no such file$"):
        read(tmp_path / "nope.json")
    with pytest.raises(InputError, match="is a directory"):
        read(tmp_path)


def test_jsonl_errors_name_file_and_line(tmp_path: Path) -> None:
    good = X.read_text(encoding="utf-8").splitlines()[2]
    p = tmp_path / "t.jsonl"
    p.write_bytes(
        (good + "\n").encode()
        + b'{"id": "5", "text": "broken",\n'
        + '{"id":"7","text":"caf\u00e9","author_id":"3"}\n'.encode().replace("\u00e9".encode(), b"\xe9")
        + b'{"id": "8", "text": "no author", "edit_history_tweet_ids": ["8"]}\n'
        + b'{"schema": "claimwatch.message/1", "platform": "x", "channel_id": "1", "message_id": "2"}\n'
        + (good + "\n").encode()
        + b'{"id": "9", "text": "trunc'
    )
    with pytest.raises(InputError) as exc:
        read(p)
    assert str(exc.value) == f"{p}:2: invalid JSON: Expecting property name enclosed in double quotes (column 30)"
    msgs, stats = read(p, skip_bad=True)
    assert len(msgs) == 2 and stats.bad == 5
    assert stats.bad_examples == [
        f"{p}:2: invalid JSON: Expecting property name enclosed in double quotes (column 30)",
        f"{p}:3: invalid UTF-8 (byte 22 of the line)",
        f"{p}:4: missing required field 'author_id'",
        f"{p}:5: a canonical record in a file read as 'x'",
        f"{p}:7: truncated record at end of file: Unterminated string starting at (column 21)",
    ]


def test_canonical_missing_field_names_line_and_field(tmp_path: Path) -> None:
    good = canonical_line(read(TG)[0][0])
    bad = json.loads(good)
    del bad["date"]
    p = tmp_path / "c.jsonl"
    p.write_text(good + json.dumps(bad) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"c\.jsonl:2: missing required field 'date'$"):
        read(p)


def test_wholly_unparseable_jsonl_fails_even_with_skip_bad(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    p.write_text('{"data": [\n{"oops"\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"t\.jsonl: no readable record \(2 bad lines; first: .*t\.jsonl:1: invalid JSON"):
        read(p, fmt="x", skip_bad=True)


def test_progress_reports_bytes_up_to_the_file_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for path in (TG, TG_ACCOUNT, X):
        seen: list[int] = []
        monkeypatch.setattr(telegram_export, "CHUNK", 1024)
        read(path, progress=seen.append)
        assert seen and seen == sorted(seen) and seen[-1] == path.stat().st_size


# --- into the archive ----------------------------------------------------------------------
def fts_ok(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES('integrity-check', 1)")


def test_failed_file_leaves_nothing_half_imported(tmp_path: Path, archive: Archive) -> None:
    # 600 messages: big enough for the archive's deferred full-text indexing to kick in.
    msgs = [tg_message(i, f"statement number {i}") for i in range(1, 601)]
    del msgs[550]["date_unixtime"]
    p = write_export(tmp_path / "result.json", msgs)
    triggers = archive.conn.execute("SELECT name, sql FROM sqlite_master WHERE type='trigger' ORDER BY name").fetchall()
    with pytest.raises(InputError, match=r"messages\[550\] \(id 551\): missing required field 'date_unixtime'"):
        import_file(archive, p)
    c = archive.conn
    assert [c.execute(f"select count(*) from {t}").fetchone()[0] for t in ("messages", "versions", "chain")] == [0, 0, 0]
    assert c.execute("SELECT name, sql FROM sqlite_master WHERE type='trigger' ORDER BY name").fetchall() == triggers
    report = import_file(archive, p, skip_bad=True)
    assert (report.result.new, report.bad) == (599, 1)
    fts_ok(c)
    hits = c.execute("select rowid from messages_fts where messages_fts match ?", ('"599"',)).fetchall()
    assert len(hits) == 1


def test_big_import_indexes_every_row_and_keeps_the_triggers(tmp_path: Path, archive: Archive) -> None:
    c = archive.conn
    triggers = c.execute("SELECT name, sql FROM sqlite_master WHERE type='trigger' ORDER BY name").fetchall()
    first = write_export(tmp_path / "a.json", [tg_message(i, f"alpha{i}") for i in range(1, 11)])
    import_file(archive, first)  # rows indexed by the trigger before a big batch
    lines = [canonical_line(Message("telegram", "555", str(i), datetime(2024, 1, 4, tzinfo=UTC), f"beta{i}", raw={"i": i}))
             for i in range(1, 700)]
    # the same keys again with new text inside the same big batch (deferred rows updated)
    lines += [canonical_line(Message("telegram", "555", str(i), datetime(2024, 1, 4, tzinfo=UTC), f"gamma{i}",
                                     edit_date=datetime(2024, 1, 5, tzinfo=UTC), raw={"i": i, "e": 1})) for i in (3, 400, 650)]
    # a channel new to the archive (inserted without lookups in a big batch), with repeats
    fresh = [canonical_line(Message("x", "777", str(i), datetime(2024, 1, 4, tzinfo=UTC), f"epsilon{i}", raw={"f": i}))
             for i in range(1, 301)]
    fresh.insert(150, canonical_line(Message("x", "777", "20", datetime(2024, 1, 4, tzinfo=UTC), "epsilon20", raw={"f": 20})))
    fresh.append(canonical_line(Message("x", "777", "280", datetime(2024, 1, 4, tzinfo=UTC), "zeta280",
                                        edit_date=datetime(2024, 1, 5, tzinfo=UTC), raw={"f": 280, "e": 1})))
    big = tmp_path / "big.jsonl"
    big.write_text("".join(lines + fresh), encoding="utf-8")
    report = import_file(archive, big)
    assert (report.result.new, report.result.edited, report.result.unchanged) == (989, 14, 1)
    assert c.execute("select count(*) from messages where channel_id='777'").fetchone()[0] == 300
    fts_ok(c)
    assert c.execute("SELECT name, sql FROM sqlite_master WHERE type='trigger' ORDER BY name").fetchall() == triggers
    assert c.execute("SELECT v FROM messages_fts_config WHERE k='hashsize'").fetchone() in (None, (1048576,))

    def search(term: str) -> list[str]:
        return [r[0] for r in c.execute(
            "select m.message_id from messages_fts f join messages m on m.id=f.rowid where messages_fts match ?", (f'"{term}"',))]

    assert search("beta500") == ["500"] and search("gamma400") == ["400"] and search("beta400") == []
    assert search("gamma3") == ["3"] and search("alpha3") == [] and search("beta10") == ["10"]
    assert search("epsilon20") == ["20"] and search("zeta280") == ["280"] and search("epsilon280") == []
    # after the big batch the trigger indexes single rows again
    archive.store([(Message("telegram", "555", "9999", datetime(2024, 1, 4, tzinfo=UTC), "delta"), [])])
    assert search("delta") == ["9999"]
    fts_ok(c)


# -- issue 09 cases 4-5: hostile nesting and wrong types --------------------------------
def _export(tmp_path, body: str, name: str = "bad.json"):
    p = tmp_path / name
    p.write_text(body, encoding="utf-8")
    return p


def _import_error(p) -> str:
    from monitor.sources.files import InputError, read_messages

    with pytest.raises((InputError, MessageError)) as exc:
        list(read_messages(p))
    assert "\n" not in str(exc.value)
    return str(exc.value)


def test_deeply_nested_messages_are_refused_with_the_byte(tmp_path) -> None:
    head = '{"name":"c","type":"public_channel","id":5,"messages":'
    p = _export(tmp_path, head + "[" * 100_000 + "]" * 100_000 + "}")
    assert _import_error(p) == f"{p}: JSON nested deeper than 100 levels at byte {len(head) + 99}"  # the 100th [ is level 101


def test_a_deep_first_jsonl_line_longer_than_the_peek_is_refused(tmp_path) -> None:
    """Detection streams a first line longer than its 64 kB peek with ijson: its prefixes grow
    with the depth, so a 200,000-level post never finished detecting (quadratic). Run in a
    subprocess so that a regression fails (timeout) instead of hanging the suite."""
    import subprocess
    import sys

    post = '{"id":"1","text":"claimed responsibility","author_id":"2","x":' + "[" * 200_000 + "]" * 200_000 + "}"
    p = _export(tmp_path, post + "\n", "deep.jsonl")
    code = ("import sys\nfrom monitor.sources.files import InputError, read_messages\n"
            "try:\n    list(read_messages(sys.argv[1]))\nexcept InputError as exc:\n    print(exc)\n")
    res = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"{p}:1: JSON nested deeper than 100 levels", res.stdout


def test_a_message_with_a_1000_level_field_is_refused(tmp_path) -> None:
    msg = '{"id":1,"type":"message","date_unixtime":"1700000000","text":"hi","x":' + "[" * 1000 + "]" * 1000 + "}"
    p = _export(tmp_path, '{"name":"c","type":"public_channel","id":5,"messages":[' + msg + "]}")
    assert "JSON nested deeper than 100 levels at byte" in _import_error(p)
    # the general path (header after the messages) and a deep JSONL line too
    p2 = _export(tmp_path, '{"messages":[' + msg + '],"name":"c","type":"public_channel","id":5}', "late.json")
    assert "JSON nested deeper than 100 levels" in _import_error(p2)
    good = Message("telegram", "5", "1", datetime(2024, 1, 1, tzinfo=timezone.utc), "hi", raw={"x": "DEEP"})
    line = json.dumps(good.to_dict()).replace('"DEEP"', "[" * 5000 + "]" * 5000) + "\n"
    p3 = _export(tmp_path, json.dumps(good.to_dict()) + "\n" + line, "deep.jsonl")
    assert "JSON nested deeper than 100 levels" in _import_error(p3)


@pytest.mark.parametrize(
    ("chat_id", "msg_id", "expected"),
    [
        ("null", "1", "id: expected a chat id (an integer), found null"),
        ('"abc"', "1", "id: expected a chat id (an integer), found 'abc'"),
        ("5", '"abc"', "messages[0] (id abc): id: expected an integer, found 'abc'"),
        ("5", "1.5", "messages[0] (id 1.5): id: expected an integer, found 1.5"),
        ("5", "true", "id: expected an integer, found true"),
    ],
)
def test_wrong_types_are_one_line_errors_with_the_position(tmp_path, chat_id: str, msg_id: str, expected: str) -> None:
    body = (f'{{"name":"c","type":"public_channel","id":{chat_id},"messages":[{{"id":{msg_id},"type":"message",'
            '"date_unixtime":"1700000000","text":"hi"}]}')
    p = _export(tmp_path, body)
    assert expected in _import_error(p)


def test_messages_not_a_list_is_an_error(tmp_path) -> None:
    p = _export(tmp_path, '{"name":"c","type":"public_channel","id":5,"messages":{"a":1}}')
    assert _import_error(p) == f"{p}: messages: expected a list, found an object"
