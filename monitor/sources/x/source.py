"""The ``x`` source: polls account timelines and recent searches through the X API v2.

Each poll round fetches, per target (an account or a search query), every post newer than
its checkpoint (``since_id``) following ``meta.next_token``, then emits the Messages
oldest first; the checkpoint travels with the message that advances it, so it is
committed together with what is stored. Account timelines and searches run as two
concurrent parts: a 429 or a 403 in one does not hold up the other.

The daemon's APScheduler runs :meth:`XSource.poll_all` every ``effective_interval``
seconds (the configured interval, or longer when ``monthly_read_cap`` requires it).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable

from ...config import XConfig
from ...durations import parse_duration
from ...logs import get_logger, register_secret
from ...model import iso
from ..base import Envelope, Source, SourceContext, SourceStopped
from . import budget
from .accounts import Account, parse_accounts, resolve_accounts
from .client import ENDPOINTS, SEARCH, TIMELINE, USERS, XApi
from .convert import page_items
from .poller import Caller, EndpointForbidden, RequestFailed, UsageCapped, fetch_pages

log = get_logger("claimwatch.x")

SOURCE = "x"
SEARCH_WINDOW = 7 * 86400.0  # recent search covers the last 7 days
SEARCH_WINDOW_MARGIN = 120.0  # start_time must be inside the window when X receives it
POLL_MAX_PAGES = 10  # pages (of 100 posts) per target per poll
BACKFILL_MAX_PAGES = 32  # a timeline returns at most its latest 3200 posts
RESCHEDULE_RATIO = 0.1  # reschedule the job when the interval changes by more than this
PART_NAMES = {TIMELINE: "account timelines", SEARCH: "searches"}


class _Stopping(Exception):
    """ctx.stop was set while waiting."""


@dataclass
class Target:
    kind: str  # TIMELINE | SEARCH
    key: str  # checkpoint channel: user id, or "search:<query>"
    label: str
    user_id: str | None = None
    query: str | None = None
    since_id: int | None = None  # newest post id emitted (may be ahead of the archive)
    start_time: datetime | None = None  # first poll without a checkpoint
    disabled: str | None = None  # a request X will never accept (bad query)
    polls: int = 0
    reported: set[str] = field(default_factory=set)  # partial errors already logged


@dataclass
class XSource(Source):
    """X API v2 collector (``sources.x``). Build with :func:`build_source`."""

    cfg: XConfig
    accounts: list[Account]
    searches: list[str]
    backfill: float
    api: XApi
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] | None = None  # default: asyncio sleep cut short by ctx.stop
    name: str = SOURCE

    stopped: dict[str, str] = field(default_factory=dict)  # part -> reason (403)
    usage: budget.Usage = field(default_factory=budget.Usage)
    usage_month: str | None = None
    effective_interval: float = 0.0
    last_plan: budget.BudgetPlan | None = None
    capped_until: datetime | None = None  # X said the monthly usage cap is reached
    errors: int = 0
    last_error: str | None = None
    last_poll_at: str | None = None
    rounds: int = 0
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ctx: SourceContext | None = None
        self._targets: dict[str, Target] = {}
        self._caller = Caller(self.api, sleep=self._sleep, clock=self.clock)
        self._lock = asyncio.Lock()
        self._job: Any = None
        self._fatal: SourceStopped | None = None
        self._fatal_event: asyncio.Event | None = None
        self._prepared = False
        self._unresolved: list[Account] = []
        self.effective_interval = self.cfg.interval

    # -- clock ----------------------------------------------------------------
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), tz=timezone.utc)

    async def _sleep(self, seconds: float) -> None:
        if self.sleep is not None:
            await self.sleep(seconds)
            return
        stop = self._ctx.stop if self._ctx is not None else None
        if stop is None:
            await asyncio.sleep(seconds)
            return
        try:
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            return
        raise _Stopping()

    # -- Source interface -----------------------------------------------------
    async def run(self, ctx: SourceContext, *, once: bool = False) -> None:
        self._ctx = ctx
        self._fatal = None
        self._fatal_event = asyncio.Event()
        await self.poll_all()
        if once:
            return
        if ctx.scheduler is None:  # library use without the daemon: poll in a loop
            while True:
                try:
                    await asyncio.wait_for(ctx.stop.wait(), timeout=self._job_seconds())
                    return
                except asyncio.TimeoutError:
                    await self.poll_all()
        self._job = ctx.scheduler.add_job(
            self._scheduled_poll, "interval", seconds=self._job_seconds(),
            max_instances=1, coalesce=True, id="x-poll", replace_existing=True,
        )
        waits = [asyncio.ensure_future(ctx.stop.wait()), asyncio.ensure_future(self._fatal_event.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
            self._remove_job()
        if self._fatal is not None and not ctx.stop.is_set():
            raise self._fatal

    def _job_seconds(self) -> float:
        """The poll interval; with the cap used up, the time left until next month."""
        if math.isinf(self.effective_interval):
            return max(self.cfg.interval, budget.seconds_left_in_month(self.now()) + 60.0)
        return self.effective_interval

    def health(self) -> dict[str, Any]:
        cap = self.cfg.monthly_read_cap
        plan = self.last_plan
        return {
            "accounts": [a.label for a in self.accounts if a.user_id],
            "unresolved_accounts": [a.ref for a in self._unresolved],
            "searches": len(self.searches),
            "interval": self.cfg.interval,
            "effective_interval": None if math.isinf(self.effective_interval) else self.effective_interval,
            "monthly_read_cap": cap,
            "reads_used": self.usage.reads,
            "reads_remaining": max(0, cap - self.usage.reads) if cap is not None else None,
            "reads_projected": plan.projected if plan else None,
            "rate_limits": {
                ep: {**r.as_dict(), "reset_at": iso(datetime.fromtimestamp(r.reset, tz=timezone.utc)) if r.reset else None}
                for ep, r in self.api.rates.items()
            },
            "stopped": dict(self.stopped),
            "paused_until": iso(self.capped_until) if self.capped_until else None,
            "polls": self.rounds,
            "last_poll_at": self.last_poll_at,
            "errors": self.errors,
            "last_error": self.last_error,
        }

    async def close(self) -> None:
        self._remove_job()
        await self.api.close()

    # -- preparation ----------------------------------------------------------
    async def prepare(self, ctx: SourceContext) -> None:
        """Resolve accounts, load this month's read counters, log the budget projection."""
        self._ctx = ctx
        if self._prepared:
            return
        if self._fatal_event is None:
            self._fatal_event = asyncio.Event()
        await self._load_usage(self.now())
        await self._resolve()
        for query in self.searches:
            key = "search:" + query
            self._targets.setdefault(key, Target(SEARCH, key, f"search {query!r}", query=query))
        if self.backfill > SEARCH_WINDOW and self.searches:
            log.warning(
                "x: recent search only reaches back 7 days; searches are backfilled for 7 days, not the "
                "configured window (full-archive search needs a higher access level)",
                backfill=budget.fmt_seconds(self.backfill),
            )
        self._replan(reschedule=False)
        if self.cfg.monthly_read_cap is not None and self.last_plan is not None:
            log.info("x: " + self.last_plan.describe())
        self._prepared = True

    async def _resolve(self) -> None:
        pending = [a for a in self.accounts if a.user_id is None or a.username is None]
        pending = pending if USERS not in self.stopped else []
        if pending:
            try:
                problems = await resolve_accounts(pending, self._ctx.archive, self.api, self._caller)  # type: ignore[union-attr]
            except EndpointForbidden as exc:
                self.stopped[USERS] = str(exc)
                await self._error(str(exc) + "; accounts given as numeric ids are still polled")
                problems = []
            except RequestFailed as exc:
                await self._error(f"{exc}; account lookup retried next poll")
                problems = []
            for p in problems:
                if p not in self.problems:
                    self.problems.append(p)
                    await self._error(p)
        self._unresolved = [a for a in self.accounts if a.user_id is None and not self._missing(a)]
        for acc in self.accounts:
            if acc.user_id and acc.user_id not in self._targets:
                self._targets[acc.user_id] = Target(TIMELINE, acc.user_id, acc.label, user_id=acc.user_id)

    def _missing(self, acc: Account) -> bool:
        return any(p.startswith(f"X: account {acc.ref} ") for p in self.problems)

    # -- polling --------------------------------------------------------------
    async def _scheduled_poll(self) -> None:
        try:
            await self.poll_all()
        except SourceStopped as exc:
            self._fatal = exc
            if self._fatal_event is not None:
                self._fatal_event.set()
        except Exception as exc:  # a scheduled job must not die silently
            log.exception("x: poll failed", error=str(exc))
            await self._error(f"X: poll failed: {type(exc).__name__}: {exc}")

    async def poll_all(self) -> None:
        """One round: every account timeline and every search, once."""
        if self._ctx is None:
            raise RuntimeError("XSource.poll_all() before run()/prepare()")
        try:
            if not self._prepared:
                await self.prepare(self._ctx)
            await self._round()
        except _Stopping:  # ctx.stop was set while waiting
            return

    async def _round(self) -> None:
        async with self._lock:
            now = self.now()
            if budget.month_key(now) != self.usage_month:
                await self._load_usage(now)
                self.capped_until = None
            if self.capped_until is not None and now < self.capped_until:
                return
            if self._budget_left() == 0:
                log.warning("x: monthly read cap used up; not polling until next month", used=self.usage.reads)
                return
            if self._unresolved:
                await self._resolve()
            parts = [
                self._poll_part(kind, [t for t in self._targets.values() if t.kind == kind])
                for kind in (TIMELINE, SEARCH)
                if kind not in self.stopped and any(t.kind == kind for t in self._targets.values())
            ]
            results = await asyncio.gather(*parts, return_exceptions=True)
            self.rounds += 1
            self.last_poll_at = iso(self.now())
            await self._save_usage()
            self._replan(reschedule=True)
            for res in results:
                if isinstance(res, SourceStopped):
                    await self._error(str(res))
                    raise res
                if isinstance(res, _Stopping):
                    return
                if isinstance(res, BaseException):
                    raise res
            self._check_all_stopped()

    def _check_all_stopped(self) -> None:
        active = {t.kind for t in self._targets.values() if not t.disabled} - set(self.stopped)
        if active or (self._unresolved and USERS not in self.stopped):
            return
        reasons = [*self.stopped.values(), *(t.disabled for t in self._targets.values() if t.disabled), *self.problems]
        raise SourceStopped("; ".join(r for r in reasons if r) or "X: nothing left to poll")

    async def _poll_part(self, kind: str, targets: list[Target]) -> None:
        for target in targets:
            if target.disabled:
                continue
            try:
                await self._poll_target(target)
            except EndpointForbidden as exc:
                others = [PART_NAMES[k] for k in (TIMELINE, SEARCH) if k != kind and k not in self.stopped]
                msg = f"{exc}. {PART_NAMES[kind].capitalize()} stopped" + (
                    f"; {' and '.join(others)} continue." if others else "."
                )
                self.stopped[kind] = msg
                log.error("x: endpoint not available", endpoint=ENDPOINTS[kind], error=msg)
                await self._error(msg)
                return
            except UsageCapped as exc:
                self.capped_until = budget.month_end(self.now())
                await self._error(str(exc))
                return
            except RequestFailed as exc:
                if exc.permanent and kind == SEARCH:
                    target.disabled = f"{exc} (search {target.query!r} disabled)"
                    await self._error(target.disabled)
                else:
                    await self._error(f"{exc} ({target.label}; retried next poll)")

    async def _poll_target(self, target: Target) -> None:
        ctx = self._ctx
        assert ctx is not None
        since = target.since_id
        stored = await asyncio.to_thread(self._read_checkpoint, target.key)
        if stored is not None and stored.isdigit() and (since is None or int(stored) > since):
            since = int(stored)
        start_time: str | None = None
        backfill = since is None and target.polls == 0  # first poll of a target with no checkpoint
        if since is None:
            now = self.now()
            if target.start_time is None:
                target.start_time = now - timedelta(seconds=self.backfill)
            start = target.start_time
            if target.kind == SEARCH:
                start = max(start, now - timedelta(seconds=SEARCH_WINDOW - SEARCH_WINDOW_MARGIN))
            start_time = start.strftime("%Y-%m-%dT%H:%M:%SZ")
        since_s = str(since) if since is not None else None

        if target.kind == TIMELINE:
            def request(token: str | None) -> Awaitable[dict[str, Any]]:
                return self.api.user_tweets(target.user_id or "", since_id=since_s, start_time=start_time,
                                            pagination_token=token)
        else:
            def request(token: str | None) -> Awaitable[dict[str, Any]]:
                return self.api.search_recent(target.query or "", since_id=since_s, start_time=start_time,
                                              next_token=token)

        fetched = await fetch_pages(
            self._caller, target.kind, request,
            max_pages=BACKFILL_MAX_PAGES if backfill else POLL_MAX_PAGES,
            max_reads=self._budget_left(),
        )
        self.usage.reads += fetched.reads
        if not backfill:
            self.usage.polls += 1
            self.usage.poll_reads += fetched.reads
        target.polls += 1

        bad: list[str] = []
        items = [it for page in fetched.pages for it in page_items(page, bad)]
        for reason in bad:
            await self._error(f"X: {target.label}: post skipped: {reason}")
        for err in fetched.errors:  # e.g. a suspended or protected account: once per target
            detail = str(err.get("detail") or err.get("title") or err)
            if detail not in target.reported:
                target.reported.add(detail)
                await self._error(f"X: {target.label}: {detail}")
        if fetched.truncated:
            what = "backfill" if backfill else "poll"
            msg = (f"X: {target.label}: {what} stopped after {fetched.reads} posts "
                   f"({'read budget' if self._budget_left() == 0 else 'page limit'}); older posts were not read")
            if backfill:
                log.warning(msg)
            else:
                await self._error(msg)

        items.sort(key=lambda it: (it.post_id, it.latest))
        newest = since
        for item in items:
            checkpoint = None
            if item.latest and (newest is None or item.post_id > newest):
                newest = item.post_id
                checkpoint = (target.key, str(newest))
            await ctx.emit(Envelope(item.message, SOURCE, checkpoint))
        target.since_id = newest
        if items:
            log.info("x: polled", target=target.label, posts=len(items), since_id=since_s, newest=newest)

    # -- budget ---------------------------------------------------------------
    def _budget_key(self, now: datetime) -> str:
        return "budget:" + budget.month_key(now)

    async def _load_usage(self, now: datetime) -> None:
        value = await asyncio.to_thread(self._read_checkpoint, self._budget_key(now))
        self.usage = budget.Usage.from_json(value)
        self.usage_month = budget.month_key(now)

    async def _save_usage(self) -> None:
        if self.usage_month is None or self._ctx is None:
            return
        await asyncio.to_thread(
            self._ctx.archive.set_checkpoint, SOURCE, "budget:" + self.usage_month, self.usage.to_json()
        )

    def _budget_left(self) -> int | None:
        cap = self.cfg.monthly_read_cap
        return None if cap is None else max(0, cap - self.usage.reads)

    def _active_targets(self) -> int:
        return sum(1 for t in self._targets.values() if not t.disabled and t.kind not in self.stopped)

    def _replan(self, *, reschedule: bool) -> None:
        cap = self.cfg.monthly_read_cap
        if cap is None:
            self.effective_interval = self.cfg.interval
            return
        self.last_plan = budget.plan(
            cap=cap, usage=self.usage, now=self.now(), targets=max(1, self._active_targets()),
            interval=self.cfg.interval,
        )
        new = self.last_plan.effective_interval
        old = self.effective_interval
        self.effective_interval = new
        if not reschedule or self._job is None or math.isinf(new):
            return
        if math.isinf(old) or abs(new - old) > RESCHEDULE_RATIO * max(old, 1.0):
            log.info("x: poll interval changed for the read budget", interval=budget.fmt_seconds(new),
                     projection=self.last_plan.describe())
            try:
                self._job.reschedule("interval", seconds=new)
            except Exception as exc:  # pragma: no cover - job gone (shutdown)
                log.warning("x: could not reschedule poll job", error=str(exc))

    # -- helpers ----------------------------------------------------------------
    def _read_checkpoint(self, channel: str) -> str | None:
        """(in a worker thread) under the archive lock, as the pipeline writes."""
        assert self._ctx is not None
        with self._ctx.archive.lock:
            return self._ctx.checkpoint(SOURCE, channel)

    async def _error(self, message: str) -> None:
        self.errors += 1
        self.last_error = message
        log.warning(message)
        if self._ctx is not None:
            try:
                await asyncio.to_thread(self._ctx.archive.record_source_status, SOURCE, error=message)
            except Exception as exc:  # pragma: no cover - status is best effort
                log.warning("x: could not record source status", error=str(exc))

    def _remove_job(self) -> None:
        if self._job is not None:
            try:
                self._job.remove()
            except Exception:  # already removed / scheduler shut down
                pass
            self._job = None


