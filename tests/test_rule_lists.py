"""Watch lists as data (rules/lists/*.csv, *.yml) referenced from rules as "@list:NAME"."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.rules import Matcher, RuleSetError, load_rules
from monitor.rules.reference import NaiveMatcher

from rules_helpers import msg, write

COMMANDERS_CSV = """\
# name, then its variants
Yahya Saree,يحيى سريع,یحیی سریع
Abdul-Malik al-Houthi,عبد الملك الحوثي

"Saree, Yahya",
"""

RULE = """\
id: commanders
match:
  who:
    any: ["@list:commanders"]
  near_claim:
    near:
      terms: ["@list:commanders", [claimed, تبنى]]
      within: 4
condition: who
"""


def rules_dir(tmp_path: Path, rule: str = RULE, lists: dict[str, str] | None = None) -> Path:
    d = tmp_path / "rules"
    write(d / "watch.yml", rule)
    for name, text in (lists if lists is not None else {"commanders.csv": COMMANDERS_CSV}).items():
        (d / "lists").mkdir(parents=True, exist_ok=True)
        (d / "lists" / name).write_text(text, encoding="utf-8")
    return d


def problems(tmp_path: Path, **kw) -> list[str]:
    with pytest.raises(RuleSetError) as exc:
        load_rules([rules_dir(tmp_path, **kw)])
    return [str(p).replace(str(tmp_path) + "/", "") for p in exc.value.problems]


def test_csv_list_expands_to_names_and_variants(tmp_path) -> None:
    rs = load_rules([rules_dir(tmp_path)])
    (wl,) = rs.lists
    assert wl.name == "commanders" and wl.entries == 3
    raws = [t.raw for t in rs.rules[0].selection("who").terms]
    assert raws == ["Yahya Saree", "يحيى سريع", "یحیی سریع", "Abdul-Malik al-Houthi", "عبد الملك الحوثي", "Saree, Yahya"]
    m = Matcher(rs)
    (hit,) = m.match(msg("بيان من يحيى سريع اليوم"))
    assert hit.rule_id == "commanders"
    assert [(x.term, x.selection) for x in hit.matches] == [("يحيى سريع", "who")]
    assert m.match(msg("a statement by Abdul Malik al Houthi")) != []
    assert m.match(msg("Saree alone is not a name on the list")) == []


def test_list_in_a_near_group_is_one_group_of_alternatives(tmp_path) -> None:
    rule = RULE.replace("condition: who", "condition: near_claim")
    m = Matcher(load_rules([rules_dir(tmp_path, rule=rule)]))
    assert m.match(msg("Yahya Saree claimed the attack")) != []
    assert m.match(msg("Yahya Saree spoke at length about many things and then someone claimed")) == []


def test_yaml_list_of_names_and_variant_lists(tmp_path) -> None:
    lists = {"commanders.yml": "- Yahya Saree\n- [Abdul-Malik al-Houthi, عبد الملك الحوثي]\n- 'Kerman*'\n"}
    rs = load_rules([rules_dir(tmp_path, lists=lists)])
    assert [t.raw for t in rs.lists[0].terms] == ["Yahya Saree", "Abdul-Malik al-Houthi", "عبد الملك الحوثي", "Kerman*"]
    m = Matcher(rs)
    assert m.match(msg("وقال عبد الملك الحوثي")) != []
    assert m.match(msg("blast in Kermanshah")) != []


def test_list_files_are_not_read_as_rule_files(tmp_path) -> None:
    # a YAML list under lists/ would be an invalid rule file; it is a list, not a rule
    lists = {"commanders.yml": "- Yahya Saree\n"}
    rs = load_rules([rules_dir(tmp_path, lists=lists)])
    assert [r.id for r in rs.rules] == ["commanders"]
    assert all("/lists/" not in f for f in rs.files)


def test_compiled_and_naive_agree_on_list_rules(tmp_path) -> None:
    rs = load_rules([rules_dir(tmp_path)])
    m, naive = Matcher(rs), NaiveMatcher(rs)
    for text in ["يحيى سريع", "ويحيى سريع قال", "Yahya Saree", "Yahya", "عبد الملك الحوثي تبنى", "nothing"]:
        assert {h.rule_id for h in m.match(msg(text))} == set(naive.match_ids(msg(text))), text


def test_rule_hash_follows_the_list(tmp_path) -> None:
    d = rules_dir(tmp_path)
    before = load_rules([d]).rules[0].hash
    (d / "lists" / "commanders.csv").write_text(COMMANDERS_CSV + "Mohammed Abdulsalam\n", encoding="utf-8")
    after = load_rules([d]).rules[0].hash
    assert before != after


def test_unknown_list_is_reported_with_a_suggestion(tmp_path) -> None:
    rule = RULE.replace('any: ["@list:commanders"]', 'any: ["@list:comanders"]')
    assert problems(tmp_path, rule=rule) == [
        "rules/watch.yml:4:11: selection 'who': unknown list 'comanders' (did you mean 'commanders'?)"
    ]


def test_reference_without_any_list_says_where_lists_live(tmp_path) -> None:
    (msg_,) = problems(tmp_path, lists={})[:1]
    assert "unknown list 'commanders' (no list loaded: lists are read from a 'lists' folder" in msg_


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("commanders.csv", "Yahya Saree\n*\n", "rules/lists/commanders.csv:2:1: list 'commanders': term '*': '*' needs a word"),
        ("commanders.csv", "ok\n@actor:houthis\n",
         "rules/lists/commanders.csv:2:1: list 'commanders': '@actor:houthis': a list entry cannot reference a list or an actor"),
        ("commanders.csv", "# only a comment\n\n", "rules/lists/commanders.csv:1:1: list 'commanders' is empty"),
        ("commanders.yml", "names: [a]\n", "rules/lists/commanders.yml:1:1: a list file holds a YAML list of names"),
        ("commanders.yml", "- a\n- {b: c}\n", "rules/lists/commanders.yml:2:3: each entry must be a name or a list"),
        ("Commanders.csv", "a\n", "rules/lists/Commanders.csv:1:1: invalid list name 'Commanders'"),
    ],
)
def test_list_problems_name_file_line_and_column(tmp_path, name, text, expected) -> None:
    got = problems(tmp_path, lists={name: text})
    assert got[0].startswith(expected), got


def test_invalid_utf8_list_names_the_line(tmp_path) -> None:
    d = rules_dir(tmp_path)
    (d / "lists" / "commanders.csv").write_bytes(b"ok\n\xff\xfe bad\n")
    with pytest.raises(RuleSetError) as exc:
        load_rules([d])
    p, *refs = exc.value.problems
    assert p.line == 2 and "not valid UTF-8" in p.message
    assert refs and all("list 'commanders' has problems" in r.message for r in refs)  # not "unknown list"


def test_a_hundred_thousand_entries_load_and_match(tmp_path) -> None:
    rows = "".join(f"name{i} person{i},الاسم{i}\n" for i in range(100_000))
    rs = load_rules([rules_dir(tmp_path, lists={"commanders.csv": rows})])
    assert rs.lists[0].entries == 100_000 and len(rs.lists[0].terms) == 200_000
    m = Matcher(rs)
    assert [h.rule_id for h in m.match(msg("met name99999 person99999 today"))] == ["commanders"]
    assert m.match(msg("met name99999 today")) == []
    assert m.match(msg("والاسم5 قال")) != []  # Arabic-script morphology applies to list entries too


PLAIN_CSV_CASES = [
    "Yahya Saree,يحيى سريع,یحیی سریع\nAbdul-Malik al-Houthi\n",
    "# a comment\n\n   \n  # indented comment\nname one , variant ,, \n,second column only\n",
    "no final newline,x",
    "tab\tinside,\x0bvertical tab\x0b,\u2028line separator\u2028,\x85next line\n\x1cfile sep\n",
    ",,,\n , , \n#,not a comment? no: the row is skipped\n a#b,c\n",
    "\n\n\nafter blank lines\n",
    "یحیی\u200cسریع,ZWNJ inside\n",
]


@pytest.mark.parametrize("text", PLAIN_CSV_CASES)
def test_the_plain_csv_fast_path_reads_the_rows_the_csv_reader_reads(text) -> None:
    """Files without quotes, CRs or NULs skip the csv module: same (line, column, cell) rows."""
    import csv
    import io

    from monitor.rules.lists import _plain_csv_rows

    expected = []
    reader = csv.reader(io.StringIO(text, newline=""))
    for row in reader:
        if not row or (not row[0].lstrip() and len(row) == 1) or row[0].lstrip().startswith("#"):
            continue
        expected += [(reader.line_num, i + 1, c.strip()) for i, c in enumerate(row) if c.strip()]
    assert _plain_csv_rows(text) == expected


def test_quoted_and_crlf_lists_load_like_plain_ones(tmp_path) -> None:
    plain = "Yahya Saree,يحيى سريع\nAbdul-Malik al-Houthi\n"
    variants = {
        "plain": plain,
        "crlf": plain.replace("\n", "\r\n"),
        "quoted": '"Yahya Saree","يحيى سريع"\n"Abdul-Malik al-Houthi"\n',
    }
    got = {}
    for label, text in variants.items():
        d = rules_dir(tmp_path / label, lists={"commanders.csv": text})
        (wl,) = load_rules([d]).lists
        got[label] = [t.raw for t in wl.terms]
    assert got["plain"] == got["crlf"] == got["quoted"] == ["Yahya Saree", "يحيى سريع", "Abdul-Malik al-Houthi"]


def test_rules_referencing_one_list_share_its_terms(tmp_path) -> None:
    d = rules_dir(tmp_path)
    write(d / "other.yml", "id: other\nmatch:\n  who: ['@list:commanders']\n")
    rs = load_rules([d])
    (wl,) = rs.lists
    sels = [r.selection("who") for r in rs.rules]
    assert all(s.terms is wl.terms for s in sels)  # one tuple: compiled once
    m = Matcher(rs)
    assert sorted(h.rule_id for h in m.match(msg("يحيى سريع قال"))) == ["commanders", "other"]


def test_lists_loaded_in_a_second_process_equal_those_loaded_in_process(tmp_path, monkeypatch) -> None:
    """Large lists are parsed in a forked child while the rule files are parsed: the same
    lists (terms, words, kinds, entries, digests) and the same problems, in the same order."""
    import os
    import threading

    from monitor.rules import lists as lists_mod

    if not hasattr(os, "fork"):
        pytest.skip("no fork here")
    d = rules_dir(tmp_path, lists={
        "commanders.csv": COMMANDERS_CSV,
        "places.csv": "Sanaa,صنعاء\nكرمان,کرمان\nبیانیه ای\nclaim*,*stan,*x*\n",
        "bad.csv": "ok\n@list:commanders\n",
        "yaml-names.yml": "- [Yahya Saree, يحيى سريع]\n- 'الدولة الإسلامية'\n",
    })
    files = lists_mod.list_files([str(d)])
    monkeypatch.setattr(lists_mod, "FORK_MIN_BYTES", 0)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(lists_mod, "_runnable_now", lambda: 1)  # only this process: a core to spare
    # a thread left by an earlier test (e.g. a cache writer) would make the loader keep to
    # one process; the child only parses and exits, so the fork is safe to ask for here
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    job = lists_mod.load_lists_in_background(files)
    assert job is not None
    forked, forked_problems, forked_failed = job()
    problems: list = []
    failed: set[str] = set()
    inproc = lists_mod.load_lists(files, problems, failed)
    assert forked_problems == problems and problems and forked_failed == failed == {"bad"}
    assert list(forked) == list(inproc) == ["commanders", "places", "yaml-names"]
    for name, wl in inproc.items():
        got = forked[name]
        assert (got.name, got.file, got.digest, got.entries) == (wl.name, wl.file, wl.digest, wl.entries)
        assert got.terms == wl.terms and [type(t) for t in got.terms] == [type(t) for t in wl.terms]
        assert [type(w) for t in got.terms for w in t.words] == [type(w) for t in wl.terms for w in t.words]
    # the whole load: same rules and hits whichever way the lists were read
    write(d / "watch.yml", RULE)
    (d / "lists" / "bad.csv").unlink()
    forked_set = load_rules([d])
    monkeypatch.setattr(lists_mod, "FORK_MIN_BYTES", 1 << 40)
    inproc_set = load_rules([d])
    monkeypatch.setattr(lists_mod, "_runnable_now", lambda: 2)  # another task runnable: in-process
    assert lists_mod.load_lists_in_background(files) is None
    assert [r.hash for r in forked_set.rules] == [r.hash for r in inproc_set.rules]
    text = msg("يحيى سريع claimed it; والدولة الإسلامية")
    assert repr(Matcher(forked_set).match(text)) == repr(Matcher(inproc_set).match(text))


def test_the_child_is_asked_for_only_when_a_core_is_free_now(monkeypatch) -> None:
    """The decision is the number of tasks runnable this instant (this one included), not the
    last minute's load average (which counts this process's own busy minute); the load
    average only where that count cannot be read."""
    import os

    from monitor.rules import lists as lists_mod

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.6, 1.0, 1.0))
    monkeypatch.setattr(lists_mod, "_runnable_now", lambda: 1)
    assert lists_mod._idle_core()
    monkeypatch.setattr(lists_mod, "_runnable_now", lambda: 2)
    assert not lists_mod._idle_core()
    monkeypatch.setattr(lists_mod, "_runnable_now", lambda: None)
    assert not lists_mod._idle_core()
    monkeypatch.setattr(os, "getloadavg", lambda: (0.7, 1.0, 1.0))
    assert lists_mod._idle_core()
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    monkeypatch.setattr(lists_mod, "_runnable_now", lambda: 1)
    assert not lists_mod._idle_core()


EARLY_RULES = {
    "a-plain.yml": "id: plain\nmatch:\n  who: ['@list:commanders']\n  what: [claimed]\ncondition: who and what\n",
    "b-near.yml": RULE.replace("id: commanders", "id: near-list"),
    "c-mixed.yml": "id: mixed\nmatch:\n  who: ['@list:commanders', 'Abu Obeida']\ncondition: who\n",
    "d-other.yml": "id: other\nmatch:\n  who: ['@list:places']\ncondition: who\n",
}


def _load_both_ways(d, monkeypatch):  # noqa: ANN001, ANN202
    """(forked result, in-process result) of load_rules: each the rule set or the problems."""
    import os
    import threading

    from monitor.rules import lists as lists_mod

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    monkeypatch.setattr(lists_mod, "_runnable_now", lambda: 1)
    out = []
    for min_bytes in (0, 1 << 40):  # forked, then in-process
        monkeypatch.setattr(lists_mod, "FORK_MIN_BYTES", min_bytes)
        try:
            out.append(load_rules([d]))
        except RuleSetError as exc:
            out.append([str(p) for p in exc.problems])
    return out


def test_rules_built_while_the_child_parses_the_lists_equal_those_built_after(tmp_path, monkeypatch) -> None:
    """With the lists in a forked child the rules are built against stand-ins of the lists
    while it works (a rule file that needs a list's terms, e.g. a ``near`` group or a list
    mixed with other terms, is built once they are in): the same rules in the same order, the
    same hashes, lists and hits as building them after the lists."""
    import os

    from monitor.rules import lists as lists_mod

    if not hasattr(os, "fork"):
        pytest.skip("no fork here")
    d = rules_dir(tmp_path, lists={"commanders.csv": COMMANDERS_CSV, "places.csv": "Sanaa,صنعاء\nكرمان,کرمان\n"})
    (d / "watch.yml").unlink()
    for name, text in EARLY_RULES.items():
        write(d / name, text)
    built: list = []
    real = lists_mod.load_lists_in_background
    monkeypatch.setattr(lists_mod, "load_lists_in_background", real)
    import monitor.rules.loader as loader_mod

    def spy(files):  # noqa: ANN001, ANN202
        job = real(files)
        built.append(job is not None and job.shells is not None)
        return job

    monkeypatch.setattr(loader_mod, "load_lists_in_background", spy)
    forked, inproc = _load_both_ways(d, monkeypatch)
    assert built == [True, False]
    assert [r.id for r in forked.rules] == [r.id for r in inproc.rules] == ["plain", "near-list", "mixed", "other"]
    assert [r.hash for r in forked.rules] == [r.hash for r in inproc.rules]
    assert [(wl.name, wl.digest, wl.entries, list(wl.terms)) for wl in forked.lists] == \
        [(wl.name, wl.digest, wl.entries, list(wl.terms)) for wl in inproc.lists]
    for wl in forked.lists:
        assert type(wl.terms) is lists_mod.ListTerms
    # the early rules hold the list's own terms object, filled in place
    sel = forked.rules[0].selection("who")
    assert sel.terms is forked.lists[0].terms and len(sel.terms) == 6
    for text in ("يحيى سريع claimed it", "Abu Obeida spoke", "in Sanaa today", "Yahya Saree claimed it"):
        assert repr(Matcher(forked).match(msg(text))) == repr(Matcher(inproc).match(msg(text)))
    # a flat list's terms come with each term's rarest word from the child: the compiler's
    # word ids and anchors are those it computes itself
    from monitor.rules import matcher as matcher_mod

    places = forked.lists[1].terms
    assert places._pre is not None and getattr(inproc.lists[1].terms, "_pre", None) is None
    got = matcher_mod._Interner()._compile_flat(matcher_mod._FieldIndex("text"), places)
    assert got == matcher_mod._Interner()._compile_flat(matcher_mod._FieldIndex("text"), inproc.lists[1].terms)


def test_a_fields_first_words_are_its_lists_numbered_by_the_child_or_here_alike(tmp_path, monkeypatch) -> None:
    """The words of the lists a field references are its first word ids (the lists in file
    order, each word where it first occurs): numbered by the lists' child when it numbered
    exactly those lists, by the compiler otherwise; the same ids either way, the same words
    and hits as compiling them in rule order, and each list's rarest words from the child
    equal to the compiler's own."""
    import os

    from monitor.rules import lists as lists_mod
    from monitor.rules import matcher as matcher_mod

    if not hasattr(os, "fork"):
        pytest.skip("no fork here")
    d = rules_dir(tmp_path, lists={"commanders.csv": COMMANDERS_CSV, "places.csv": "Sanaa,صنعاء\nكرمان,کرمان\nbig claim,x\n"})
    (d / "watch.yml").unlink()
    for name, text in EARLY_RULES.items():
        write(d / name, text)
    forked, inproc = _load_both_ways(d, monkeypatch)
    assert all(getattr(wl.terms, "_gids", None) is not None for wl in forked.lists)
    assert all(getattr(wl.terms, "_gids", None) is None for wl in inproc.lists)
    a, b = Matcher(forked), Matcher(inproc)
    assert a.fields["text"].words == b.fields["text"].words
    n = len(lists_mod.number_lists([wl.terms.flat()[:2] for wl in inproc.lists])[0])
    assert set(a.fields["text"].words[:n]) == {w for wl in inproc.lists for w in wl.terms.flat()[0]}
    monkeypatch.setattr(matcher_mod.Matcher, "_seed_lists", lambda self, ruleset, intern: None)
    c = Matcher(inproc)  # the words given ids in rule order, as before
    assert sorted(c.fields["text"].words) == sorted(a.fields["text"].words)
    for text in ("يحيى سريع claimed it", "Abu Obeida spoke", "in Sanaa today", "Yahya Saree claimed it", "a big claim x"):
        assert repr(a.match(msg(text))) == repr(b.match(msg(text))) == repr(c.match(msg(text)))
    compared = 0
    for got, wl in zip(forked.lists, inproc.lists):  # the child's rarest words: the compiler's own
        if got.terms._pre is not None:  # (a list read row by row has no flat form in the child then)
            assert got.terms._pre == matcher_mod._Interner()._compile_flat(matcher_mod._FieldIndex("text"), wl.terms)[1]
            compared += 1
    assert compared
    # a set whose rules reference only some of the lists: those numbered by the compiler
    (d / "d-other.yml").unlink()
    forked, inproc = _load_both_ways(d, monkeypatch)
    monkeypatch.undo()
    a, b = Matcher(forked), Matcher(inproc)
    assert a.fields["text"].words == b.fields["text"].words
    only_places = set(forked.lists[1].terms.flat()[0]) - set(forked.lists[0].terms.flat()[0])
    assert only_places and only_places.isdisjoint(a.fields["text"].words)  # an unreferenced list adds no word


