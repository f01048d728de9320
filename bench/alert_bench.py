"""Alert benchmark: hit stored (Archive.store committed) -> loopback Slack webhook received.

A real HTTP server (aiohttp, own thread and event loop, 127.0.0.1) stands in for Slack; the
delivery worker runs as in the daemon (``DeliveryWorker.run`` with a wake event set right
after each store) and sends through slack-sdk's AsyncWebhookClient. Prints:

* latency: N hits stored one at a time at a steady pace (default 1,000, one every 5 ms),
  time from the commit to the server receiving the alert: p50 / p99 / max;
* throughput: N hits stored in one transaction, time until the server has them all.

Usage: python bench/alert_bench.py [--hits 1000] [--interval-ms 5] [--concurrency 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402

from monitor.alerts.destinations import build_destinations  # noqa: E402
from monitor.alerts.outbox import DeliveryWorker  # noqa: E402
from monitor.archive import Archive  # noqa: E402
from monitor.config import Config  # noqa: E402
from monitor.logs import configure_logging  # noqa: E402
from monitor.model import Hit, Match, Message  # noqa: E402

TEXT = "{token} Islamic State claimed responsibility for the twin bombings in Kerman, its Amaq agency said"


class LoopbackSlack:
    """aiohttp server in its own thread; records perf_counter() at receipt per token."""

    def __init__(self) -> None:
        self.received: dict[str, float] = {}
        self.lock = threading.Lock()
        self.count_changed = threading.Condition(self.lock)
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        now = time.perf_counter()
        token = json.loads(body)["blocks"][2]["text"]["text"].split(" ", 1)[0]
        with self.count_changed:
            self.received.setdefault(token, now)
            self.count_changed.notify_all()
        return web.Response(text="ok")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_post("/services/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self.loop.run_forever()

    def start(self) -> "LoopbackSlack":
        self.thread.start()
        self._ready.wait(5)
        return self

    def stop(self) -> None:
        async def cleanup() -> None:
            await self.runner.cleanup()

        asyncio.run_coroutine_threadsafe(cleanup(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def wait_for(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.count_changed:
            while len(self.received) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.count_changed.wait(left)
        return True


def hit_pair(i: int, prefix: str) -> tuple[Message, list[Hit]]:
    token = f"{prefix}{i:05d}"
    text = TEXT.format(token=token)
    start = text.index("claimed responsibility")
    msg = Message(
        platform="telegram",
        channel_id="-1001234567890",
        message_id=f"{prefix}{i}",
        date=datetime.now(timezone.utc),
        text=text,
        channel="amaq_example",
        channel_title="Amaq Example",
    )
    hit = Hit(
        rule_id="claims",
        rule_hash="bench",
        level="high",
        title="Claim of responsibility",
        matches=(Match("s1", "claimed responsibility", start, start + 22),),
        destinations=("slack",),
    )
    return msg, [hit]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def run(args: argparse.Namespace) -> int:
    server = LoopbackSlack().start()
    tmp = tempfile.TemporaryDirectory(prefix="alert-bench-")
    archive = Archive.open(Path(tmp.name) / "bench.db")
    cfg = Config.model_validate(
        {"alerts": {"destinations": {"slack": {"type": "slack", "webhook_url": f"http://127.0.0.1:{server.port}/services/T/B/x"}}}}
    )
    worker = DeliveryWorker(archive, build_destinations(cfg), concurrency=args.concurrency)
    stop, wake = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(worker.run(stop, wake))
    failures = 0
    try:
        # warm-up: connection pool, templates, SQLite caches
        for i in range(20):
            await asyncio.to_thread(archive.store, [hit_pair(i, "w")])
            wake.set()
        server.wait_for(20, 10)

        # 1. latency, hits stored one at a time at a steady pace
        n = args.hits
        stored_at: dict[str, float] = {}

        def store_one(i: int) -> None:
            archive.store([hit_pair(i, "L")])
            stored_at[f"L{i:05d}"] = time.perf_counter()

        start = time.perf_counter()
        for i in range(n):
            await asyncio.to_thread(store_one, i)
            wake.set()
            next_at = start + (i + 1) * args.interval_ms / 1000
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        if not await asyncio.to_thread(server.wait_for, 20 + n, 60):
            failures += 1
        lat = [(server.received[k] - t) * 1000 for k, t in stored_at.items() if k in server.received]
        print(f"latency: {len(lat)}/{n} hits stored one every {args.interval_ms:g} ms "
              f"(worker concurrency {args.concurrency})")
        print(f"  hit stored -> loopback Slack received: p50 {statistics.median(lat):.2f} ms, "
              f"p99 {pct(lat, 0.99):.2f} ms, max {max(lat):.2f} ms (target p99 <= 50 ms)")

        # 2. throughput, a burst stored in one transaction
        before = len(server.received)
        t0 = time.perf_counter()
        await asyncio.to_thread(archive.store, [hit_pair(i, "T") for i in range(n)])
        t_stored = time.perf_counter()
        wake.set()
        if not await asyncio.to_thread(server.wait_for, before + n, 120):
            failures += 1
        t1 = time.perf_counter()
        got = len(server.received) - before
        print(f"throughput: {got}/{n} hits stored in one transaction ({(t_stored - t0) * 1000:.0f} ms), "
              f"all delivered in {t1 - t_stored:.2f} s: {got / (t1 - t_stored):.0f} alerts/s")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await worker.aclose()
        sent = archive.conn.execute("SELECT count(*) FROM outbox WHERE status='sent'").fetchone()[0]
        total = archive.conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
        archive.close()
        server.stop()
        tmp.cleanup()
    print(f"outbox: {sent}/{total} rows sent; worker stats: sent {worker.stats.sent}, retried {worker.stats.retried}, "
          f"failed {worker.stats.failed}")
    return 1 if failures or sent != total else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hits", type=int, default=1000)
    p.add_argument("--interval-ms", type=float, default=5.0, help="pause between stored hits in the latency run")
    p.add_argument("--concurrency", type=int, default=1, help="sends in flight per destination")
    args = p.parse_args()
    configure_logging("WARNING")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
