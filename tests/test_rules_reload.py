"""The daemon's rule set at start-up and after a hot reload: the first messages are served
from the cached set before its lazy work (regex compilation) is done, and a replaced set is
freed in steps, never while something still uses it."""

from __future__ import annotations

import asyncio
import gc
import os
import weakref
from pathlib import Path

import pytest

import reload_worker_jobs
from daemon_helpers import canonical_line, db_rows, wait_for, write_config, feed_first_hit
from monitor.archive import Archive
from monitor.config import load_config
from monitor.daemon import Daemon, Pipeline
from monitor.daemon import rules_state as rs_mod
from monitor.daemon.rules_state import RulesState, _emptied
from monitor.model import Message
from monitor.rules.cache import load_matcher
from monitor.sources.base import Envelope

from rules_helpers import msg, write, WATCH_RULE, cache  # noqa: F401 (cache is a fixture)

REGEX_RULE = """\
id: wilayah
level: high
match:
  w:
    regex: ['wilayat\\s+\\pL+', 'emirate\\s+of\\s+\\pL+', 'province\\s+of\\s+\\pL+']
"""

WATCH = WATCH_RULE


def _compiled(matcher) -> tuple[int, int]:  # noqa: ANN001
    return matcher.regexes_compiled()


async def test_start_up_serves_messages_from_the_cache_before_the_lazy_work_is_done(tmp_path, cache, monkeypatch) -> None:
    """A restart with unchanged rules reads the cached set and matches the first messages at
    once; the regexes compile afterwards (paced on the event loop) or when a message needs
    one; the daemon does not wait for them."""
    cfg = load_config(write_config(tmp_path, None, None))
    write(tmp_path / "rules" / "wilayah.yml", REGEX_RULE)
    load_matcher([cfg.rules], known_destinations=cfg.destination_names(), default_destinations=tuple(cfg.alerts.default))
    gate = asyncio.Event()
    real = rs_mod._compile_regexes

    async def held(*a, **kw):  # the lazy work waits until the test has seen messages served
        await gate.wait()
        return await real(*a, **kw)

    monkeypatch.setattr(rs_mod, "_compile_regexes", held)
    daemon = Daemon(cfg)
    daemon.prepare()
    assert daemon.rules.cache_status == "hit" and daemon.rules.lazy_pending
    assert _compiled(daemon.rules.get()) == (0, 3)  # nothing compiled ahead at start-up
    task = asyncio.create_task(daemon.run())
    try:
        feed, db = await feed_first_hit(tmp_path)
        assert daemon.rules.lazy_pending and _compiled(daemon.rules.get())[0] == 0
        with feed.open("a", encoding="utf-8") as fh:  # a message that needs a regex compiles it
            fh.write(canonical_line(2, "a statement of wilayat sinai"))
        await wait_for(lambda: len(db_rows(db, "select id from hits where rule_id = 'wilayah'")) == 1, 120,
                       "regex hit")
        assert _compiled(daemon.rules.get())[0] == 1 and daemon.rules.lazy_pending
        gate.set()
        await wait_for(lambda: not daemon.rules.lazy_pending, 120, "lazy work done")
        assert _compiled(daemon.rules.get()) == (3, 3)
    finally:
        daemon.request_stop()
        assert await asyncio.wait_for(task, 15) == 0


def _state(tmp_path: Path, d: Path) -> RulesState:
    cfg = load_config(write_config(tmp_path, None, None))
    st = RulesState(cfg, str(d), reload_in="process")
    st.load()
    return st


def _rules(tmp_path: Path) -> Path:
    d = tmp_path / "watchrules"
    write(d / "watch.yml", WATCH)
    write(d / "lists" / "names.csv", "".join(f"Name{i} Surname{i}\n" for i in range(300)))
    write(d / "wilayah.yml", REGEX_RULE)
    return d


