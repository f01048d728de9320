"""The bus against a real redis-server: collector -> stream -> archiver, the spool while Redis
is away, redelivery of unacknowledged entries, take-over of a dead consumer's entries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis as redis_sync

from bus_helpers import write_bus_config
from daemon_helpers import canonical_line, db_rows
from monitor.bus.roles import Collector
from monitor.config import load_config
from monitor.daemon import Daemon


def alerts(tmp: Path) -> list[dict]:
    p = tmp / "alerts.jsonl"
    return [json.loads(x) for x in p.read_text(encoding="utf-8").splitlines() if x.strip()] if p.exists() else []


def feed(tmp: Path, first: int, n: int, name: str = "feed.jsonl") -> None:
    with (tmp / "in" / name).open("a", encoding="utf-8") as fh:
        for i in range(first, first + n):
            text = f"Group {i} claimed responsibility for the attack" if i % 10 == 0 else f"ordinary news {i}"
            fh.write(canonical_line(i, text))


def stream_events(r: redis_sync.Redis, stream: str = "cw-test") -> list[dict]:
    """Every event in the stream, in order (an entry holds a JSON array of them in 'b')."""
    out: list[dict] = []
    for _id, fields in r.xrange(stream):
        out.extend(json.loads(fields[b"b"]) if b"b" in fields else [json.loads(fields[b"e"])])
    return out


async def run_collector(cfg_path: Path) -> Collector:
    collector = Collector(load_config(cfg_path))
    assert await collector.run(once=True) == 0
    return collector


async def run_archiver(cfg_path: Path) -> Daemon:
    daemon = Daemon(load_config(cfg_path), role="archiver", drain_timeout=5)
    assert await daemon.run(once=True) == 0
    return daemon


def test_redis_server_fixture_is_real(redis_server) -> None:
    r = redis_sync.Redis.from_url(redis_server.url)
    assert r.ping()
    r.xadd("s", {"a": "1"})
    assert r.xlen("s") == 1
    assert r.info("server")["redis_version"] >= "6.2"


async def test_collector_to_archiver_stores_matches_and_alerts_once(tmp_path: Path, redis_server) -> None:
    cfg_path = write_bus_config(tmp_path, redis_server.url)
    feed(tmp_path, 1, 200)
    collector = await run_collector(cfg_path)
    assert collector.publisher.published == 200 and collector.publisher.spooled == 0
    r = redis_sync.Redis.from_url(redis_server.url)
    # Batches of events, up to 100 an entry: one XADD, one read and one XACK per entry.
    assert 2 <= r.xlen("cw-test") <= 200
    events = stream_events(r)
    assert [e["message_id"] for e in events] == [str(i) for i in range(1, 201)]
    entry = r.xrange("cw-test", count=1)[0][1]
    keys = json.loads(entry[b"k"])
    assert len(keys) == int(entry[b"n"]) == len(json.loads(entry[b"b"])) <= 100
    assert keys[0].startswith("telegram:555:1:") and entry[b"c"] == b"c1"
    # bus.maxlen counts events: the stream is trimmed at maxlen / events per entry entries.
    assert 100 <= collector.publisher.maxlen_entries() <= 1_000_000 // 5
    assert events[0]["text"] == "ordinary news 1" and events[0]["type"] == "message"
    # Nothing is stored by the collector; its checkpoint is in its own state file.
    assert not (tmp_path / "archive.db").exists()
    assert db_rows(tmp_path / "c1" / "state.db", "select count(*) from checkpoints")[0][0] == 1

    daemon = await run_archiver(cfg_path)
    assert db_rows(tmp_path / "archive.db", "select count(*) from messages")[0][0] == 200
    assert db_rows(tmp_path / "archive.db", "select count(*) from hits")[0][0] == 20
    assert len(alerts(tmp_path)) == 20
    group = r.xinfo_groups("cw-test")[0]
    assert group["pending"] == 0
    assert daemon.sources["bus"].acked == 200

    # A restarted collector neither repeats nor skips: only the new lines are published.
    feed(tmp_path, 201, 10)
    collector = await run_collector(cfg_path)
    assert collector.publisher.published == 10
    assert len(stream_events(r)) == 210
    await run_archiver(cfg_path)
    assert db_rows(tmp_path / "archive.db", "select count(*) from messages")[0][0] == 210
    assert len(alerts(tmp_path)) == 21


async def test_spool_while_redis_is_away_then_drains_in_order(tmp_path: Path, redis_server) -> None:
    cfg_path = write_bus_config(tmp_path, redis_server.url)
    redis_server.stop()
    feed(tmp_path, 1, 50)
    collector = await run_collector(cfg_path)
    pub = collector.publisher
    assert pub.published == 0 and pub.spooled == 50
    assert (tmp_path / "c1" / "spool" / "spool.jsonl").stat().st_size > 0
    # The checkpoint advanced (the spool is a commit): the next run does not re-read the lines.
    assert db_rows(tmp_path / "c1" / "state.db", "select count(*) from checkpoints")[0][0] == 1

    redis_server.start()
    feed(tmp_path, 51, 5)
    collector = await run_collector(cfg_path)
    assert collector.publisher.spooled == 0
    assert collector.publisher.published == 55  # 50 drained from the spool, then 5 new
    r = redis_sync.Redis.from_url(redis_server.url)
    ids = [e["message_id"] for e in stream_events(r)]
    assert ids == [str(i) for i in range(1, 56)]
    assert (tmp_path / "c1" / "spool" / "spool.jsonl").stat().st_size == 0


async def test_full_spool_holds_sources_back_and_loses_nothing(tmp_path: Path, redis_server, monkeypatch) -> None:
    import asyncio

    import monitor.bus.codec as codec

    monkeypatch.setattr(codec, "ENTRY_EVENTS", 2)  # entries small enough for a 4,000-byte spool to fill
    cfg_path = write_bus_config(tmp_path, redis_server.url, spool_max=4000)
    redis_server.stop()
    feed(tmp_path, 1, 40)
    collector = Collector(load_config(cfg_path))
    task = asyncio.create_task(collector.run(once=True))
    for _ in range(200):
        await asyncio.sleep(0.05)
        if collector.publisher is not None and collector.publisher.spool_full:
            break
    assert collector.publisher.spool_full and not task.done()
    assert collector.publisher.spool.size <= 4000
    redis_server.start()
    assert await asyncio.wait_for(task, 60) == 0
    r = redis_sync.Redis.from_url(redis_server.url)
    ids = [e["message_id"] for e in stream_events(r)]
    assert ids == [str(i) for i in range(1, 41)]


async def test_unacknowledged_entries_are_delivered_again_and_stored_once(tmp_path: Path, redis_server, monkeypatch) -> None:
    import monitor.bus.codec as codec

    monkeypatch.setattr(codec, "ENTRY_EVENTS", 1)  # an entry per event: the counts below are entries
    cfg_path = write_bus_config(tmp_path, redis_server.url, claim_idle=0)
    feed(tmp_path, 1, 30)
    await run_collector(cfg_path)
    r = redis_sync.Redis.from_url(redis_server.url)
    # A consumer that read everything and died before acknowledging anything.
    r.xgroup_create("cw-test", "archivers", id="0")
    got = r.xreadgroup("archivers", "dead-archiver", {"cw-test": ">"}, count=100)
    assert len(got[0][1]) == 30
    assert r.xinfo_groups("cw-test")[0]["pending"] == 30
    # Half of it had been stored by that archiver before it died (same archive).
    daemon = await run_archiver(cfg_path)  # consumer c1 takes the pending entries over
    assert daemon.sources["bus"].claimed == 30
    assert r.xinfo_groups("cw-test")[0]["pending"] == 0
    # Delivered again to another consumer: the store and alerts stay exactly once.
    r.xgroup_setid("cw-test", "archivers", id="0")
    await run_archiver(cfg_path)
    assert db_rows(tmp_path / "archive.db", "select count(*) from messages")[0][0] == 30
    assert db_rows(tmp_path / "archive.db", "select count(*) from hits")[0][0] == 3
    assert len(alerts(tmp_path)) == 3


async def test_invalid_entry_is_set_aside_not_stored(tmp_path: Path, redis_server) -> None:
    from monitor.bus import codec
    from monitor.model import Message

    cfg_path = write_bus_config(tmp_path, redis_server.url)
    r = redis_sync.Redis.from_url(redis_server.url)
    r.xadd("cw-test", {"k": "x", "e": '{"type": "message", "platform": "telegram"}', "c": "evil", "t": "1"})
    r.xadd("cw-test", {"e": b"\xff\xfe not utf-8"})
    r.xadd("cw-test", {"b": "[1, 2", "n": "2", "c": "evil", "t": "1"})
    # One bad event between two good ones: the good ones are stored, the bad one set aside.
    good = [Message.from_dict(json.loads(canonical_line(i, f"batch news {i}", channel_id="777"))) for i in (1, 2)]
    batch = codec.encode_batch(good, "mixed", 1)[0]
    events = json.loads(batch["b"])
    batch["b"] = json.dumps([events[0], {"type": "message", "platform": "telegram", "text": "no ids"}, events[1]])
    r.xadd("cw-test", batch)
    feed(tmp_path, 1, 3)
    await run_collector(cfg_path)
    daemon = await run_archiver(cfg_path)
    assert daemon.sources["bus"].dead == 4
    assert db_rows(tmp_path / "archive.db", "select count(*) from messages")[0][0] == 5
    assert db_rows(tmp_path / "archive.db", "select count(*) from messages where channel_id='777'")[0][0] == 2
    dead = r.xrange("cw-test:dead")
    assert "channel_id" in dead[0][1][b"reason"].decode()
    assert b"'b' is not JSON" in dead[2][1][b"reason"]
    assert dead[3][1][b"index"] == b"1" and b"channel_id" in dead[3][1][b"reason"]
    assert r.xinfo_groups("cw-test")[0]["pending"] == 0


def test_role_collector_without_bus_section_is_a_one_line_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from daemon_helpers import write_config
    from monitor.cli import app

    cfg = write_config(tmp_path, None, None)
    res = CliRunner().invoke(app, ["run", "--role", "collector", "--config", str(cfg), "--once"])
    assert res.exit_code == 2
    assert "needs a 'bus:' section" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, ["run", "--role", "nonsense", "--config", str(cfg), "--once"])
    assert res.exit_code == 2 and "--role" in res.output
    pytest.importorskip("redis")


def test_status_and_metrics_show_stream_lag_pending_and_collectors(tmp_path: Path, redis_server) -> None:
    import asyncio

    import httpx
    import yaml
    from typer.testing import CliRunner

    from daemon_helpers import wait_for
    from monitor.cli import app

    import monitor.bus.codec as codec

    cfg_path = write_bus_config(tmp_path, redis_server.url)
    feed(tmp_path, 1, 40)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(codec, "ENTRY_EVENTS", 1)  # an entry per event: the figures below are entries
        asyncio.run(run_collector(cfg_path))
    res = CliRunner().invoke(app, ["status", "--config", str(cfg_path), "--json"])
    assert res.exit_code == 0, res.output
    bus = json.loads(res.output)["bus"]  # no archive yet: the bus alone (a collector's host)
    assert bus["stream_length"] == 40 and bus["lag"] is None  # no archiver group yet
    assert bus["collectors"]["c1"]["published"] == 40 and bus["collectors"]["c1"]["last_publish"]

    # An archiver with /metrics, consuming half and leaving the rest pending.
    r = redis_sync.Redis.from_url(redis_server.url)
    r.xgroup_create("cw-test", "archivers", id="0")
    r.xreadgroup("archivers", "gone", {"cw-test": ">"}, count=10)
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["http"] = {"enabled": True, "port": 0}
    cfg["bus"]["name"] = "arch"
    arch_path = tmp_path / "arch.yaml"
    arch_path.write_text(yaml.safe_dump(cfg))
    daemon = Daemon(load_config(arch_path), role="archiver")
    daemon.prepare()

    async def archiver_with_metrics() -> str:
        task = asyncio.create_task(daemon.run())
        try:
            await wait_for(lambda: daemon.sources["bus"].acked == 30, 20, "archiver caught up")
            await daemon.sources["bus"]._refresh_info()
            async with httpx.AsyncClient() as http:
                return (await http.get(f"http://127.0.0.1:{daemon.http.port}/metrics")).text
        finally:
            daemon.request_stop()
            assert await asyncio.wait_for(task, 20) == 0

    body = asyncio.run(archiver_with_metrics())
    assert "claimwatch_bus_stream_length 40.0" in body
    assert "claimwatch_bus_lag 0.0" in body
    assert "claimwatch_bus_pending 10.0" in body  # the 10 the consumer 'gone' holds
    assert 'claimwatch_bus_collector_last_publish_age_seconds{collector="c1"}' in body
    res = CliRunner().invoke(app, ["status", "--config", str(cfg_path)])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "40 entries" in text and "lag 0" in text and "pending 10" in text
    assert "Collectors" in res.output and "c1" in res.output
    res = CliRunner().invoke(app, ["status", "--config", str(cfg_path), "--json"])
    report = json.loads(res.output)
    assert report["messages"] == 30 and report["bus"]["consumers"]["gone"]["pending"] == 10


def test_collector_example_config_and_bad_bus_keys(tmp_path: Path, monkeypatch) -> None:
    from monitor.config import ConfigError

    root = Path(__file__).resolve().parent.parent
    monkeypatch.setenv("TG_API_ID", "12345")
    monkeypatch.setenv("TG_API_HASH", "abc")
    monkeypatch.setenv("REDIS_PASSWORD", "s3cret")
    cfg = load_config(root / "config" / "collector.example.yaml")
    assert cfg.bus.name == "collector-a" and cfg.bus.password.get_secret_value() == "s3cret"
    assert cfg.bus.spool.max_bytes == 1_000_000_000
    bad = tmp_path / "bad.yaml"
    bad.write_text("bus:\n  url: http://example.org\n  spool: {max_bytes: lots}\n  strem: x\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    text = str(err.value)
    assert "bus.url" in text and "bus.spool.max_bytes" in text and "unknown key 'bus.strem'" in text


async def test_own_pending_entries_beyond_one_read_are_all_delivered_again(tmp_path: Path, redis_server, monkeypatch) -> None:
    import monitor.bus.consumer as consumer

    import monitor.bus.codec as codec

    monkeypatch.setattr(consumer, "READ_COUNT", 5)
    monkeypatch.setattr(codec, "ENTRY_EVENTS", 3)
    cfg_path = write_bus_config(tmp_path, redis_server.url)  # claim_idle 60 s: no take-over here
    feed(tmp_path, 1, 23)
    await run_collector(cfg_path)
    r = redis_sync.Redis.from_url(redis_server.url)
    r.xgroup_create("cw-test", "archivers", id="0")
    # This archiver (name c1) read everything before, then died before acknowledging:
    # 23 events in entries of up to 3 (at least 8 entries: more than one read of 5).
    pending = r.xreadgroup("archivers", "c1", {"cw-test": ">"}, count=100)[0][1]
    assert len(pending) >= 8 and sum(int(f[b"n"]) for _i, f in pending) == 23
    daemon = await run_archiver(cfg_path)
    assert daemon.sources["bus"].claimed == 0
    assert db_rows(tmp_path / "archive.db", "select count(*) from messages")[0][0] == 23
    assert r.xinfo_groups("cw-test")[0]["pending"] == 0


async def test_group_lost_with_redis_data_is_created_again(tmp_path: Path, redis_server) -> None:
    import asyncio

    cfg_path = write_bus_config(tmp_path, redis_server.url)
    feed(tmp_path, 1, 5)
    await run_collector(cfg_path)
    daemon = Daemon(load_config(cfg_path), role="archiver")
    daemon.prepare()
    task = asyncio.create_task(daemon.run())
    from daemon_helpers import wait_for

    try:
        await wait_for(lambda: daemon.sources["bus"].acked == 5, 20, "first entries")
        r = redis_sync.Redis.from_url(redis_server.url)
        r.flushall()  # as a Redis restarted without persistence
        feed(tmp_path, 6, 4)
        await run_collector(cfg_path)
        await wait_for(lambda: len(db_rows(tmp_path / "archive.db", "select id from messages")) == 9, 30, "after the loss")
    finally:
        daemon.request_stop()
        assert await asyncio.wait_for(task, 20) == 0


def test_codec_reads_back_exactly_what_the_collector_had() -> None:
    """orjson writes an event only when reading it back gives the same record; NaN, huge
    integers, lone surrogates and Decimals go through the json module, as canonical JSON."""
    from datetime import datetime, timezone
    from decimal import Decimal

    from monitor.bus import codec
    from monitor.model import Deletion, Message, canonical_json

    date = datetime(2024, 1, 3, tzinfo=timezone.utc)
    raws = [{"id": 1, "geo": 1.5e16}, {"v": float("nan")}, {"big": 2**70 + 1, "neg": -(2**64) - 3}, {"s": "\ud800x"},
            {"d": Decimal("0.1"), "t": (1, 2)}, {"at": date}]
    events: list = [Message("telegram", "1", str(i), date, f"text {i}", raw=raw) for i, raw in enumerate(raws)]
    events.append(Deletion("telegram", "1", ("3", "4"), date))
    for event in events:
        text = codec.event_json(event)
        assert codec.loads(text) == json.loads(canonical_json(codec.event_dict(event)))
    entries = codec.encode_batch(events, "c9", 123)
    assert len(entries) == 1 and entries[0]["n"] == str(len(events))
    back, collector, published = codec.decode_entry({k.encode(): v.encode() for k, v in entries[0].items()})
    assert collector == "c9" and published == 123
    assert [e.to_dict() if isinstance(e, Message) else e for e in back] == [
        Message.from_dict(json.loads(canonical_json(codec.event_dict(e)))).to_dict() if isinstance(e, Message) else e
        for e in events]
    assert back[1].raw["v"] != back[1].raw["v"]  # NaN stayed NaN (orjson would have written null)
    # Integers past 64 bits stay integers (orjson would read them as floats: 2**70 + 1 -> 2**70).
    assert back[2].raw == {"big": 2**70 + 1, "neg": -(2**64) - 3}
    assert type(back[2].raw["big"]) is int and type(back[2].raw["neg"]) is int
    assert back[3].raw["s"] == "\ud800x" and back[5].raw["at"] == "2024-01-03T00:00:00Z"
