"""Streaming reader for Telegram Desktop "Export chat history" JSON.

Reads a single-chat ``result.json`` (``name``, ``type``, ``id``, ``messages[]``) or a
full-account export (``chats.list[]``, ``left_chats.list[]``) with bounded memory, using
ijson's C backend:

* single chat whose header (``name``/``type``/``id``) precedes ``messages`` (what Telegram
  Desktop writes): a quick scan of the header, then ``ijson.items(f, "messages.item")``;
* anything else (full-account exports, unusual key order): ijson's builder assembles the
  document chunk by chunk, and after every chunk the messages that are complete are
  converted, yielded and removed from the partial tree.

Errors name the file, the JSON position (``chats.list[2].messages[17]``) and, for broken
JSON, the byte offset with line and column.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import IO, Any, Iterator, Mapping

import ijson

from ..depth import MAX_JSON_DEPTH, DepthGuard

from ...model import Forward, Media, Message, MessageError, make_url
from .ids import peer_bare_id, peer_kind
from ..files.errors import ImportStats, InputError, ProgressFn

CHUNK = 256 * 1024
_UTC = timezone.utc
_fromts = datetime.fromtimestamp
_LINK_TYPES = {"public_channel", "private_channel", "public_supergroup", "private_supergroup"}
_FILE_MEDIA_TYPES = {
    "video_file": "video",
    "voice_message": "voice",
    "audio_file": "audio",
    "sticker": "sticker",
    "animation": "animation",
    "video_message": "video_note",
}
_NOT_INCLUDED = "(File "  # "(File not included. Change data exporting settings to download.)"


@lru_cache(maxsize=1)
def ijson_backend() -> Any:
    """ijson's C (yajl2_c) backend when available, else its default backend."""
    try:
        return ijson.get_backend("yajl2_c")
    except ImportError:  # pragma: no cover - depends on the installed wheel
        return ijson


class _RootCapture:
    """``map_type`` for ijson's builder that remembers the first (root) object it creates."""

    __slots__ = ("root",)

    def __init__(self) -> None:
        self.root: dict | None = None

    def __call__(self) -> dict:
        d: dict = {}
        if self.root is None:
            self.root = d
        return d


@dataclass
class _Chat:
    """Per-chat conversion context (computed once per chat, used for every message)."""

    where: str  # JSON path of the chat's messages array, e.g. "chats.list[2].messages"
    name: str | None = None
    channel_id: str | None = None
    channel: str | None = None
    url_prefix: str | None = None
    is_channel: bool = False
    index: int = 0  # messages[] index of the next message
    last_id: Any = None

    def setup(self, chat: Mapping[str, Any], username: str | None, path: Any = "") -> None:
        self.name = chat.get("name") if isinstance(chat.get("name"), str) else None
        self.channel_id = _peer_id(chat["id"])
        if self.channel_id is None:
            field = self.where.rsplit(".", 1)[0] + ".id" if "." in self.where else "id"
            raise InputError(f"{path}: {field}: expected a chat id (an integer), found {_json_repr(chat['id'])}")
        kind = chat.get("type")
        self.is_channel = kind in ("public_channel", "private_channel")
        self.channel = username.lstrip("@") if username else self.name
        if username or kind in _LINK_TYPES:
            # make_url puts the message id last: compute the prefix once per chat.
            self.url_prefix = make_url("telegram", username, self.channel_id, "")


def _text(value: Any) -> str:
    """Telegram export text: a string, or a list of strings and ``{type, text}`` entities."""
    if type(value) is str:
        return value
    if value is None:
        return ""
    if type(value) is not list:
        raise MessageError(f"field 'text' must be a string or a list, not {type(value).__name__}")
    parts = []
    for part in value:
        if type(part) is str:
            parts.append(part)
        elif isinstance(part, dict):
            t = part.get("text", "")
            if type(t) is not str:
                raise MessageError("text entity with a non-string 'text'")
            parts.append(t)
        else:
            raise MessageError(f"text part of type {type(part).__name__}")
    return "".join(parts)