async def test_the_replaced_set_is_freed_once_the_pipeline_let_go_of_it(tmp_path, cache, db_path) -> None:
    d = _rules(tmp_path)
    st = _state(tmp_path, d)
    old = weakref.ref(st.get())
    archive = Archive.open(db_path)
    pipe = Pipeline(archive, st.get, batch_wait=0.001)
    pipe.start()
    try:
        write(d / "watch.yml", WATCH.replace("Kerman", "Zahedan"))
        reload = asyncio.create_task(st.reload_async())
        n = 0
        while not reload.done():
            await pipe.emit(Envelope(event=msg("Name7 Surname7 spoke", message_id=str(n)), source="t"))
            n += 1
            await asyncio.sleep(0.001)
        assert await reload
        for k in range(5):  # the matcher stage lets go of the old set at its next message
            await pipe.emit(Envelope(event=msg("Name7 Surname7 in Zahedan", message_id=f"after{k}"), source="t"))
        await asyncio.wait_for(st.released(), 30)
        gc.collect()
        assert old() is None
        # the new set's regexes: compiled after the swap (paced), as at start-up
        assert await asyncio.wait_for(st._lazy_task, 30) and not st.lazy_pending
        assert _compiled(st.get()) == (3, 3)
        await pipe.close()
    finally:
        archive.close()
    assert [h.rule_id for h in st.get().match(msg("blast in Zahedan"))] == ["watch"]


async def test_a_replaced_set_still_in_use_is_left_whole(tmp_path, cache, monkeypatch) -> None:
    """Something else holds the old set (a slow consumer): it is not taken apart, and still
    matches as before; it is freed where its last reference goes."""
    monkeypatch.setattr(rs_mod, "RELEASE_WAIT", 0.3)
    d = _rules(tmp_path)
    st = _state(tmp_path, d)
    kept = st.get()
    before = [h.rule_id for h in kept.match(msg("Name7 Surname7 in Kerman"))]
    write(d / "watch.yml", WATCH.replace("Kerman", "Zahedan"))
    assert await st.reload_async()
    await asyncio.wait_for(st.released(), 30)
    assert [h.rule_id for h in kept.match(msg("Name7 Surname7 in Kerman"))] == before == ["watch"]
    assert [h.rule_id for h in kept.match(msg("Name250 Surname250"))] == ["watch"]
    assert [h.rule_id for h in st.get().match(msg("Kerman"))] == []
    old = weakref.ref(kept)
    del kept
    assert old() is None


def test_freeing_in_steps_leaves_shared_objects_whole() -> None:
    shared = {i: [i] * 3 for i in range(500)}
    held = list(range(1000))

    class Part:
        def __init__(self) -> None:
            self.big = {i: (i, str(i)) for i in range(1000)}
            self.shared = shared

    parts = [Part() for _ in range(5)]
    refs = [weakref.ref(p) for p in parts]
    kept = parts[4]
    root = {"a": parts[0], "b": parts[1:3], "c": ("x", parts[3]), "d": held, "e": shared, "f": kept}
    del parts
    steps = list(_emptied([root]))
    assert steps and root == {}
    assert [r() is None for r in refs] == [True, True, True, True, False]
    assert len(kept.big) == 1000 and kept.shared is shared  # held elsewhere: untouched
    assert len(shared) == 500 and shared[7] == [7, 7, 7]
    assert held == list(range(1000))


def _watch_state(tmp_path: Path, mode: str) -> tuple[RulesState, Path]:
    d = tmp_path / "rules"
    write(d / "watch.yml", WATCH)
    write(d / "lists" / "names.csv", "Yahya Saree\n")
    st = RulesState(load_config(write_config(tmp_path, None, None)), str(d), reload_in=mode)
    st.load()
    return st, d


def _hit_ids(st: RulesState, text: str) -> list[str]:
    return [h.rule_id for h in st.get().match(msg(text))]


async def test_a_request_made_before_the_worker_read_the_files_is_not_checked_again(tmp_path, cache, monkeypatch) -> None:
    """SIGHUP then the folder watch's request a moment later, while the worker starts: the
    worker took the files' key after both, so the daemon neither builds again nor hashes the
    files again itself (a thread holding the GIL beside the pipeline)."""
    st, d = _watch_state(tmp_path, "process")
    hashed: list[object] = []
    real_key = rs_mod.source_key
    monkeypatch.setattr(rs_mod, "source_key", lambda *a, **k: hashed.append(a) or real_key(*a, **k))
    write(d / "watch.yml", WATCH.replace("Kerman", "Zahedan"))
    first = asyncio.ensure_future(st.reload_async())
    await asyncio.sleep(0)  # the first request is under way: the second one joins it
    assert await st.reload_async() is True
    assert await first is True
    assert st.reloads == 1
    assert hashed == []  # decided from the worker's key time, no key taken in the daemon
    assert _hit_ids(st, "Zahedan") == ["watch"]


