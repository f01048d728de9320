"""The Telegram source against a fake that behaves as Telethon does (chunked reads failing
mid-way, flood waits per request type, handlers as concurrent tasks, reactions as edits):
restarts after a quiet first backfill, progress only from commits, reaction edits dropped,
media under a long flood wait reported, concurrent live posts."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from structlog.testing import capture_logs
from telethon import errors
from telethon.tl import types

from monitor.config import MediaDownloadConfig
from monitor.sources.telegram.media import MediaStore
from monitor.sources.telegram.source import TelegramSource
from telegram_fakes import (
    AMAQ_HASH,
    AMAQ_ID,
    T0,
    Collector,
    FakeGateway,
    Sleeps,
    channel,
    context,
    post,
    tg_config,
)

CID = str(AMAQ_ID)


def make_gateway(*posts_: types.Message) -> FakeGateway:
    gw = FakeGateway()
    gw.add_channel(channel(AMAQ_ID, "Amaq Example", "amaq_example", access_hash=AMAQ_HASH))
    gw.add(*posts_)
    return gw


def source(gw: FakeGateway, now=T0, sleeps: Sleeps | None = None, **cfg) -> TelegramSource:
    return TelegramSource(tg_config(**cfg), gw, sleep=sleeps or Sleeps(), now=lambda: now)


async def start(src: TelegramSource, archive, col: Collector):
    ctx = context(archive, col)
    task = asyncio.create_task(src.run(ctx))
    await asyncio.wait_for(src.ready.wait(), 5)
    return ctx, task


async def stop(ctx, task) -> None:
    ctx.stop.set()
    await asyncio.wait_for(task, 5)


# -- 4. a quiet first backfill still leaves a checkpoint ----------------------------------------
async def test_quiet_first_backfill_writes_a_checkpoint_so_downtime_posts_are_read(archive):
    old = [post(AMAQ_ID, i, f"old {i}", date=T0 - timedelta(days=2, minutes=-i)) for i in range(1, 6)]
    gw = make_gateway(*old)
    col = Collector(archive)
    await source(gw, now=T0 - timedelta(hours=3), backfill="1h").run(context(archive, col), once=True)
    assert col.ids() == []  # nothing in the window
    assert archive.get_checkpoint("telegram", CID) == "5"
    # the daemon was down while 6 and 7 were posted, more than the backfill window ago
    gw.add(post(AMAQ_ID, 6, "during downtime", date=T0 - timedelta(hours=2, minutes=30)),
           post(AMAQ_ID, 7, "during downtime too", date=T0 - timedelta(hours=2)))
    await source(gw, backfill="1h").run(context(archive, col), once=True)
    assert col.ids() == [6, 7]
    assert archive.get_checkpoint("telegram", CID) == "7"


async def test_backfill_zero_checkpoints_and_the_first_live_post_is_gap_checked(archive):
    gw = make_gateway(*[post(AMAQ_ID, i, f"old {i}", minutes=-10 + i) for i in range(1, 4)])
    col = Collector(archive)
    src = source(gw, backfill=0)
    ctx, task = await start(src, archive, col)
    assert archive.get_checkpoint("telegram", CID) == "3"
    gw.add(post(AMAQ_ID, 4, "missed by the update loop", minutes=1))
    await gw.push_new(post(AMAQ_ID, 5, "live", minutes=2))
    await stop(ctx, task)
    assert col.ids() == [4, 5]  # 4 read from history first: the live post was gap-checked
    assert archive.get_checkpoint("telegram", CID) == "5"


# -- 6. progress only from what the archive committed ------------------------------------------
async def test_gapfill_reads_again_what_a_rolled_back_batch_lost(archive):
    gw = make_gateway(post(AMAQ_ID, 1, "one"))
    col = Collector(archive)
    src = source(gw)
    ctx, task = await start(src, archive, col)
    col.failing = True  # the pipeline's batch rolls back
    await gw.push_new(post(AMAQ_ID, 2, "lost with the batch", minutes=1))
    col.failing = False
    await src.gapfill()
    await stop(ctx, task)
    assert archive.get_message("telegram", CID, "2") is not None
    assert archive.get_checkpoint("telegram", CID) == "2"


# -- 7. reactions are edits that change nothing shown ---------------------------------------------
async def test_reaction_edits_are_dropped_real_edits_kept_even_after_a_restart(archive):
    gw = make_gateway(post(AMAQ_ID, 1, "claim"))
    col = Collector(archive)
    src = source(gw)
    ctx, task = await start(src, archive, col)
    await gw.push_reaction(AMAQ_ID, 1, "🔥")
    await gw.push_reaction(AMAQ_ID, 1, "👍", count=40)
    assert col.ids() == [1]
    await gw.push_edit(post(AMAQ_ID, 1, "claim (corrected)", edit_date=T0 + timedelta(minutes=5)))
    await stop(ctx, task)
    assert col.ids() == [1, 1] and col.messages()[-1].text == "claim (corrected)"
    assert src.health()["unchanged_edits"] == 2

    src = source(gw)  # a restart: compared with what is stored
    ctx, task = await start(src, archive, col)
    await gw.push_reaction(AMAQ_ID, 1, "❤")
    await stop(ctx, task)
    assert col.ids() == [1, 1]


# -- handlers race; reads fail mid-way --------------------------------------------------------------
async def test_concurrent_live_posts_are_each_emitted_once_in_order(archive):
    gw = make_gateway(post(AMAQ_ID, 1, "one"))
    col = Collector(archive)
    src = source(gw)
    ctx, task = await start(src, archive, col)
    for mid in (3, 2, 4):  # Telethon runs each update as its own task
        await gw.push_new(post(AMAQ_ID, mid, f"live {mid}", minutes=mid), wait=False)
    await gw.settle()
    await stop(ctx, task)
    assert col.ids() == [1, 2, 3, 4]
    assert archive.get_checkpoint("telegram", CID) == "4"


async def test_history_read_failing_after_a_chunk_resumes_without_loss_or_repeats(archive):
    gw = make_gateway(*[post(AMAQ_ID, i, f"p{i}", minutes=i) for i in range(1, 251)])
    gw.fail_after[AMAQ_ID] = (100, errors.FloodWaitError(request=None, capture=12))
    sleeps = Sleeps()
    col = Collector(archive)
    await source(gw, sleeps=sleeps, backfill=500).run(context(archive, col), once=True)
    col.clear()
    gw.add(*[post(AMAQ_ID, i, f"p{i}", minutes=i) for i in range(251, 501)])
    gw.fail_after[AMAQ_ID] = (200, errors.FloodWaitError(request=None, capture=12))
    await source(gw, sleeps=sleeps).run(context(archive, col), once=True)
    assert col.ids() == list(range(251, 501))
    assert sleeps.calls == [12, 12]  # one flood wait in each run, mid-read
    assert archive.get_checkpoint("telegram", CID) == "500"


# -- 5. media under a flood wait (premium download limits) -------------------------------------------
def _photo_post(mid: int) -> types.Message:
    photo = types.Photo(id=500 + mid, access_hash=1, file_reference=b"", date=T0,
                        sizes=[types.PhotoSize(type="x", w=8, h=6, size=100)], dc_id=2)
    return post(AMAQ_ID, mid, f"photo {mid}", media=types.MessageMediaPhoto(photo=photo))


async def test_media_under_a_flood_wait_is_retried_or_reported(archive, tmp_path: Path):
    gw = make_gateway(_photo_post(1), _photo_post(2))
    gw.media_bytes = {1: b"one", 2: b"two"}
    gw.flood["GetFile"] = [30, 0, 7200]  # short: waited out, retried; premium-length: reported
    store = MediaStore(MediaDownloadConfig(types=["photo"], max_size="1MB", dir=str(tmp_path / "m")))
    sleeps = Sleeps()
    col = Collector(archive)
    src = TelegramSource(tg_config(), gw, media=store, sleep=sleeps, now=lambda: T0)
    with capture_logs() as logs:
        await src.run(context(archive, col), once=True)
    first, second = col.messages()
    assert first.media[0].sha256 is not None and sleeps.calls == [30]
    assert second.media[0].sha256 is None  # the message is kept, the media reported
    assert src.health()["media_flood_skipped"] == 1
    assert any(e["event"] == "media not downloaded: flood wait too long" and e["seconds"] == 7200
               and e["log_level"] == "error" for e in logs)
