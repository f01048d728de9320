"""The on-disk cache of compiled rule sets and the hot reload that builds off the event loop."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from daemon_helpers import write_config
from monitor.archive import Archive
from monitor.config import load_config
from monitor.daemon import Pipeline
from monitor.daemon.rules_state import RulesState
from monitor.model import Message
from monitor.rules import RuleSetError
from monitor.rules import cache as cache_mod
from monitor.rules.cache import cache_dir, load_matcher
from monitor.sources.base import Envelope

from rules_helpers import msg, write, WATCH_RULE, cache  # noqa: F401 (cache is a fixture)

RULE = WATCH_RULE


def rules(tmp_path: Path, rule: str = RULE, names: str = "Yahya Saree\n") -> Path:
    d = tmp_path / "rules"
    write(d / "watch.yml", rule)
    write(d / "lists" / "names.csv", names)
    return d


def load(d: Path) -> tuple[object, list[str]]:
    statuses: list[str] = []
    m = load_matcher([d], on_status=statuses.append)
    return m, statuses


def ids(m, text: str) -> list[str]:
    return [h.rule_id for h in m.match(msg(text))]


def test_second_load_comes_from_the_cache_and_matches_alike(tmp_path, cache) -> None:
    d = rules(tmp_path)
    first, s1 = load(d)
    second, s2 = load(d)
    assert (s1, s2) == (["miss"], ["hit"])
    assert len(list(cache.glob("*.pickle"))) == 1
    for text in ["Yahya Saree spoke", "blast in Kerman", "بكرمان", "nothing"]:
        a, b = first.match(msg(text, message_id="1")), second.match(msg(text, message_id="1"))
        assert a == b, text
    assert ids(second, "Yahya Saree spoke") == ["watch"]


def test_a_rule_edit_or_a_list_edit_invalidates_the_entry(tmp_path, cache) -> None:
    d = rules(tmp_path)
    load(d)
    write(d / "watch.yml", RULE.replace("Kerman", "Zahedan"))
    m, status = load(d)
    assert status == ["miss"] and ids(m, "blast in Zahedan") == ["watch"] and ids(m, "blast in Kerman") == []
    write(d / "lists" / "names.csv", "Yahya Saree\nAbdul-Malik al-Houthi\n")
    m, status = load(d)
    assert status == ["miss"] and ids(m, "Abdul-Malik al-Houthi said") == ["watch"]
    assert len(list(cache.glob("*.pickle"))) == 1  # older entries of the same rules path are removed
    _, status = load(d)
    assert status == ["hit"]


def test_a_damaged_entry_is_rebuilt(tmp_path, cache) -> None:
    d = rules(tmp_path)
    load(d)
    (entry,) = cache.glob("*.pickle")
    data = entry.read_bytes()
    entry.write_bytes(data[: len(data) // 2])  # truncated
    m, status = load(d)
    assert status == ["miss"] and ids(m, "Yahya Saree") == ["watch"]
    (entry,) = cache.glob("*.pickle")
    entry.write_bytes(b"garbage")
    m, status = load(d)
    assert status == ["miss"] and ids(m, "Yahya Saree") == ["watch"]
    _, status = load(d)
    assert status == ["hit"]


def test_other_destinations_or_code_are_other_entries(tmp_path, cache, monkeypatch) -> None:
    d = rules(tmp_path)
    load_matcher([d])
    statuses: list[str] = []
    load_matcher([d], default_destinations=("slack",), on_status=statuses.append)
    assert statuses == ["miss"]
    monkeypatch.setattr(cache_mod, "_code_version", "another version of the code")
    load_matcher([d], on_status=statuses.append)
    assert statuses == ["miss", "miss"]


def test_invalid_rules_are_not_cached_and_still_reported(tmp_path, cache) -> None:
    d = rules(tmp_path, rule=RULE.replace("level: high", "level: loud"))
    for _ in range(2):
        with pytest.raises(RuleSetError):
            load_matcher([d])
    assert not list(cache.glob("*.pickle")) if cache.exists() else True


def test_cache_off(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CLAIMWATCH_CACHE_DIR", "off")
    assert cache_dir() is None
    _, status = load(rules(tmp_path))
    assert status == ["off"]


def test_xdg_cache_home_is_the_default(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("CLAIMWATCH_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "claimwatch" / "rules"


def test_rules_test_cli_uses_the_cache(tmp_path, cache) -> None:
    import json

    from typer.testing import CliRunner

    from monitor.cli import app

    d = rules(tmp_path)
    feed = tmp_path / "m.jsonl"
    feed.write_text(json.dumps(msg("Yahya Saree spoke").to_dict(), ensure_ascii=False) + "\n", encoding="utf-8")
    runner = CliRunner()
    for _ in range(2):
        res = runner.invoke(app, ["rules", "test", str(d), str(feed), "--json"])
        assert res.exit_code == 0, res.output
        assert '"rule_id": "watch"' in res.output or '"rule": "watch"' in res.output, res.output
    assert len(list(cache.glob("*.pickle"))) == 1


# -- hot reload ---------------------------------------------------------------------------
def _state(tmp_path: Path, d: Path, mode: str) -> RulesState:
    cfg = load_config(write_config(tmp_path, None, None))
    st = RulesState(cfg, str(d), reload_in=mode)
    st.load()
    return st


@pytest.mark.parametrize("mode", ["thread", "process"])
async def test_reload_swaps_atomically_while_the_pipeline_runs(tmp_path, cache, db_path, mode) -> None:
    """Old set: rule 'watch'; new set: rule 'watch2' (same terms). While the new set is built
    the pipeline keeps matching with the old one; every message is matched against exactly one
    complete set, and after the swap only the new one."""
    d = rules(tmp_path)
    st = _state(tmp_path, d, mode)
    write(d / "watch.yml", RULE.replace("id: watch", "id: watch2"))
    gate = threading.Event()
    if mode == "thread":  # hold the build until messages were matched meanwhile
        real = load_matcher

        def slow(*a, **kw):
            assert gate.wait(30)
            return real(*a, **kw)

        import monitor.daemon.rules_state as rs_mod

        rs_mod_load = rs_mod.load_matcher
        rs_mod.load_matcher = slow
    archive = Archive.open(db_path)
    seen: list[tuple[str, ...]] = []

    class Recording:
        def match(self, m: Message):
            hits = st.get().match(m)
            seen.append(tuple(h.rule_id for h in hits))
            return hits

    pipe = Pipeline(archive, lambda: Recording(), batch_wait=0.001)
    pipe.start()
    try:
        reload = asyncio.create_task(st.reload_async())
        n = 0
        while not reload.done():
            await pipe.emit(Envelope(event=msg("Yahya Saree spoke", message_id=str(n)), source="t"))
            n += 1
            await asyncio.sleep(0.001)
            if n == 50:
                gate.set()
            assert n < 100_000
        assert await reload
        for k in range(20):
            await pipe.emit(Envelope(event=msg("Yahya Saree spoke", message_id=f"after{k}"), source="t"))
        await pipe.close()
    finally:
        if mode == "thread":
            rs_mod.load_matcher = rs_mod_load
        archive.close()
    assert set(seen) <= {("watch",), ("watch2",)}  # never none or both: no half-built set
    first_new = seen.index(("watch2",))
    assert first_new >= (50 if mode == "thread" else 1)  # the loop kept matching during the build
    assert all(s == ("watch2",) for s in seen[first_new:])
    got = {r.id for r in st.get().rules}
    assert st.reloads == 1 and "watch2" in got and "watch" not in got


async def test_reload_with_broken_rules_keeps_the_old_set(tmp_path, cache) -> None:
    d = rules(tmp_path)
    st = _state(tmp_path, d, "process")
    errors: list[str] = []
    st.on_error = errors.append
    write(d / "watch.yml", RULE.replace("level: high", "level: loud"))
    assert await st.reload_async() is False
    assert "unknown level 'loud'" in errors[0] and "watch.yml" in errors[0]
    assert ids(st.get(), "Yahya Saree") == ["watch"]


async def test_reloads_asked_meanwhile_are_coalesced(tmp_path, cache) -> None:
    d = rules(tmp_path)
    st = _state(tmp_path, d, "thread")
    write(d / "watch.yml", RULE.replace("Kerman", "Zahedan"))
    results = await asyncio.gather(st.reload_async(), st.reload_async(), st.reload_async())
    assert results == [True, True, True]
    assert 1 <= st.reloads <= 2
    assert ids(st.get(), "Zahedan") == ["watch"]


async def test_a_reload_asked_again_for_unchanged_files_is_skipped(tmp_path, cache) -> None:
    """SIGHUP and the folder watch both ask for a reload after one edit: the second request
    finds the files as the set just read back was built from, and does not build it again;
    a later edit reloads."""
    d = rules(tmp_path)
    st = _state(tmp_path, d, "process")
    write(d / "watch.yml", RULE.replace("Kerman", "Zahedan"))
    results = await asyncio.gather(st.reload_async(), st.reload_async())
    assert results == [True, True]
    assert st.reloads == 1
    assert ids(st.get(), "Zahedan") == ["watch"]
    write(d / "watch.yml", RULE.replace("Kerman", "Bushehr"))
    assert await st.reload_async() is True
    assert st.reloads == 2
    assert ids(st.get(), "Bushehr") == ["watch"] and ids(st.get(), "Zahedan") == []


REGEX_RULE = """\
id: wilayah
match:
  w:
    regex: ['wilayat\\s+\\pL+']