async def test_a_request_after_the_files_were_read_reloads_the_edit(tmp_path, cache, monkeypatch) -> None:
    """An edit (and its request) after the build read the files is not lost: the files are
    checked again and the edit is loaded by a second build."""
    st, d = _watch_state(tmp_path, "thread")
    read = asyncio.Event()
    loop = asyncio.get_running_loop()
    real_load = rs_mod.load_matcher
    calls: list[int] = []

    def slow_load(*a, **k):  # noqa: ANN002, ANN003
        m = real_load(*a, **k)
        calls.append(1)
        if len(calls) == 1:  # the files are read: now the edit comes, before this build is done
            loop.call_soon_threadsafe(read.set)
            import time as _t

            _t.sleep(0.5)
        return m

    monkeypatch.setattr(rs_mod, "load_matcher", slow_load)
    write(d / "watch.yml", WATCH.replace("Kerman", "Zahedan"))
    first = asyncio.ensure_future(st.reload_async())
    await read.wait()
    write(d / "watch.yml", WATCH.replace("Kerman", "Bushehr"))
    assert await st.reload_async() is True
    assert await first is True
    assert st.reloads == 2 and len(calls) == 2
    assert _hit_ids(st, "Bushehr") == ["watch"] and _hit_ids(st, "Zahedan") == []


# run in the spawned worker process by the tests below (importable by name there)
def _child_answer(marker: str) -> tuple[int, str]:
    import atexit

    atexit.register(lambda: Path(marker).write_text("torn down"))  # skipped by os._exit
    return os.getpid(), "built"


def _child_big(n: int) -> str:
    return "ي" * n


def _child_raises(text: str) -> None:
    raise ValueError(text)


def _child_dies(code: int) -> None:
    os._exit(code)


def _child_sleeps(pid_file: str) -> None:
    import time as _t

    Path(pid_file).write_text(str(os.getpid()))
    _t.sleep(120)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_the_build_worker_answers_then_ends_without_tearing_down(tmp_path) -> None:
    """The worker's answer comes back; the process then ends at once (no interpreter
    teardown: what it built is never freed object by object) and is reaped."""
    marker = tmp_path / "teardown"
    pid, what = await rs_mod._in_process(_child_answer, str(marker))
    assert what == "built" and pid != os.getpid()
    await wait_for(lambda: not _alive(pid), timeout=10)
    assert not marker.exists()
    # an answer far larger than the pipe's buffer arrives whole, read as it comes
    assert await rs_mod._in_process(_child_big, 3_000_000) == "ي" * 3_000_000


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling policies")
async def test_the_build_worker_runs_at_idle_priority_from_its_start(tmp_path, monkeypatch) -> None:
    """The worker is at SCHED_IDLE before its job runs (set as its interpreter starts, not by
    the job: its start and imports never compete with the daemon at normal priority), and it
    imports the rules code only: not multiprocessing, not the daemon or the CLI that started it."""
    from monitor.rules import build_worker

    monkeypatch.setattr(build_worker, "RAISE_STEPS", ())  # a busy host's starved start is not raised here
    policy, imported = await rs_mod._in_process(reload_worker_jobs.start_state)
    assert policy == os.SCHED_IDLE
    assert imported == []
    pid, fd = rs_mod.spawn_worker(reload_worker_jobs.start_state, ())
    try:
        # already so when posix_spawn has returned: the interpreter's start runs at idle
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE
    finally:
        os.close(fd)
        os.waitpid(pid, 0)


async def test_a_failing_or_dying_build_worker_is_an_error_in_the_daemon(tmp_path) -> None:
    with pytest.raises(ValueError, match="bad rules folder"):
        await rs_mod._in_process(_child_raises, "bad rules folder")
    with pytest.raises(RuntimeError, match="died .exit code 3"):
        await rs_mod._in_process(_child_dies, 3)