def test_problems_are_the_same_whether_rules_were_built_early_or_not(tmp_path, monkeypatch) -> None:
    """Problems in rule files (reported in file order) and in a list (then every rule is
    built again after the lists, as in one process) read the same either way."""
    import os

    if not hasattr(os, "fork"):
        pytest.skip("no fork here")
    rules = dict(EARLY_RULES)
    rules["b-near.yml"] = rules["b-near.yml"].replace("within: 4", "within: -1")
    rules["e-bad.yml"] = "id: bad\nmatch:\n  who: ['@list:nolist']\ncondition: who or x\n"
    d = rules_dir(tmp_path, lists={"commanders.csv": COMMANDERS_CSV, "places.csv": "Sanaa\n"})
    (d / "watch.yml").unlink()
    for name, text in rules.items():
        write(d / name, text)
    forked, inproc = _load_both_ways(d, monkeypatch)
    assert isinstance(forked, list) and forked == inproc and len(forked) >= 2
    (d / "lists" / "places.csv").write_text("ok\n@list:commanders\n", encoding="utf-8")  # a list with a problem
    forked, inproc = _load_both_ways(d, monkeypatch)
    assert isinstance(forked, list) and forked == inproc and any("places" in p for p in forked)


BATCH_TERMS = [
    "Yahya Saree", "يحيى سريع", "یحیی سریع", "Abdul-Malik al-Houthi", "أبو محمد الجولاني", "claim*", "*stan",
    "*x*", "بیانیه ای", "می شود", "ها", "a - b", "...", "!!", "x" * 300, " ".join(["w"] * 17), "al-Qaeda's",
    "الدولة\u0651 الإسلامية", "tab\tinside", "Kerman كرمان", "Yahya Saree", "ZWNJ\u200cinside", "۱۹۹۱", "*", "a *",
]