"""


def test_regexes_from_the_cache_compile_on_first_use_and_match_alike(tmp_path, cache) -> None:
    d = rules(tmp_path, rule=REGEX_RULE)
    built, _ = load(d)
    cached, status = load(d)
    assert status == ["hit"]
    index = cached.fields["text"]
    assert list.__getitem__(index.compiled, 0) is None  # not compiled by the load
    text = "claimed by Wilayat Sinai today"
    hits = cached.match(msg(text))
    assert [h.rule_id for h in hits] == ["wilayah"] and list.__getitem__(index.compiled, 0) is not None
    assert [(m.start, m.end) for m in hits[0].matches] == [(11, 24)]  # "Wilayat Sinai"
    assert hits == built.match(msg(text))
    again, _ = load(d)
    assert list.__getitem__(again.prepare().fields["text"].compiled, 0) is not None  # what hot reload does off the loop


def test_the_collector_is_paused_while_loading_and_resumed_as_it_was(tmp_path, cache) -> None:
    import gc

    from monitor import gcpause

    d = rules(tmp_path)
    seen = []
    real = gcpause.gc.disable

    def spy():
        seen.append(gc.isenabled())
        real()

    assert gc.isenabled()
    try:
        gcpause.gc.disable = spy
        load(d)  # a miss: load, compile, write
        load(d)  # a hit: read back
    finally:
        gcpause.gc.disable = real
    assert seen and gc.isenabled()
    gc.disable()
    try:
        load(d)
        assert not gc.isenabled()  # left as it was
    finally:
        gc.enable()


def test_the_reload_worker_asks_for_the_lowest_cpu_priority() -> None:
    """The worker process that builds a reloaded set runs only on CPU time nothing else
    wants (SCHED_IDLE on Linux), so the daemon's pipeline keeps its share of the cores."""
    import subprocess
    import sys

    code = (
        "import os; from monitor.daemon.rules_state import _lowest_priority; got = _lowest_priority(); "
        "print(got, os.sched_getscheduler(0) == os.SCHED_IDLE if got == 'idle' else os.nice(0))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True).stdout.split()
    if hasattr(os, "SCHED_IDLE"):
        assert out == ["idle", "True"]
    else:  # pragma: no cover - not Linux
        assert out == ["nice", "19"]


NEAR_RULES = """\
id: near-and-regex
level: medium
match:
  claim:
    near: [[claimed, "أعلن"], [responsibility, "مسؤوليته"]]
    within: 4
  w:
    regex: ['wilayat\\s+\\pL+']
  who: ["@list:names"]
condition: (claim and w) or who
"""


def test_a_cached_set_reads_its_rules_on_first_use_and_matches_alike(tmp_path, cache) -> None:
    """Read back, the set matches (hits and their matches: terms as written, spans) without
    reading the parsed rules, selections and terms; asked for them, it reads them and is the
    compiled set's equal; pickled, it is a plain Matcher."""
    import pickle

    from monitor.rules import Matcher
    from monitor.rules.cache import CachedMatcher

    d = rules(tmp_path, rule=NEAR_RULES, names="Yahya Saree\nAbdul-Malik al-Houthi\nكرمان\n")
    write(d / "watch.yml", RULE)
    built, _ = load(d)
    cached, status = load(d)
    assert status == ["hit"] and isinstance(cached, CachedMatcher)
    texts = ["Yahya Saree spoke", "they claimed full responsibility, wilayat Sinai said", "بكرمان", "Abdul-Malik al-Houthi",
             "nothing here", "أعلن التنظيم مسؤوليته wilayat khorasan"]
    for text in texts:
        a = built.match(msg(text, message_id="1"))
        b = cached.match(msg(text, message_id="1"))
        assert [(h, h.matches) for h in a] == [(h, h.matches) for h in b], text
    assert any(h.matches for t in texts for h in cached.match(msg(t)))
    assert "ruleset" not in cached.__dict__  # matching did not read the rule set
    assert [(r.id, r.hash, r.selections[0].name) for r in cached.rules] == [
        (r.id, r.hash, r.selections[0].name) for r in built.rules]
    assert cached.stats()["terms"] == built.stats()["terms"]
    assert cached.ruleset.files == built.ruleset.files
    plain = pickle.loads(pickle.dumps(cached))
    assert type(plain) is Matcher
    for text in texts:
        assert plain.match(msg(text, message_id="1")) == built.match(msg(text, message_id="1"))


def test_a_damaged_rule_set_part_is_found_on_read_and_rebuilt(tmp_path, cache) -> None:
    d = rules(tmp_path)
    load(d)
    (entry,) = cache.glob("*.pickle")
    data = bytearray(entry.read_bytes())
    data[-10] ^= 0xFF  # in the rule set's part (read only on first use): found by its checksum
    entry.write_bytes(bytes(data))
    m, status = load(d)
    assert status == ["miss"] and ids(m, "Yahya Saree") == ["watch"]
    _, status = load(d)
    assert status == ["hit"]


def test_stand_ins_keep_terms_that_hold_the_separator() -> None:
    from monitor.rules.cache import _Cell, _TermsView
    from monitor.rules.terms import Term

    terms = (Term("a\x00b", ()), Term("c", ()))
    view = _TermsView.of(terms, (0, 0), _Cell())
    assert len(view) == 2 and [view[i].raw for i in range(2)] == ["a\x00b", "c"]
    joined = _TermsView.of((Term("a", ()), Term("", ()), Term("b c", ())), (0, 0), _Cell())
    assert isinstance(joined.joined, str) and [joined[i].raw for i in range(3)] == ["a", "", "b c"]


async def test_the_reload_reads_back_on_the_event_loop_a_step_at_a_time(tmp_path, cache, monkeypatch) -> None:
    """The new set is unpickled on the loop in steps with the loop free between them (other
    tasks run), and the rules' fingerprint is computed without reading the rule set; it is
    the one the bus's preparers compute from the rules."""
    from monitor.bus.prepare import fingerprint
    from monitor.rules import cache as cache_mod

    d = rules(tmp_path)
    for k in range(2 * cache_mod.RULES_PER_STEP + 10):
        write(d / f"more{k}.yml", RULE.replace("id: watch", f"id: more{k}"))
    st = _state(tmp_path, d, "process")
    write(d / "watch.yml", RULE.replace("Kerman", "Zahedan"))
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    logged: list[dict] = []
    import monitor.daemon.rules_state as rs_mod

    real_info = rs_mod.log.info
    monkeypatch.setattr(rs_mod.log, "info", lambda event, **kw: (logged.append(dict(kw, event=event)), real_info(event, **kw)))
    try:
        assert await st.reload_async() is True
    finally:
        done.set()
        await task
    line = next(x for x in logged if x["event"] == "rules reloaded")
    assert line["built_in"] == "process" and line["steps"] >= 3  # RULES_PER_STEP compiled rules a step
    assert ticks > line["steps"]
    m = st.get()
    assert "ruleset" not in m.__dict__  # the fingerprint did not need the rule set
    assert st.fingerprint == fingerprint(m)
    assert ids(m, "blast in Zahedan") == ["watch"]


def test_gates_on_a_list_share_its_words_and_read_back_equal(tmp_path, cache) -> None:
    """Rules ``(a and b) or who`` over one watch list get gates holding the list's anchor
    words; those are one shared part per list (pickled once, joined on reading back), equal
    to the plain sets; read back from the cache, the gates are plain frozensets of the same
    words and the hits (with their matches) are the same."""
    import pickle

    from monitor.rules.matcher import _GateWords

    names = "".join(f"Name{i} Family{i}\n" for i in range(100))
    d = tmp_path / "rules"
    for i, common in enumerate(["the", "of", "and"]):
        write(d / f"r{i}.yml", f"""\
id: r{i}
match:
  a: ["blast{i}", "strike{i}"]
  b: ["{common}"]
  who: ["@list:names"]
condition: (a and b) or who
""")
    write(d / "lists" / "names.csv", names)
    built, _ = load(d)
    cached, status = load(d)
    assert status == ["hit"]
    gates = [g for cr in built._rules for g in (cr.gates or ())]
    shared = [g for g, _letters in gates if isinstance(g, _GateWords)]
    assert len(shared) == 3 and len({id(g.parts[0]) for g in shared}) == 1  # one part for the list, in 3 rules
    assert all(len(g) == 101 and g == frozenset(g) and g == frozenset().union(*g.parts) for g in shared)
    back = [g for cr in cached._rules for g in (cr.gates or ())]
    assert back == gates and all(type(w) is frozenset for w, _letters in back)
    plain = pickle.dumps([frozenset(g) for g in shared], protocol=pickle.HIGHEST_PROTOCOL)
    assert len(pickle.dumps(shared, protocol=pickle.HIGHEST_PROTOCOL)) < len(plain) * 0.6
    # the list's alternatives are read back as their terms; their index is built when first asked
    (lazy,) = {id(s.alts): s.alts for cr in cached._rules for s in cr.sels if s.name == "who"}.values()
    assert "_terms" in dir(type(lazy)) and len(object.__getattribute__(lazy, "_terms")) == 100
    (eager,) = {id(s.alts): s.alts for cr in built._rules for s in cr.sels if s.name == "who"}.values()
    assert (lazy.singles, lazy.keys, lazy.by_first) == (eager.singles, eager.keys, eager.by_first)
    with pytest.raises(AttributeError):
        object.__getattribute__(lazy, "_terms")
    cached, _ = load(d)  # read back again: lazy until matching asks
    texts = ["a blast1 of Name3 Family3", "strike2 and the rest", "the blast0", "Name7 Family7", "Name7 alone"]
    for text in texts:
        a, b = built.match(msg(text, message_id="1")), cached.match(msg(text, message_id="1"))
        assert [(h, h.matches) for h in a] == [(h, h.matches) for h in b], text
    assert [h.rule_id for h in built.match(msg("the blast0"))] == ["r0"]
    assert sorted(h.rule_id for h in built.match(msg("Name7 Family7"))) == ["r0", "r1", "r2"]


def _entry_with(entry: Path, magic: bytes, live: bytes, rest: bytes) -> None:
    """Rewrite ``entry`` (same name, so the same key) with these parts, lengths and CRCs right."""
    import zlib

    key = entry.name.split("-", 1)[1].removesuffix(".pickle")
    head = magic + key.encode() + b"\n" + cache_mod._PARTS.pack(len(live), len(rest), zlib.crc32(live), zlib.crc32(rest))
    entry.write_bytes(head + live + rest)


def test_an_entry_of_an_older_format_or_unreadable_is_rebuilt_with_a_log_line(tmp_path, cache) -> None:
    """An entry written by the previous format (v2: its own magic line, under the same name),
    one truncated, one whose checksums hold but whose pickle is not a compiled set, and one
    whose live part refers to a class that does not exist: each is found on reading, logged
    (one warning, no traceback), removed and rebuilt; the rebuilt entry is then read back."""
    import pickle

    from structlog.testing import capture_logs

    d = rules(tmp_path)
    load(d)
    (entry,) = cache.glob("*.pickle")
    good = entry.read_bytes()
    at = good.index(b"\n", len(cache_mod.MAGIC)) + 1  # after the magic line and the key
    live_len, rest_len, _, _ = cache_mod._PARTS.unpack_from(good, at)
    at += cache_mod._PARTS.size
    live, rest = good[at : at + live_len], good[at + live_len :]
    assert len(rest) == rest_len
    damaged = {
        "older format": lambda: _entry_with(entry, b"claimwatch compiled rules v2\n", live, rest),
        "truncated": lambda: entry.write_bytes(good[: len(good) - 1000]),
        "not a set": lambda: _entry_with(entry, cache_mod.MAGIC, pickle.dumps(("a", "b")), rest),
        "foreign class": lambda: _entry_with(entry, cache_mod.MAGIC, live.replace(b"_SelView", b"_GoneVie"), rest),
    }
    assert b"_SelView" in live
    for what, damage in damaged.items():
        damage()
        with capture_logs() as logs:
            m, status = load(d)
        assert status == ["miss"], what
        assert ids(m, "Yahya Saree spoke") == ["watch"], what
        warnings = [e for e in logs if e["log_level"] == "warning"]
        assert len(warnings) == 1 and "rebuilding" in warnings[0]["event"], (what, logs)
        assert "exc_info" not in warnings[0] and "Traceback" not in str(warnings[0]), what
        m, status = load(d)
        assert status == ["hit"] and ids(m, "Yahya Saree spoke") == ["watch"], what
        (entry,) = cache.glob("*.pickle")
        good = entry.read_bytes()


def test_flat_term_ids_and_phrase_anchors_read_back_as_built(tmp_path, cache) -> None:
    """A watch list's term word ids (one flat object in the entry) and a field's phrase anchors
    (one flat array) read back equal to the compiled ones; the matches of the cached set are
    the compiled set's, and pickling the read-back set again gives the same set."""
    import pickle

    from monitor.rules.cache import _FlatWids
    from monitor.rules.matcher import _PhraseIndex

    names = "".join(f"Name{i} Family{i}\n" for i in range(90)) + "".join(f"Solo{i}\n" for i in range(30))
    d = tmp_path / "rules"
    write(d / "r.yml", 'id: r\nmatch:\n  who: ["@list:names"]\n  a: ["blast"]\ncondition: who or a\n')
    write(d / "lists" / "names.csv", names)
    built, _ = load(d)
    cached, status = load(d)
    assert status == ["hit"]
    (bsel,) = [s for s in built._rules[0].sels if s.name == "who"]
    (csel,) = [s for s in cached._rules[0].sels if s.name == "who"]
    assert isinstance(csel.term_wids, _FlatWids) and csel.term_wids.wids is None  # not made yet
    assert len(csel.term_wids) == 120 and list(csel.term_wids) == list(bsel.term_wids)
    assert csel.term_wids[5] == bsel.term_wids[5] and csel.term_wids == bsel.term_wids
    bi, ci = built.fields["text"], cached.fields["text"]
    assert isinstance(ci.key_phrases, _PhraseIndex) and len(ci.key_phrases) == 0 and ci.phrase_keys == bi.phrase_keys
    assert all(ci.key_phrases[w] == bi.key_phrases[w] for w in bi.phrase_keys)
    with pytest.raises(KeyError):
        ci.key_phrases[max(bi.phrase_keys) + 1]
    again = pickle.loads(pickle.dumps(cached, protocol=pickle.HIGHEST_PROTOCOL))
    texts = ["Name3 Family3 and Solo7", "a blast", "Family3 Name3", "Name89 Family89", "nothing"]
    for m in (cached, again):
        for text in texts:
            a, b = built.match(msg(text, message_id="1")), m.match(msg(text, message_id="1"))
            assert [(h, h.matches) for h in a] == [(h, h.matches) for h in b], text
    assert sorted(m.match(msg("Name3 Family3 and Solo7"))[0].matches[i].term for i in range(2)) == ["Name3 Family3", "Solo7"]
    assert _FlatWids.of(((1, 2), (2**32,))) is None and _FlatWids.of(((1,) * 256,)) is None