async def test_a_cancelled_reload_ends_its_build_worker(tmp_path) -> None:
    """Shutdown cancels a reload under way: its worker is killed, not left building."""
    pid_file = tmp_path / "pid"
    task = asyncio.ensure_future(rs_mod._in_process(_child_sleeps, str(pid_file)))
    await wait_for(lambda: pid_file.exists() and pid_file.read_text().strip() != "", timeout=120)
    pid = int(pid_file.read_text())
    assert _alive(pid)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not _alive(pid)


MORE_REGEX_RULE = """\
id: emirate
level: high
match:
  e:
    regex: ['emirate\\s+of\\s+\\pL+', 'caliphate\\s+of\\s+\\pL+']
"""


async def test_a_reload_reuses_the_regexes_the_replaced_set_compiled(tmp_path, cache) -> None:
    """Patterns the replaced set has compiled are not compiled again for the new set (the same
    RE2 objects, shared); only the new pattern is left to compile, and the hits are those of
    a set compiled from scratch."""
    d = tmp_path / "rules"
    write(d / "wilayah.yml", REGEX_RULE)
    st = RulesState(load_config(write_config(tmp_path, None, None)), str(d), reload_in="process")
    st.load()
    old = st.get()
    old.prepare()
    before = {p: list.__getitem__(c, i) for c, i, p in rs_mod._regex_slots(old)}
    assert len(before) == 3 and all(v is not None for v in before.values())
    write(d / "emirate.yml", MORE_REGEX_RULE)
    assert await st.reload_async() is True
    new = st.get()
    assert new is not old
    slots = {p: list.__getitem__(c, i) for c, i, p in rs_mod._regex_slots(new)}
    assert set(slots) == set(before) | {"caliphate\\s+of\\s+\\pL+"}
    for pattern, compiled in before.items():
        assert slots[pattern] is compiled  # carried over, not compiled again
    text = "the caliphate of Khorasan and the emirate of Kabul in wilayat Sinai"
    fresh = load_matcher([d], cache=False)
    assert sorted(h.rule_id for h in new.match(msg(text))) == sorted(h.rule_id for h in fresh.match(msg(text)))
    assert sorted(h.rule_id for h in new.match(msg(text))) == ["emirate", "wilayah"]
    await st.close()


def _build_dies(paths, known, defaults, directory):  # noqa: ANN001 - run in the worker in place of the build
    os._exit(3)


@pytest.mark.parametrize("how", ["invalid", "worker dies"])
async def test_a_failed_reload_keeps_the_old_set_and_logs_one_line(tmp_path, cache, monkeypatch, how) -> None:
    """Invalid rules, or a build worker that dies: the old set stays in force (same object,
    same hits), one error line is logged and the default destinations are told once."""
    from structlog.testing import capture_logs

    st, d = _watch_state(tmp_path, "process")
    notices: list[str] = []
    st.on_error = notices.append
    before = st.get()
    if how == "invalid":
        write(d / "watch.yml", WATCH.replace("level: high", "level: loud"))
    else:
        monkeypatch.setattr(rs_mod, "_build_at_low_priority", _build_dies)
        write(d / "watch.yml", WATCH.replace("Kerman", "Zahedan"))
    with capture_logs() as logs:
        assert await st.reload_async() is False
    errors = [e for e in logs if e["log_level"] == "error"]
    assert [e["event"] for e in errors] == ["rules reload failed; keeping the previous rules"]
    assert len(notices) == 1
    if how == "invalid":
        assert "unknown level 'loud'" in notices[0] and "watch.yml" in notices[0]
    else:
        assert "died (exit code 3)" in notices[0]
    assert st.get() is before and st.reloads == 0 and st.last_error == notices[0]
    assert _hit_ids(st, "Kerman") == ["watch"] and _hit_ids(st, "Zahedan") == []


def _may_raise_from_idle() -> bool:
    """Whether this process may move a child from SCHED_IDLE back to the normal policy at nice 0
    (CAP_SYS_NICE or RLIMIT_NICE): tried on a real child."""
    import subprocess

    from monitor.rules import build_worker

    if not hasattr(os, "SCHED_IDLE"):
        return False
    child = subprocess.Popen(["sleep", "30"])
    try:
        os.sched_setscheduler(child.pid, os.SCHED_IDLE, os.sched_param(0))
        return build_worker.to_nice(child.pid, os.getpriority(os.PRIO_PROCESS, 0))
    finally:
        child.kill()
        child.wait()