def test_parse_terms_gives_what_parse_term_gives() -> None:
    """The batched parser of list entries: the same terms as one parse_term call each, and None
    exactly where parse_term decides itself (wildcards, too long, no words, too many words,
    Persian pieces), whether the chunks were cached before or not."""
    from monitor.rules import terms as terms_mod

    def one(raw: str):  # noqa: ANN202
        try:
            return terms_mod.parse_term(raw)
        except terms_mod.TermError as exc:
            return str(exc)

    for cold in (True, False):
        if cold:
            terms_mod._CHUNKS.clear()
            terms_mod._WORDS.clear()
            terms_mod._MERGING.clear()
        got = terms_mod.parse_terms(BATCH_TERMS)
        expected = [one(r) for r in BATCH_TERMS]
        for raw, g, e in zip(BATCH_TERMS, got, expected):
            if g is None:
                assert "*" in raw or len(raw) > 256 or isinstance(e, str) or len(e.words) > 16 or raw in ("بیانیه ای", "می شود", "ها")
            else:
                assert g == e and type(g) is type(e) and all(type(w) is terms_mod.Word for w in g.words), raw
        assert sum(g is None for g in got) == 12


def test_parse_terms_flat_gives_the_flat_form_of_parse_term() -> None:
    """A plain list's entries parsed straight into the flat form (no Term per entry): the
    words, word numbers and words per term of parse_term's terms; None for a batch with an
    entry parse_term must decide, cold or warm chunk cache; the ListTerms made from it is
    the sequence of those terms (indexing, slicing, iteration, ==, pickling)."""
    import pickle

    from monitor.rules import lists as lists_mod
    from monitor.rules import terms as terms_mod

    plain = [r for r in BATCH_TERMS if terms_mod.parse_terms([r]) != [None]]
    cases = [plain, plain[:1], ["Abdul-Malik al-Houthi", "a - b", "x"], *([r] for r in BATCH_TERMS)]
    for cold in (True, False):
        for raws in cases:
            if cold:
                terms_mod._CHUNKS.clear()
                terms_mod._WORDS.clear()
                terms_mod._MERGING.clear()
            got = terms_mod.parse_terms_flat(list(raws))
            expected = terms_mod.parse_terms(list(raws))
            if None in expected:
                assert got is None, raws
                continue
            assert got is not None, raws
            lt = lists_mod.ListTerms.of_flat(list(raws), *got)
            ref = lists_mod.ListTerms(expected)
            assert got == ref.flat() and lt.flat() == ref.flat()
            assert lt == ref and lt == tuple(expected) and len(lt) == len(expected)
            assert list(lt) == expected and lt[0] == expected[0] and lt[1:] == tuple(expected[1:])
            assert lt.raws == list(raws) and list(lt.word_tuples()) == [t.words for t in expected]
            assert all(type(t) is terms_mod.Term and all(type(w) is terms_mod.Word for w in t.words) for t in lt)
            back = pickle.loads(pickle.dumps(lists_mod.ListTerms.of_flat(list(raws), *got)))
            assert back._terms is None and back == lt and back._terms is None  # read back flat: terms made on first use
    assert terms_mod.parse_terms_flat([]) is None
    assert terms_mod.parse_terms_flat(["ok", "claim*"]) is None and terms_mod.parse_terms_flat(["ok", "-"]) is None