def _unixtime(value: Any, name: str) -> datetime:
    try:
        return _fromts(int(value), _UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise MessageError(f"field '{name}' is not a unix time: {value!r}") from None


def _media(m: dict) -> tuple[Media, ...]:
    out = []
    photo = m.get("photo")
    if photo is not None:
        out.append(
            Media(
                type="photo",
                file_name=None if photo.startswith(_NOT_INCLUDED) else photo.rsplit("/", 1)[-1],
                size=m.get("photo_file_size"),
            )
        )
    file = m.get("file")
    if file is not None:
        name = m.get("file_name")
        if name is None and not file.startswith(_NOT_INCLUDED):
            name = file.rsplit("/", 1)[-1]
        mtype = m.get("media_type")
        out.append(
            Media(
                type=_FILE_MEDIA_TYPES.get(mtype, mtype or "document"),
                file_name=name,
                size=m.get("file_size"),
                mime=m.get("mime_type"),
            )
        )
    if "poll" in m:
        out.append(Media(type="poll"))
    if "location_information" in m:
        out.append(Media(type="geo"))
    if "contact_information" in m:
        out.append(Media(type="contact"))
    return tuple(out)


def _extra(m: dict, chat: _Chat) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    photo_or_file = m.get("photo") or m.get("file")
    if photo_or_file:
        extra["export_path"] = photo_or_file
        for key in ("width", "height", "duration_seconds"):
            if key in m:
                extra[key] = m[key]
    if "via_bot" in m:
        extra["via_bot"] = m["via_bot"]
    if "reply_to_peer_id" in m:
        extra["reply_to_peer_id"] = m["reply_to_peer_id"]
    if not chat.is_channel and "from_id" in m:
        extra["from_id"] = m["from_id"]
    return extra


def _peer_id(value: Any) -> str | None:
    """A chat or message id as Telegram exports it: an integer (or its digits); else None."""
    if type(value) is int:
        return str(value)
    if isinstance(value, str) and value.lstrip("-").isdigit() and len(value) < 24:
        return str(int(value))
    return None  # null, 1.5 (ijson: Decimal), "abc", true, lists, objects


def _json_repr(value: Any) -> str:
    if value is None:
        text = "null"
    elif isinstance(value, str):
        text = f"'{value}'"
    elif isinstance(value, (bool, dict, list)):
        text = {True: "true", False: "false"}.get(value, type(value).__name__) if not isinstance(value, (dict, list)) else (
            "an object" if isinstance(value, dict) else "a list")
    else:
        text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def convert_message(m: Any, chat: _Chat) -> Message | None:
    """One export message -> Message; None for a service message. Raises MessageError."""
    if type(m) is not dict:
        raise MessageError(f"message is a JSON {type(m).__name__}, not an object")
    if m.get("type") == "service":
        return None
    mid = m.get("id")
    if mid is None or mid == "":
        raise MessageError("missing required field 'id'")
    if _peer_id(mid) is None:
        raise MessageError(f"id: expected an integer, found {_json_repr(mid)}")
    du = m.get("date_unixtime")
    if du is None or du == "":
        raise MessageError("missing required field 'date_unixtime'")
    mid = _peer_id(mid)
    eu = m.get("edited_unixtime")
    fwd = m.get("forwarded_from")
    fwd_id = m.get("forwarded_from_id")
    reply = m.get("reply_to_message_id")
    author = m.get("author") or m.get("signature")
    if author is None and not chat.is_channel:
        author = m.get("from")
    has_media = "photo" in m or "file" in m or "poll" in m or "location_information" in m or "contact_information" in m
    extra = _extra(m, chat) if (has_media or "via_bot" in m or "reply_to_peer_id" in m or not chat.is_channel) else {}
    kind = peer_kind(str(fwd_id)) if fwd_id is not None else None
    if kind is not None:  # as the live collector records it
        extra = {**extra, "forward_from_type": kind}
    return Message(
        platform="telegram",
        channel_id=chat.channel_id,  # type: ignore[arg-type]
        message_id=mid,
        date=_unixtime(du, "date_unixtime"),
        text=_text(m.get("text")),
        channel=chat.channel,
        channel_title=chat.name,
        edit_date=_unixtime(eu, "edited_unixtime") if eu else None,
        author=author,
        url=chat.url_prefix + mid if chat.url_prefix is not None else None,
        reply_to=str(reply) if reply is not None else None,
        forwarded_from=Forward(name=fwd, id=peer_bare_id(fwd_id)) if fwd is not None or fwd_id is not None else None,
        media=_media(m) if has_media else (),
        extra=extra,
        raw=m,
    )


def _too_deep_message(path: Any, offset: int) -> str:
    return f"{path}: JSON nested deeper than {MAX_JSON_DEPTH} levels at byte {offset}"


class _CountingFile:
    """File wrapper that ijson reads through: counts bytes and lines, reports progress."""

    def __init__(self, f: IO[bytes], offset: int, progress: ProgressFn | None, path: Any = None) -> None:
        self.f = f
        self.path = path
        self.guard = DepthGuard(offset=offset)
        self.offset = offset  # file position after the last chunk
        self.newlines = 0  # newlines before the last chunk
        self.last = b""
        self.progress = progress

    @property
    def chunk_start(self) -> int:
        return self.offset - len(self.last)

    def read(self, n: int = -1) -> bytes:
        chunk = self.f.read(n)
        if n == 0:
            return chunk
        self.newlines += self.last.count(b"\n")
        self.last = chunk
        deep = self.guard.feed(chunk)
        if deep is not None:
            raise InputError(_too_deep_message(self.path, deep))
        self.offset += len(chunk)
        if self.progress is not None and chunk:
            self.progress(self.offset)
        return chunk


def _scan_header(f: IO[bytes]) -> tuple[str | None, dict[str, Any]]:
    """("single" | "account" | None, top-level scalars seen before the first list)."""
    header: dict[str, Any] = {}
    messages_key = False
    try:
        for prefix, event, value in ijson_backend().parse(f, buf_size=16 * 1024):
            if messages_key:
                header["messages"] = event  # start_array, or what is wrongly there
                return "single", header
            if prefix == "" and event == "map_key":
                if value == "messages":
                    messages_key = True
                    continue
                if value in ("chats", "left_chats"):
                    return "account", header
            elif event in ("string", "number", "integer", "boolean", "null") and prefix in ("name", "type", "id"):
                header[prefix] = value
            elif prefix == "" and event == "end_map":
                break
    except ijson.JSONError:
        pass
    return None, header


class _Reader:
    def __init__(
        self,
        f: IO[bytes],
        path: str | Path,
        stats: ImportStats,
        skip_bad: bool,
        progress: ProgressFn | None,
        channel_username: str | Mapping[str, str] | None,
        offset: int,
    ) -> None:
        self.f = f
        self.path = path
        self.stats = stats
        self.skip_bad = skip_bad
        self.progress = progress
        self.channel_username = channel_username
        self.capture = _RootCapture()
        self.offset = offset  # bytes fed to the parser so far (file position)
        self.newlines = 0  # newlines in those bytes (for line:column in errors)
        self.kind: str | None = None  # "single" | "account"
        self.chats: dict[int, _Chat] = {}  # id(chat dict) -> context, for chats in progress
        self.section_counts: dict[str, int] = {}
        self.last_chat: _Chat | None = None

    # -- single-chat fast path --------------------------------------------------------
    def run(self) -> Iterator[Message]:
        kind, header = _scan_header(self.f)
        self.f.seek(self.offset)
        if kind == "single" and header.get("messages") not in (None, "start_array"):
            found = {"start_map": "an object", "null": "null"}.get(header["messages"], f"a {header['messages']}")
            raise InputError(f"{self.path}: messages: expected a list, found {found}")
        if kind == "single" and "id" in header:
            return self._run_single(header)
        return self._run_general()

    def _run_single(self, header: dict[str, Any]) -> Iterator[Message]:
        """Telegram Desktop's usual layout: the header, then ``messages``; ijson's items()."""
        self.kind = "single"
        username = self.channel_username if isinstance(self.channel_username, str) else None
        ctx = _Chat("messages")
        ctx.setup(header, username, self.path)
        self.last_chat = ctx
        cf = _CountingFile(self.f, self.offset, self.progress, self.path)
        items = ijson_backend().items(cf, "messages.item", buf_size=CHUNK)
        stats, skip_bad, path = self.stats, self.skip_bad, self.path
        index = 0
        while True:
            try:
                m = next(items)
            except StopIteration:
                break
            except ijson.JSONError as exc:
                self.offset, self.newlines = cf.chunk_start, cf.newlines
                raise self._json_error(exc, cf.last) from None
            try:
                msg = convert_message(m, ctx)
            except (MessageError, TypeError, ValueError, AttributeError, KeyError) as exc:
                mid = m.get("id") if isinstance(m, dict) else None
                pos = f"messages[{index}]" + (f" (id {mid})" if mid is not None else "")
                stats.add_bad(f"{path}: {pos}", _reason(exc), skip_bad=skip_bad)
                msg = None
            else:
                if msg is None:
                    stats.skipped_service += 1
            index += 1
            ctx.index = index
            ctx.last_id = m.get("id") if isinstance(m, dict) else None
            if msg is not None:
                stats.read += 1
                yield msg
        stats.bytes_read = cf.offset

    # -- general path ------------------------------------------------------------------
    def _run_general(self) -> Iterator[Message]:
        backend = ijson_backend()
        sink = ijson.sendable_list()
        coro = backend.items_coro(sink, "", map_type=self.capture)
        f = self.f
        first = True
        guard = DepthGuard(offset=self.offset)
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            deep = guard.feed(chunk)
            if deep is not None:
                raise InputError(_too_deep_message(self.path, deep))
            if first:
                head = chunk.lstrip()
                if head and not head.startswith(b"{"):
                    raise InputError(f"{self.path}: not a Telegram export: the file does not start with a JSON object")
                first = False
            try:
                coro.send(chunk)
            except ijson.JSONError as exc:
                raise self._json_error(exc, chunk) from None
            self.offset += len(chunk)
            self.newlines += chunk.count(b"\n")
            del sink[:]
            yield from self._drain(final=False)
            if self.progress is not None:
                self.progress(self.offset)
        if first:
            raise InputError(f"{self.path}: empty file (nothing to import)")
        try:
            coro.close()
        except ijson.JSONError as exc:
            raise self._json_error(exc, b"", eof=True) from None
        yield from self._drain(final=True)
        self.stats.bytes_read = self.offset
        root = self.capture.root
        if root is None or self.kind is None:
            keys = ", ".join(list(root or {})[:6]) or "none"
            raise InputError(
                f"{self.path}: not a Telegram export: no 'messages' or 'chats' (top-level keys: {keys})"
            )

    # -- converting what is complete ----------------------------------------------
    def _drain(self, final: bool) -> Iterator[Message]:
        root = self.capture.root
        if root is None or not root:
            return
        if self.kind is None:
            if "messages" in root:
                self.kind = "single"
            elif "chats" in root or "left_chats" in root:
                self.kind = "account"
            else:
                return
        if self.kind == "single":
            username = self.channel_username if isinstance(self.channel_username, str) else None
            yield from self._drain_chat(root, "messages", final, username)
            return
        last_key = next(reversed(root))
        for section in ("chats", "left_chats"):
            sec = root.get(section)
            if not isinstance(sec, dict):
                continue
            chats = sec.get("list")
            if not isinstance(chats, list) or not chats:
                continue
            sec_done = final or last_key != section or next(reversed(sec)) != "list"
            n = len(chats)
            done = 0
            for i, chat in enumerate(chats):
                chat_done = sec_done or i < n - 1
                if not isinstance(chat, dict):
                    raise InputError(f"{self.path}: {section}.list[{self.section_counts.get(section, 0) + i}] is not an object")
                base = self.section_counts.get(section, 0) + i
                username = None
                if isinstance(self.channel_username, Mapping) and chat.get("id") is not None:
                    username = self.channel_username.get(str(chat.get("id")))
                yield from self._drain_chat(chat, f"{section}.list[{base}].messages", chat_done, username)
                if chat_done:
                    done += 1
                    self.chats.pop(id(chat), None)
            if done:
                del chats[:done]
                self.section_counts[section] = self.section_counts.get(section, 0) + done
        # Free finished parts of the export we do not import (contacts, sessions, ...).
        for key in list(root):
            if key not in ("chats", "left_chats") and key != last_key and root[key] is not None:
                root[key] = None

    def _drain_chat(self, chat: dict, where: str, done: bool, username: str | None) -> Iterator[Message]:
        msgs = chat.get("messages")
        if msgs is None:
            return
        if not isinstance(msgs, list):
            raise InputError(f"{self.path}: {where} is not a list")
        ctx = self.chats.get(id(chat))
        if ctx is None:
            keys = list(chat)
            header_first = "id" in chat and keys.index("id") < keys.index("messages")
            if not (header_first or done):
                return  # the header follows the messages (unusual): wait for the whole chat
            if "id" not in chat:
                chat_where = where.rsplit(".", 1)[0] if "." in where else "the export"
                raise InputError(f"{self.path}: {chat_where}: chat without 'id'")
            ctx = _Chat(where)
            ctx.setup(chat, username, self.path)
            self.chats[id(chat)] = ctx
        self.last_chat = ctx
        complete = done or next(reversed(chat)) != "messages"
        upto = len(msgs) if complete else len(msgs) - 1
        if upto <= 0:
            return
        stats = self.stats
        for i in range(upto):
            m = msgs[i]
            try:
                msg = convert_message(m, ctx)
            except (MessageError, TypeError, ValueError, AttributeError, KeyError) as exc:
                mid = m.get("id") if isinstance(m, dict) else None
                pos = f"{where}[{ctx.index + i}]" + (f" (id {mid})" if mid is not None else "")
                stats.add_bad(f"{self.path}: {pos}", _reason(exc), skip_bad=self.skip_bad)
                continue
            if msg is None:
                stats.skipped_service += 1
                continue
            stats.read += 1
            yield msg
        last = msgs[upto - 1]
        ctx.last_id = last.get("id") if isinstance(last, dict) else None
        ctx.index += upto
        del msgs[:upto]

    # -- errors ---------------------------------------------------------------
    def _json_error(self, exc: Exception, chunk: bytes, eof: bool = False) -> InputError:
        kind, detail, at = _parse_yajl_error(str(exc), chunk)
        pos = self._position()
        if eof or "premature EOF" in detail or isinstance(exc, ijson.IncompleteJSONError) and not chunk:
            return InputError(f"{self.path}: truncated JSON: the file ends at byte {self.offset}{pos}")
        if at is not None:
            at = max(at - 1, 0)  # yajl points just past the offending byte
            if "UTF8" in detail:
                at = _first_invalid_utf8(chunk, at)
            offset = self.offset + at
            line = self.newlines + chunk.count(b"\n", 0, at) + 1
            col = at - chunk.rfind(b"\n", 0, at) if b"\n" in chunk[:at] else self._column_at_chunk_start() + at
            where = f"byte offset {offset} (line {line}, column {col})"
        else:
            where = f"bytes {self.offset}-{self.offset + len(chunk)}"
        if "UTF8" in detail:
            return InputError(f"{self.path}: invalid UTF-8 at {where}{pos}")
        if self.kind is None and self.capture.root is not None:
            return InputError(f"{self.path}: not a Telegram export: invalid JSON at {where}: {detail}")
        return InputError(f"{self.path}: invalid JSON at {where}{pos}: {detail}")

    def _column_at_chunk_start(self) -> int:
        """1-based column of the first byte of the current chunk (re-reads the line's start)."""
        start = self.offset
        back = min(start, 64 * 1024)
        self.f.seek(start - back)
        before = self.f.read(back)
        return back - before.rfind(b"\n")

    def _position(self) -> str:
        """Where in the document the parser was: ", in messages[17] (after id 41)"."""
        ctx = self.last_chat
        if ctx is None:
            return ", before the first message" if self.kind is not None else ""
        return f", in {ctx.where}[{ctx.index}]" + (f" (after message id {ctx.last_id})" if ctx.last_id is not None else "")


def _first_invalid_utf8(chunk: bytes, at: int) -> int:
    """Start of the invalid UTF-8 sequence that ends at ``chunk[at]`` (yajl reports its end)."""
    start = 0
    while start < min(3, len(chunk)) and 0x80 <= chunk[start] <= 0xBF:
        start += 1  # the chunk may begin inside a character
    try:
        chunk[start : at + 1].decode("utf-8")
    except UnicodeDecodeError as exc:
        return start + exc.start
    return at


def _reason(exc: Exception) -> str:
    if isinstance(exc, MessageError):
        return str(exc)
    return f"invalid message: {type(exc).__name__}: {exc}"


_YAJL = re.compile(r"(parse|lexical) error: ([^\n]*)")
_NL = bytes.maketrans(b"\r\n", b"  ")


def _parse_yajl_error(text: str, chunk: bytes) -> tuple[str, str, int | None]:
    """(kind, message, offset in ``chunk`` or None) from yajl's verbose error text.

    yajl prints the 30 bytes around the error on its second line, the error byte at
    column 40; find that context in the chunk to get the exact offset.
    """
    raw: bytes
    if text.startswith(("b'", 'b"')):  # ijson could not decode yajl's message (bad UTF-8)
        try:
            raw = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raw = text.encode("utf-8", "replace")
    else:
        raw = text.encode("utf-8", "surrogateescape")
    lines = raw.split(b"\n")
    m = _YAJL.search(lines[0].decode("utf-8", "replace"))
    kind, detail = (m.group(1), m.group(2).strip()) if m else ("parse", lines[0].decode("utf-8", "replace"))
    if len(lines) < 3 or not chunk:
        return kind, detail, None
    ctx = lines[1]
    before, after = ctx[:40].lstrip(b" "), ctx[40:]
    needle = before + after
    if not needle:
        return kind, detail, None
    hay = chunk.translate(_NL)
    pos = hay.find(needle)
    if pos < 0 or hay.find(needle, pos + 1) >= 0:
        return kind, detail, None
    return kind, detail, pos + len(before)


def read_telegram_export(
    f: IO[bytes],
    path: str | Path,
    *,
    stats: ImportStats,
    skip_bad: bool = False,
    progress: ProgressFn | None = None,
    channel_username: str | Mapping[str, str] | None = None,
    offset: int = 0,
) -> Iterator[Message]:
    """Yield the Messages of a Telegram Desktop export read from ``f`` (binary, positioned at the JSON)."""
    return _Reader(f, path, stats, skip_bad, progress, channel_username, offset).run()