@pytest.mark.skipif(not _may_raise_from_idle(), reason="leaving SCHED_IDLE needs CAP_SYS_NICE or RLIMIT_NICE")
async def test_a_starved_build_worker_is_raised_a_step_at_a_time(monkeypatch) -> None:
    """A worker that gets no CPU (this one sleeps) is moved from SCHED_IDLE to the normal
    policy at nice 10, then at the daemon's own priority, a step each time it has been starved
    for STARVED_AFTER seconds; its job sees the new policy, and the steps are reported."""
    from monitor.rules import build_worker

    monkeypatch.setattr(build_worker, "STARVED_AFTER", 0.3)
    monkeypatch.setattr(build_worker, "CHECK_EVERY", 0.1)
    own = os.getpriority(os.PRIO_PROCESS, 0)
    steps = list(dict.fromkeys(max(n, own) for n in build_worker.RAISE_STEPS))
    raised: list = []
    policy, nice = await rs_mod._in_process(reload_worker_jobs.until_raised, steps[-1], 60.0, raised=raised)
    assert (policy, nice) == (os.SCHED_OTHER, steps[-1])
    assert [n for n, _ in raised] == steps
    assert all(at >= 0.3 for _, at in raised) and raised[0][1] < raised[-1][1]


def test_the_escalation_raises_only_a_starved_worker_and_stops_when_refused() -> None:
    """Escalation's decisions from the worker's CPU time: fed at more than STARVED_SHARE of a
    CPU it is never raised; starved for ``after`` seconds it is raised a step, starved as long
    again the next; a step the system refuses ends the escalation (no more tries)."""
    from monitor.rules.build_worker import Escalation

    cpu = {"used": 0.0}
    applied: list[tuple[int, int]] = []
    esc = Escalation(4242, share=0.5, after=10.0, steps=(10, 0), now=0.0,
                     cpu=lambda pid: cpu["used"], apply=lambda pid, n: applied.append((pid, n)) or True)
    for t in range(1, 61):  # a minute at 0.8 of a CPU: never starved
        cpu["used"] += 0.8
        assert esc.check(now=float(t))
    assert applied == [] and esc.raised == []
    for t in range(61, 71):  # ten seconds at 0.1: starved -> nice 10
        cpu["used"] += 0.1
        esc.check(now=float(t))
    assert applied == [(4242, 10)] and esc.raised == [(10, 70.0)]
    cpu["used"] += 0.9
    esc.check(now=71.0)  # fed again: the count starts over
    for t in range(72, 81):
        esc.check(now=float(t))
    assert applied == [(4242, 10)]
    assert not esc.check(now=81.0)  # ten seconds starved at nice 10 -> nice 0, the last step
    assert applied == [(4242, 10), (4242, 0)] and esc.raised == [(10, 70.0), (0, 81.0)]

    refused = Escalation(4243, share=0.5, after=2.0, steps=(10, 0), now=0.0,
                         cpu=lambda pid: None, apply=lambda pid, n: False)  # no /proc: plain deadlines
    assert refused.check(now=1.0)
    assert not refused.check(now=2.0)
    assert refused.refused and refused.raised == [] and refused.steps == []


@pytest.mark.skipif(not _may_raise_from_idle(), reason="leaving SCHED_IDLE needs CAP_SYS_NICE or RLIMIT_NICE")
async def test_a_worker_raised_before_its_job_starts_is_not_lowered_again_by_it(tmp_path) -> None:
    """On a busy machine the worker may be raised while its interpreter still starts; the
    reload's job (load, compile, write the entry) then keeps the raised priority: it does not
    put itself back at SCHED_IDLE (nothing would raise it again)."""
    rules = tmp_path / "rules"
    rules.mkdir()
    write(rules / "w.yml", "id: w\nlevel: high\nmatch:\n  who: [Kerman]\n")
    ok, policy = await rs_mod._in_process(reload_worker_jobs.build_after_raise, str(rules), str(tmp_path / "cache"))
    assert ok
    assert policy == os.SCHED_OTHER