@pytest.mark.parametrize("text", [*PLAIN_CSV_CASES, COMMANDERS_CSV, "a,b\na\nb,c,a\n", "claim*,*stan\nبیانیه ای\n",
                                  "ok\n@list:x\n", "ok\n" + "x" * 300 + "\n", "#only a comment\n", "-- , ...\n"])
def test_the_list_fast_path_loads_what_the_row_loop_loads(tmp_path, monkeypatch, text) -> None:
    """A plain CSV list is read without a position per cell: the same list (terms, their
    types, entries, digest) and the same problems as the row by row loop."""
    from monitor.rules import lists as lists_mod

    f = tmp_path / "lists" / "names.csv"
    f.parent.mkdir()
    f.write_text(text, encoding="utf-8")
    fast_problems: list = []
    fast = lists_mod.load_list(str(f), fast_problems)
    monkeypatch.setattr(lists_mod, "_plain_list", lambda _text: None)
    slow_problems: list = []
    slow = lists_mod.load_list(str(f), slow_problems)
    assert fast_problems == slow_problems
    assert (fast is None) == (slow is None)
    if fast is not None:
        assert (fast.name, fast.digest, fast.entries) == (slow.name, slow.digest, slow.entries)
        assert fast.terms == slow.terms and type(fast.terms) is type(slow.terms) is lists_mod.ListTerms
        assert fast.terms.flat() == slow.terms.flat()


