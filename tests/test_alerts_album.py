"""Telegram albums: the items of an album (one message each, sharing grouped_id, caption on
one) are kept together in the alert: its media note lists every item."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from alerts_support import hit_for, message

from monitor.alerts.destinations import build_destinations
from monitor.alerts.outbox import DeliveryWorker
from monitor.config import Config
from monitor.model import Media


async def test_album_items_are_listed_in_the_alert(archive, tmp_path: Path) -> None:
    caption = message("Amaq: the group claimed responsibility for the attack", mid="10", grouped_id="777",
                      media=(Media("photo", "a.jpg", 1000),))
    items = [
        replace(caption, message_id="11", text="", media=(Media("photo", "b.jpg", 2000),)),
        replace(caption, message_id="12", text="", media=(Media("video", "c.mp4", 3_000_000, "video/mp4"),)),
    ]
    other_album = replace(caption, message_id="20", text="", grouped_id="888", media=(Media("photo", "z.jpg"),))
    archive.store([(m, []) for m in items + [other_album]])
    archive.store([(caption, [hit_for(caption, destinations=("log",))])])
    out = tmp_path / "alerts.jsonl"
    cfg = Config.model_validate({"alerts": {"destinations": {"log": {"type": "file", "path": str(out)}}}})
    worker = DeliveryWorker(archive, build_destinations(cfg))
    try:
        await worker.drain(5)
    finally:
        await worker.aclose()
    (alert,) = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    text = json.dumps(alert, ensure_ascii=False)
    assert "album of 3" in text
    assert "a.jpg" in text and "b.jpg" in text and "c.mp4" in text
    assert "z.jpg" not in text  # another album of the channel is not mixed in
