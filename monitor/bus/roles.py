"""``claimwatch run --role collector``: the sources only, publishing to the bus.

(``--role archiver`` is the normal daemon with :class:`~monitor.bus.consumer.BusSource` as
its only source, see :func:`archiver_sources`; ``--role all`` is the single process.)

A collector keeps its resume points in its own small SQLite file (``bus.state``, the
archive's schema with only checkpoints, channels and source status in use), holds a lock on
it (one collector per state file) and advances them only after the events are in the stream
or the spool (:mod:`.publisher`).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
from pathlib import Path
from typing import Any

from ..config import BusConfig, Config
from ..logs import get_logger
from ..sources.base import Source, SourceContext, SourceStopped

log = get_logger("claimwatch.bus.collector")


def require_bus(cfg: Config, role: str) -> BusConfig:
    if cfg.bus is None:
        where = cfg.source_path or "the config"
        raise ValueError(f"{where}: --role {role} needs a 'bus:' section (bus: {{url: redis://...}})")
    return cfg.bus


def archiver_sources(cfg: Config, rules: Any = None) -> dict[str, Source]:
    """The archiver's one source; with ``rules`` (the daemon's RulesState) its preparer
    processes (``bus.preparers``) load the same rule set."""
    from .consumer import BusSource

    return {"bus": BusSource(require_bus(cfg, "archiver"), rules=rules)}


class Collector:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.bus = require_bus(cfg, "collector")
        self.sources: dict[str, Source] = {}
        self.state: Any = None
        self.spool: Any = None
        self.publisher: Any = None
        self.redis: Any = None
        self.source_errors: dict[str, str] = {}
        self.problems: list[str] = []  # after run(once=True): see daemon.service.once_outcome
        self._lock_fh: Any = None

    def prepare(self) -> None:
        from ..archive import Archive
        from ..daemon.service import build_sources
        from .spool import Spool

        self.sources = build_sources(self.cfg)
        if not self.sources:
            raise ValueError(f"{self.cfg.source_path or 'the config'}: a collector needs at least one source")
        state = Path(self.bus.state)
        state.parent.mkdir(parents=True, exist_ok=True)
        fh = open(str(state) + ".lock", "a+")  # noqa: SIM115 - held while running
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise ValueError(f"another collector is running with the state file {state}") from None
        self._lock_fh = fh
        self.state = Archive.open(state)
        self.spool = Spool(self.bus.spool.path, self.bus.spool.max_bytes)

    async def run(self, *, once: bool = False) -> int:
        from .connection import client
        from .publisher import Publisher

        if self.state is None:
            self.prepare()
        self.redis = client(self.bus)
        self.publisher = pub = Publisher(self.bus, self.redis, self.state, self.spool)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover
                pass
        pub.start()
        ctx = SourceContext(self.state, pub.emit, None, stop)
        tasks = [asyncio.create_task(self._run_source(n, s, ctx, once), name=f"source:{n}")
                 for n, s in self.sources.items()]
        log.info("collector running", name=pub.name, sources=list(self.sources), stream=self.bus.stream,
                 pid=os.getpid())
        try:
            if once:
                await asyncio.gather(*tasks)
            else:
                await stop.wait()
                _done, still = await asyncio.wait(tasks, timeout=3.0)
                for t in still:
                    t.cancel()
                await asyncio.gather(*still, return_exceptions=True)
        finally:
            await pub.close()
            for src in self.sources.values():
                await src.close()
            try:
                await self.redis.aclose()
            except Exception:  # pragma: no cover
                pass
            self.spool.close()
            self.state.close()
            for sig in (signal.SIGTERM, signal.SIGINT):
                try:
                    loop.remove_signal_handler(sig)
                except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover
                    pass
            if self._lock_fh is not None:
                self._lock_fh.close()
        log.info("collector stopped", **{k: v for k, v in pub.health().items() if k != "last_error"})
        if once:
            from ..daemon.service import once_outcome

            code, self.problems = once_outcome(self.cfg, self.sources, self.source_errors)
            return code
        return 0

    async def _run_source(self, name: str, source: Source, ctx: SourceContext, once: bool) -> None:
        delay = 1.0
        while True:
            try:
                await source.run(ctx, once=once)
                return
            except asyncio.CancelledError:
                raise
            except SourceStopped as exc:
                self.source_errors[name] = str(exc)
                log.error("source stopped", source=name, error=str(exc))
                return
            except Exception as exc:
                self.source_errors[name] = f"{type(exc).__name__}: {exc}"
                log.error("source failed; restarting", source=name, error=str(exc), retry_in=delay)
                if once:
                    return
                try:
                    await asyncio.wait_for(ctx.stop.wait(), timeout=delay)
                    return
                except asyncio.TimeoutError:
                    delay = min(delay * 2, 300.0)