def test_list_terms_flat_form_survives_pickling_and_compiles_like_a_plain_tuple(tmp_path) -> None:
    """ListTerms' flat form (distinct words, word numbers, words per term) is what it pickles;
    read back, it is the same; the compiler's flat path gives the word ids, order and rarest
    words the general path gives for the same terms."""
    import pickle

    from monitor.rules import lists as lists_mod
    from monitor.rules.matcher import _FieldIndex, _Interner

    text = COMMANDERS_CSV + "Sanaa,صنعاء\nكرمان,کرمان\nclaim*,*stan\nبیانیه ای\nAbu Bakr al-Baghdadi\n"
    f = tmp_path / "lists" / "places.csv"
    f.parent.mkdir()
    f.write_text(text, encoding="utf-8")
    wl = lists_mod.load_list(str(f), [])
    back = pickle.loads(pickle.dumps(wl.terms, protocol=pickle.HIGHEST_PROTOCOL))
    assert back == wl.terms and type(back) is lists_mod.ListTerms
    words, ids, counts = back.flat()
    assert words == tuple(dict.fromkeys(w for t in wl.terms for w in t.words))
    assert [words[i] for i in ids] == [w for t in wl.terms for w in t.words]
    assert list(counts) == [len(t.words) for t in wl.terms]
    assert back.flat() == wl.terms.flat()
    for seed in ((), tuple(wl.terms[3:5])):  # some words known to the field before
        a, ia = _Interner(), _FieldIndex("text")
        b, ib = _Interner(), _FieldIndex("text")
        if seed:
            a._compile(ia, seed)
            b._compile(ib, seed)
        assert a._compile(ia, tuple(wl.terms)) == b._compile(ib, back)
        assert ia.words == ib.words and a._cost == b._cost
