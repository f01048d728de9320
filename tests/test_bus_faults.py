"""The bus under faults, with real processes: three collectors follow files and publish
3 x 2,000 messages while the archiver is SIGKILLed twice, one collector once, and Redis is
restarted once. Afterwards the archive holds exactly 6,000 messages, ``verify`` is clean, and
every hit has exactly one alert in the outbox, written exactly once to the file destination.

(A SIGKILL between the file destination's write and the outbox's ``sent`` mark re-sends that
alert after the restart; the destination finds its delivery key in the file and does not
write it again: tests/test_bus_file_delivery.py kills a daemon at exactly that point.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import redis as redis_sync
import yaml

from bus_helpers import write_bus_config
from daemon_helpers import archive_progress, canonical_line, db_rows, outbox_report, wait_progress_sync

PER_COLLECTOR = 2000
CHUNK = 100
N_COLLECTORS = 3


def _cli() -> list[str]:
    return [sys.executable, "-c", "from monitor.cli import main; main()"]


def _spawn(cfg: Path, role: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("CI", None)  # a plain process (no CI-only behaviour in the daemon)
    return subprocess.Popen(
        [*_cli(), "run", "--role", role, "--config", str(cfg), "--log-level", "WARNING"],
        stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env,
    )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait(pred, what: str, timeout: float = 60.0, soft: bool = False) -> None:
    deadline = time.monotonic() + (5.0 if soft else timeout)
    while not pred():
        if time.monotonic() > deadline:
            assert soft, f"timed out waiting for {what}"
            return
        time.sleep(0.02)


def _count(db: Path) -> int:
    rows = db_rows(db, "select count(*) from messages")
    return rows[0][0] if rows else 0


def test_three_collectors_one_archiver_kills_and_a_redis_restart(tmp_path: Path, redis_server) -> None:
    configs = []
    for k in range(N_COLLECTORS):
        (tmp_path / "in" / str(k)).mkdir(parents=True, exist_ok=True)
        configs.append(write_bus_config(tmp_path, redis_server.url, name=f"c{k}", claim_idle=2,
                                        inputs=str(tmp_path / "in" / str(k) / "*.jsonl")))
    # The archiver has its own consumer name; the collectors' configs only differ in name/input.
    arch_cfg = yaml.safe_load(configs[0].read_text(encoding="utf-8"))
    arch_cfg["bus"]["name"] = "archiver-1"
    arch_path = tmp_path / "archiver.yaml"
    arch_path.write_text(yaml.safe_dump(arch_cfg), encoding="utf-8")
    db = tmp_path / "archive.db"
    logs = tmp_path / "logs"
    logs.mkdir()

    collectors = [_spawn(c, "collector", logs / f"c{k}.log") for k, c in enumerate(configs)]
    archiver = _spawn(arch_path, "archiver", logs / "archiver.log")
    r = redis_sync.Redis.from_url(redis_server.url)
    # Faults only once every process is up and the data flows.
    _wait(lambda: len(r.hgetall("cw-test:collectors")) == N_COLLECTORS, "collectors reporting")
    _wait(lambda: r.exists("cw-test") and any(g["consumers"] for g in r.xinfo_groups("cw-test")), "archiver joined")
    written = 0
    chunks = PER_COLLECTOR // CHUNK
    faults = {4: "kill-archiver", 7: "kill-collector", 10: "stop-redis", 12: "start-redis", 15: "kill-archiver"}
    try:
        for chunk in range(chunks):
            for k in range(N_COLLECTORS):
                with (tmp_path / "in" / str(k) / "feed.jsonl").open("a", encoding="utf-8") as fh:
                    for i in range(chunk * CHUNK, (chunk + 1) * CHUNK):
                        text = f"Group {k}-{i} claimed responsibility for the attack" if i % 20 == 0 else f"news {k}-{i}"
                        fh.write(canonical_line(i, text, channel_id=f"10{k}"))
            written += CHUNK * N_COLLECTORS
            time.sleep(0.15)
            fault = faults.get(chunk)
            if fault == "kill-archiver":
                stored = _count(db)
                _wait(lambda: _count(db) > stored, "the archiver storing", soft=True)  # killed mid-work
                _kill(archiver)
                archiver = _spawn(arch_path, "archiver", logs / "archiver.log")
            elif fault == "kill-collector":
                _kill(collectors[1])
                collectors[1] = _spawn(configs[1], "collector", logs / "c1.log")
            elif fault == "stop-redis":  # two chunks are written while Redis is away: spooled
                before = r.xlen("cw-test")
                redis_server.stop()
            elif fault == "start-redis":
                time.sleep(2.0)  # past the client's own reconnect retries
                redis_server.start()
                assert redis_sync.Redis.from_url(redis_server.url).xlen("cw-test") >= before > 0  # AOF reloaded
        assert written == N_COLLECTORS * PER_COLLECTOR
        # No fixed deadlines (a loaded host only makes this slower): each wait fails when the
        # archive and the logs have not moved for two minutes, or a process exited, and then says
        # what the archive and its outbox hold.
        progress = lambda: archive_progress(db, *sorted(logs.iterdir()))  # noqa: E731
        report = lambda: outbox_report(db, logs / "archiver.log")  # noqa: E731
        wait_progress_sync(lambda: _count(db) >= written, f"all {written} messages stored", progress=progress,
                           report=report, procs=(*collectors, archiver))
        # Let the last alerts go out, then stop everything cleanly.
        wait_progress_sync(lambda: db_rows(db, "select count(*) from outbox where status != 'sent'") == [(0,)],
                           "every alert sent", progress=progress, report=report, procs=(*collectors, archiver))
    finally:
        for p in (*collectors, archiver):
            _stop(p)

    assert _count(db) == N_COLLECTORS * PER_COLLECTOR
    keys = db_rows(db, "select count(distinct platform || ':' || channel_id || ':' || message_id) from messages")
    assert keys[0][0] == N_COLLECTORS * PER_COLLECTOR
    verify = subprocess.run([*_cli(), "verify", "--db", str(db)], capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr

    hits = db_rows(db, "select id from hits")
    assert len(hits) == N_COLLECTORS * PER_COLLECTOR // 20
    per_hit = db_rows(db, "select hit_id, count(*) from outbox where kind='alert' group by hit_id")
    assert len(per_hit) == len(hits) and all(n == 1 for _h, n in per_hit)
    assert db_rows(db, "select count(*) from outbox where status != 'sent'")[0][0] == 0
    lines = [json.loads(x) for x in (tmp_path / "alerts.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    sent = Counter(line["outbox_id"] for line in lines if line["kind"] == "alert")
    outbox_ids = {r[0] for r in db_rows(db, "select id from outbox where kind='alert'")}
    assert set(sent) == outbox_ids
    repeated = {oid: n for oid, n in sent.items() if n != 1}
    assert not repeated, f"alerts written more than once: {repeated}"
    assert len(lines) == len(hits)  # exactly one line per hit, nothing else
    # The Redis outage was real: the collectors that ran throughout spooled and drained.
    reports = {k.decode(): json.loads(v) for k, v in redis_sync.Redis.from_url(redis_server.url).hgetall("cw-test:collectors").items()}
    for name in ("c0", "c2"):
        assert reports[name]["spooled"] > 0 and reports[name]["spool_bytes"] == 0, reports[name]
