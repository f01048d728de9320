"""Telegram source benchmark (no network): real Telethon TL messages -> Message conversion,
and a start-up catch-up of N posts through TelegramSource into a real SQLite archive.

The gateway is an in-memory stand-in returning real ``telethon.tl.types.Message`` objects
(text with entities, every fifth post a photo, every seventh a forward). Prints:

* conversion: messages per second of ``message_to_message`` (including ``raw`` = to_dict);
* catch-up: messages per second from the gateway through the source (checkpoint per
  message) and the daemon's Pipeline (no rules) into the archive, until all is committed.

Usage: python bench/telegram_bench.py [--messages 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from telethon.tl import types  # noqa: E402

from monitor.archive import Archive  # noqa: E402
from monitor.config import TelegramConfig  # noqa: E402
from monitor.sources.base import SourceContext  # noqa: E402
from monitor.sources.telegram.convert import ChannelMeta, message_to_message  # noqa: E402
from monitor.sources.telegram.source import TelegramSource  # noqa: E402

CID = 1234500000
T0 = datetime(2024, 3, 22, tzinfo=timezone.utc)
TEXT = "🔥 عاجل: Claimed responsibility for the attack — details at https://example.org/x #breaking"


def make_messages(n: int) -> list[types.Message]:
    photo = types.MessageMediaPhoto(
        photo=types.Photo(id=1, access_hash=1, file_reference=b"\x01" * 16, date=T0,
                          sizes=[types.PhotoSize(type="x", w=1280, h=720, size=150_000)], dc_id=4)
    )
    out = []
    for i in range(1, n + 1):
        out.append(
            types.Message(
                id=i,
                peer_id=types.PeerChannel(CID),
                date=T0 + timedelta(seconds=i),
                message=f"{TEXT} {i}",
                entities=[types.MessageEntityBold(offset=3, length=4), types.MessageEntityUrl(offset=60, length=21)],
                media=photo if i % 5 == 0 else None,
                fwd_from=types.MessageFwdHeader(date=T0, from_id=types.PeerChannel(99), channel_post=i)
                if i % 7 == 0 else None,
                views=1000 + i,
                post=True,
            )
        )
    return out


class Gateway:
    def __init__(self, messages: list[types.Message]) -> None:
        self.messages = messages
        self.entity = types.Channel(id=CID, title="Bench", photo=types.ChatPhotoEmpty(), date=T0,
                                    broadcast=True, username="bench_channel", access_hash=7)

    async def connect(self) -> None: ...
    async def is_authorized(self) -> bool: return True
    async def resolve(self, ref: Any) -> Any: return self.entity
    async def get_messages(self, peer: Any, ids: Any) -> list[Any]: return []
    def add_event_handlers(self, *a: Any) -> None: ...
    async def disconnect(self) -> None: ...

    async def iter_messages(self, peer: Any, *, min_id: int = 0, reverse: bool = False, offset_date: Any = None,
                            limit: Any = None):
        for m in self.messages:
            if m.id > min_id and (offset_date is None or m.date >= offset_date):
                yield m


async def catch_up(messages: list[types.Message]) -> tuple[int, float]:
    from monitor.daemon import Pipeline

    with tempfile.TemporaryDirectory() as tmp:
        archive = Archive.open(Path(tmp) / "bench.db")
        pipeline = Pipeline(archive, lambda: None)  # no rules: collection and storage only
        pipeline.start()
        cfg = TelegramConfig(api_id=1, api_hash="x" * 32, session_string="x", channels=["@bench_channel"], backfill="3650d")
        source = TelegramSource(cfg, Gateway(messages), now=lambda: T0 + timedelta(days=1))
        t = time.perf_counter()
        await source.run(SourceContext(archive=archive, emit=pipeline.emit), once=True)
        await pipeline.close()  # everything committed
        elapsed = time.perf_counter() - t
        count = archive.conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        assert archive.get_checkpoint("telegram", str(CID)) == str(len(messages))
        archive.close()
        return count, elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=20_000)
    args = ap.parse_args()
    messages = make_messages(args.messages)
    meta = ChannelMeta(str(CID), "bench_channel", "Bench", "channel")

    t = time.perf_counter()
    for m in messages:
        message_to_message(m, meta)
    conv = time.perf_counter() - t
    print(f"conversion: {len(messages)} messages in {conv:.2f}s = {len(messages) / conv:,.0f} msg/s")

    count, elapsed = asyncio.run(catch_up(messages))
    print(f"catch-up:   {count} messages through the source into SQLite in {elapsed:.2f}s = {count / elapsed:,.0f} msg/s"
          " (pipeline, no rules)")


if __name__ == "__main__":
    main()