def build_source(xcfg: XConfig, **kwargs: Any) -> XSource:
    """Validate ``sources.x`` and build the source (no network until ``run``).

    Raises ValueError naming the field for an unusable configuration.
    """
    token = xcfg.bearer_token.get_secret_value().strip() if xcfg.bearer_token else ""
    if not token:
        raise ValueError("sources.x.bearer_token: not set (use \"${X_BEARER_TOKEN}\")")
    register_secret(token)
    accounts = parse_accounts(xcfg.accounts)
    searches: list[str] = []
    for i, q in enumerate(xcfg.searches):
        if not isinstance(q, str) or not q.strip():
            raise ValueError(f"sources.x.searches[{i}]: empty query")
        if q.strip() not in searches:
            searches.append(q.strip())
    if not accounts and not searches:
        raise ValueError("sources.x: no accounts or searches to poll")
    try:
        backfill = parse_duration(xcfg.backfill)
    except ValueError as exc:
        raise ValueError(f"sources.x.backfill: {exc}") from None
    if xcfg.interval <= 0:
        raise ValueError("sources.x.interval: must be more than 0")
    if xcfg.monthly_read_cap is not None and xcfg.monthly_read_cap <= 0:
        raise ValueError("sources.x.monthly_read_cap: must be more than 0")
    api = kwargs.pop("api", None) or XApi(token, base_url=xcfg.base_url)
    return XSource(cfg=xcfg, accounts=accounts, searches=searches, backfill=backfill, api=api, **kwargs)
