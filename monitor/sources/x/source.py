"""The ``x`` source: polls account timelines and recent searches through the X API v2.

Each poll round fetches, per target (an account or a search query), every post newer than
its checkpoint (``since_id``) following ``meta.next_token``, then emits the Messages
oldest first; the checkpoint travels with the message that advances it, so it is
committed together with what is stored, and the in-memory ``since_id`` advances only when
the pipeline says that message committed (``Envelope.on_commit``). Account timelines and
searches run as two concurrent parts: a 429 or a 403 in one does not hold up the other.

Nothing is skipped when a poll is cut short (page limit, read budget): X sends the newest
posts first, so the posts between the old ``since_id`` and the oldest post read are kept as
a *gap* in the checkpoint (``{"since_id": ..., "gaps": [...]}``) and read on the next polls
with ``until_id`` (newest first inside the gap, continuing downwards). A search whose
``since_id`` fell out of the 7-day window of recent search asks from the window's start
(``start_time``) instead; what lay before it cannot be read and is reported.

The daemon's APScheduler runs :meth:`XSource.poll_all` every ``effective_interval``
seconds (the configured interval, or longer when ``monthly_read_cap`` requires it).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable

from ...config import XConfig
from ...durations import parse_duration
from ...logs import get_logger, register_secret
from ...model import iso
from ...timefmt import exact_duration
from ..base import Envelope, Source, SourceContext, SourceStopped
from . import budget
from .accounts import Account, parse_accounts, resolve_accounts
from .client import ENDPOINTS, MIN_PAGE, PAGE_SIZE, SEARCH, TIMELINE, USERS, XApi
from .convert import page_items, snowflake_time
from .poller import Caller, EndpointForbidden, Fetched, RequestFailed, UsageCapped, fetch_pages

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


@dataclass(frozen=True)
class Gap:
    """Posts not read yet: ids above ``after`` (or from ``start``) and below ``before``."""

    before: int
    after: int | None = None
    start: str | None = None  # start_time when there is no lower id (a cut-short backfill)

    def to_json(self) -> dict[str, str]:
        d = {"before": str(self.before)}
        if self.after is not None:
            d["after"] = str(self.after)
        if self.start is not None:
            d["start"] = self.start
        return d


@dataclass(frozen=True)
class Progress:
    """A target's checkpoint: the newest post read, and the gaps below it still to read."""

    since_id: int | None = None
    gaps: tuple[Gap, ...] = ()

    def encode(self) -> str:
        if not self.gaps:
            return str(self.since_id) if self.since_id is not None else ""
        return json.dumps({"since_id": str(self.since_id) if self.since_id is not None else None,
                           "gaps": [g.to_json() for g in self.gaps]}, separators=(",", ":"))

    @classmethod
    def decode(cls, value: str | None) -> "Progress | None":
        """The stored checkpoint (a bare id, as written before gaps existed, or JSON); None if unusable."""
        if not value:
            return None
        if value.isdigit():
            return cls(int(value))
        try:
            d = json.loads(value)
            since = d.get("since_id")
            gaps = tuple(Gap(int(g["before"]), int(g["after"]) if g.get("after") else None, g.get("start"))
                         for g in d.get("gaps") or [])
            return cls(int(since) if since else None, gaps)
        except (ValueError, TypeError, KeyError, AttributeError):
            log.warning("x: unreadable checkpoint ignored", value=value[:200])
            return None


@dataclass
class Target:
    kind: str  # TIMELINE | SEARCH
    key: str  # checkpoint channel: user id, or "search:<query>"
    label: str
    user_id: str | None = None
    query: str | None = None
    since_id: int | None = None  # newest post id the archive committed (from on_commit)
    gaps: tuple[Gap, ...] = ()  # posts below since_id not read yet (committed with it)
    loaded: bool = False  # the stored checkpoint has been read
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
    poll_max_pages: int = POLL_MAX_PAGES  # pages per target per poll (gaps included)

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
                backfill=exact_duration(self.backfill),
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

    def _window_start(self) -> datetime:
        """The oldest time recent search still covers (with a margin for the request's trip)."""
        return self.now() - timedelta(seconds=SEARCH_WINDOW - SEARCH_WINDOW_MARGIN)

    async def _poll_target(self, target: Target) -> None:
        ctx = self._ctx
        assert ctx is not None
        if not target.loaded:
            stored = await asyncio.to_thread(self._read_checkpoint, target.key)
            progress = Progress.decode(stored)
            if progress is not None:
                target.since_id, target.gaps = progress.since_id, progress.gaps
            target.loaded = True
        before = Progress(target.since_id, target.gaps)
        since = target.since_id
        backfill = since is None and target.polls == 0  # first poll of a target with no checkpoint
        pages_left = BACKFILL_MAX_PAGES if backfill else self.poll_max_pages
        start_time: str | None = None
        now = self.now()
        if since is None:
            if target.start_time is None:
                target.start_time = now - timedelta(seconds=self.backfill)
            start = target.start_time
            if target.kind == SEARCH:
                start = max(start, self._window_start())
            start_time = iso(start)
        elif target.kind == SEARCH and snowflake_time(since) < self._window_start():
            # X answers 400 to a since_id older than 7 days: ask from the window's start.
            start_time = iso(self._window_start())
            await self._error(
                f"X: {target.label}: not polled since {iso(snowflake_time(since))}, beyond the 7 days recent "
                f"search covers; posts before {start_time} cannot be read (reading from there)")
            since = None

        # 1. the head: everything newer than since_id (newest first)
        try:
            head = await self._fetch(target, since, start_time, None, pages_left)
        except RequestFailed as exc:
            if target.kind != SEARCH or since is None or "since_id" not in exc.parameters:
                raise
            # X judged the since_id too old (its clock, or a slow request): from the window's start.
            start_time = iso(self._window_start())
            await self._error(f"{exc} ({target.label}: asking from {start_time} instead)")
            since = None
            head = await self._fetch(target, None, start_time, None, pages_left)
        pages_left -= len(head.pages)
        self.usage.reads += head.reads
        fetches = [head]
        head_items = await self._items(target, head)
        head_gap: Gap | None = None
        if head.truncated and head_items:
            oldest = min(it.post_id for it in head_items)
            head_gap = Gap(oldest, since, start_time if since is None else None)

        # 2. the gaps left by earlier polls (newest gap first), with the pages left
        gaps = list(target.gaps)
        gap_items: list[Any] = []
        for gap in sorted(target.gaps, key=lambda g: g.before, reverse=True):
            after, gstart = gap.after, gap.start
            if target.kind == SEARCH:
                window = self._window_start()
                if snowflake_time(gap.before) < window:
                    gaps.remove(gap)
                    await self._error(
                        f"X: {target.label}: posts before {iso(snowflake_time(gap.before))} were not read and "
                        f"are now older than the 7 days recent search covers")
                    continue
            if pages_left <= 0 or head.budget_hit:
                continue
                if after is not None and snowflake_time(after) < window:
                    after, gstart = None, iso(window)
                elif after is None:
                    gstart = iso(max(window, datetime.strptime(gstart, "%Y-%m-%dT%H:%M:%SZ").replace(
                        tzinfo=timezone.utc))) if gstart else iso(window)
            try:
                got = await self._fetch(target, after, gstart, gap.before, pages_left)
            except RequestFailed as exc:  # the gap stays for the next poll; the head is stored
                await self._error(f"{exc} ({target.label}: gap left for the next poll)")
                break
            pages_left -= len(got.pages)
            self.usage.reads += got.reads
            fetches.append(got)
            items = await self._items(target, got)
            gaps.remove(gap)
            if got.truncated and items:
                gaps.append(Gap(min(it.post_id for it in items), gap.after, gap.start))
            elif got.truncated:  # nothing read (budget): the gap stays as it was
                gaps.append(gap)
            gap_items.extend(items)
            if got.budget_hit:
                pages_left = 0
        if head_gap is not None:
            gaps.append(head_gap)

        reads = sum(f.reads for f in fetches)
        if not backfill:
            self.usage.polls += 1
            self.usage.poll_reads += reads
        target.polls += 1
        for fetched in fetches:
            for err in fetched.errors:  # e.g. a suspended or protected account: once per target
                detail = str(err.get("detail") or err.get("title") or err)
                if detail not in target.reported:
                    target.reported.add(detail)
                    await self._error(f"X: {target.label}: {detail}")
        if head.truncated or any(f.truncated for f in fetches[1:]):
            what = "backfill" if backfill else "poll"
            why = "read budget" if any(f.budget_hit for f in fetches) else "page limit"
            msg = (f"X: {target.label}: {what} stopped after {reads} posts ({why}); the older posts are kept "
                   f"as a gap and read by the next polls")
            log.warning(msg, gaps=len(gaps))

        # 3. emit oldest first; per post the checkpoint says what is stored up to it
        newest = max([it.post_id for it in head_items if it.latest], default=None)
        final = Progress(newest if newest is not None and (since is None or newest > since) else since,
                         tuple(gaps))
        if final.since_id is None and before.since_id is not None:  # stale search since_id, nothing new
            final = Progress(before.since_id, final.gaps)
        items = sorted(gap_items, key=lambda it: (it.post_id, it.latest))
        items += sorted(head_items, key=lambda it: (it.post_id, it.latest))
        # Until the last post, gap progress is not claimed (conservative: a crash re-reads).
        head_gaps = tuple(before.gaps) + ((head_gap,) if head_gap is not None else ())
        in_head = {id(it) for it in head_items}
        last_latest = max((i for i, it in enumerate(items) if it.latest), default=None)
        running = before.since_id if since is not None else None
        for i, item in enumerate(items):
            progress: Progress | None = None
            if i == last_latest:
                progress = final
            elif item.latest and id(item) in in_head and (running is None or item.post_id > running):
                running = item.post_id
                progress = Progress(running, head_gaps)
            checkpoint = (target.key, progress.encode()) if progress is not None else None
            on_commit = self._committer(target, progress) if progress is not None else None
            await ctx.emit(Envelope(item.message, SOURCE, checkpoint, on_commit=on_commit))
        if last_latest is None and final != before:
            # Nothing to store, but the checkpoint changed (a gap found empty, a stale since_id).
            await asyncio.to_thread(self._write_checkpoint, target.key, final.encode())
            target.since_id, target.gaps = final.since_id, final.gaps
        if items:
            log.info("x: polled", target=target.label, posts=len(items), since_id=since,
                     newest=final.since_id, gaps=len(final.gaps))

    def _committer(self, target: Target, progress: Progress) -> Callable[[], None]:
        def on_commit() -> None:
            if target.since_id is None or progress.since_id is None or progress.since_id >= target.since_id:
                target.since_id, target.gaps = progress.since_id, progress.gaps
        return on_commit

    async def _fetch(self, target: Target, since: int | None, start_time: str | None, until: int | None,
                     max_pages: int) -> Fetched:
        since_s = str(since) if since is not None else None
        until_s = str(until) if until is not None else None
        if target.kind == TIMELINE:
            def request(token: str | None, size: int) -> Awaitable[dict[str, Any]]:
                return self.api.user_tweets(target.user_id or "", since_id=since_s, start_time=start_time,
                                            until_id=until_s, pagination_token=token, max_results=size)
        else:
            def request(token: str | None, size: int) -> Awaitable[dict[str, Any]]:
                return self.api.search_recent(target.query or "", since_id=since_s, start_time=start_time,
                                              until_id=until_s, next_token=token, max_results=size)
        return await fetch_pages(self._caller, target.kind, request, max_pages=max(1, max_pages),
                                 max_reads=self._budget_left(), page_size=PAGE_SIZE,
                                 min_page=MIN_PAGE[target.kind])

    async def _items(self, target: Target, fetched: Fetched) -> list[Any]:
        bad: list[str] = []
        items = [it for page in fetched.pages for it in page_items(page, bad)]
        for reason in bad:
            await self._error(f"X: {target.label}: post skipped: {reason}")
        return items

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
            log.info("x: poll interval changed for the read budget", interval=exact_duration(new),
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

    def _write_checkpoint(self, channel: str, value: str) -> None:
        """(in a worker thread) a checkpoint that changed without a post to carry it."""
        assert self._ctx is not None
        self._ctx.archive.set_checkpoint(SOURCE, channel, value)

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
