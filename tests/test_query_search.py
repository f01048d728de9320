"""Search on real SQLite archives: normalisation cases, FTS syntax, filters, errors, CLI output."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone

import pytest
from typer.testing import CliRunner

from monitor.archive import Archive
from monitor.cli import app
from monitor.model import Hit, Match, Message
from monitor.query.filters import FilterError, Filters
from monitor.query.fts import QuerySyntaxError, translate
from monitor.query.search import search

D1 = datetime(2024, 1, 4, 15, 0, tzinfo=timezone.utc)
D2 = datetime(2024, 2, 10, 8, 30, tzinfo=timezone.utc)
D3 = datetime(2024, 3, 20, 23, 59, tzinfo=timezone.utc)

# key -> (platform, channel_id, channel, date, text)
POSTS = {
    "diacritics": ("telegram", "-1001", "amaq_news", D1, "أعلنت الدَّوْلَةُ الإسلاميةُ مسؤوليتها عن الهجوم"),
    "wa": ("telegram", "-1001", "amaq_news", D2, "بيان صادر عن والدولة الإسلامية في ولاية سيناء"),
    "bi": ("telegram", "-1002", "nashir", D3, "تم النشر بالدولة اليوم"),
    "lil": ("telegram", "-1002", "nashir", D2, "رسالة للدولة من المجاهدين"),
    "persian": ("telegram", "-1003", "sepah_news", D1, "سپاه یک بیانیه رسمی درباره کشته شدن نیروها منتشر کرد"),
    "arabic_ya": ("telegram", "-1003", "sepah_news", D2, "نشر الحرس الثوري بيانا عن كتاب جديد لكي يقرأ"),
    "english": ("x", "42", "newsdesk", D1, "ISIS claimed responsibility for the attack on the checkpoint"),
    "english2": ("x", "42", "newsdesk", D3, "Officials denied that the militants claimed the Résumé attack"),
    "english3": ("x", "43", "otherdesk", D2, "The army claims control; responsibility unclear"),
}


def _msg(name: str) -> Message:
    platform, cid, chan, date, text = POSTS[name]
    mid = str(list(POSTS).index(name) + 1)
    return Message(platform, cid, mid, date, text, channel=chan, raw={"id": mid, "text": text})


HIT = Hit("isis-claims", "h1", "high", "ISIS claims", (Match("kw", "claimed", 5, 12),), ())


@pytest.fixture
def arch(db_path):
    a = Archive.open(db_path)
    a.store([(_msg(n), [HIT] if n in ("english", "wa") else []) for n in POSTS])
    yield a
    a.close()


def names(res) -> set[str]:
    keys = {f"{p}:{c}:{list(POSTS).index(n) + 1}": n for n, (p, c, *_rest) in POSTS.items()}
    return {keys[r.key] for r in res}


# -- normalisation ----------------------------------------------------------------------
def test_query_without_diacritics_finds_text_with_them(arch) -> None:
    assert "diacritics" in names(search(arch, "الدولة الاسلامية مسؤوليتها"))


def test_query_with_diacritics_finds_plain_text(arch) -> None:
    assert names(search(arch, "وَالدَّوْلَةِ")) >= {"wa"}
    assert names(search(arch, "سِيناء")) == {"wa"}


def test_proclitics_like_the_rules(arch) -> None:
    got = names(search(arch, "الدولة"))
    assert {"diacritics", "wa", "bi", "lil"} <= got  # الدولة, والدولة, بالدولة, للدولة
    assert "persian" not in got


def test_persian_and_arabic_letter_forms_find_each_other(arch) -> None:
    assert names(search(arch, "كتاب")) == {"arabic_ya"}  # Arabic ك finds itself
    assert names(search(arch, "کتاب")) == {"arabic_ya"}  # Persian ک finds Arabic ك
    assert names(search(arch, "يك")) == {"persian"}  # Arabic ي/ك finds Persian یک
    assert names(search(arch, "بيانيه")) == {"persian"}  # ی -> ي, ه


def test_latin_case_and_diacritics(arch) -> None:
    assert names(search(arch, "RESUME")) == {"english2"}
    assert names(search(arch, "isis")) == {"english"}


# -- FTS syntax ---------------------------------------------------------------------------
def test_phrase_requires_adjacent_words(arch) -> None:
    assert names(search(arch, '"claimed responsibility"')) == {"english"}
    assert names(search(arch, "claimed responsibility")) == {"english"}
    assert names(search(arch, '"responsibility claimed"')) == set()


def test_phrase_with_proclitic_on_first_word(arch) -> None:
    assert names(search(arch, '"الدولة الإسلامية"')) == {"diacritics", "wa"}


def test_boolean_operators_and_parentheses(arch) -> None:
    assert names(search(arch, "claimed OR claims")) == {"english", "english2", "english3"}
    assert names(search(arch, "claimed NOT denied")) == {"english"}
    assert names(search(arch, "(isis OR army) AND responsibility")) == {"english", "english3"}
    assert names(search(arch, "responsibility (isis OR army)")) == {"english", "english3"}
    # lowercase words are words, not operators
    assert translate("war and peace") == '"war" AND "and" AND "peace"'


def test_prefix(arch) -> None:
    assert names(search(arch, "claim*")) == {"english", "english2", "english3"}
    assert names(search(arch, "مسؤول*")) == {"diacritics"}


def test_punctuation_inside_terms_is_not_syntax(arch) -> None:
    assert names(search(arch, "check-point")) == set()  # "check point" phrase: no such words
    assert names(search(arch, "responsibility;")) == {"english", "english3"}


def test_ranked_and_limited(arch) -> None:
    res = search(arch, "claimed OR responsibility", limit=2)
    assert len(res) == 2
    assert res.results[0].score >= res.results[1].score
    assert names(res) <= {"english", "english2", "english3"}
    assert names(res) >= {"english"}  # has both words: ranks first


def test_highlights_map_to_original_text(arch) -> None:
    (r,) = search(arch, "الدولة مسؤوليتها").results
    text = r.message.text
    highlighted = [text[s:e] for s, e in r.highlights]
    assert highlighted == ["الدَّوْلَةُ", "مسؤوليتها"]
    (r,) = search(arch, "الدولة", Filters.build(channel="nashir", since="2024-03-01")).results
    assert [r.message.text[s:e] for s, e in r.highlights] == ["بالدولة"]
    assert r.marked_snippet() == "تم النشر **بالدولة** اليوم"


# -- filters ------------------------------------------------------------------------------
def test_date_filters(arch) -> None:
    assert names(search(arch, "الدولة", Filters.build(since="2024-02-01"))) == {"wa", "bi", "lil"}
    assert names(search(arch, "الدولة", Filters.build(until="2024-02-10"))) == {"diacritics", "wa", "lil"}
    assert names(search(arch, "الدولة", Filters.build(since="2024-02-10T09:00:00Z", until="2024-03-19"))) == set()
    assert names(search(arch, "الدولة", Filters.build(since="2024-03-20T23:59:00Z"))) == {"bi"}


def test_channel_platform_and_rule_filters(arch) -> None:
    assert names(search(arch, "الدولة", Filters.build(channel="@amaq_news"))) == {"diacritics", "wa"}
    assert names(search(arch, "الدولة", Filters.build(channel="-1002"))) == {"bi", "lil"}
    assert names(search(arch, "الدولة", Filters.build(channel=["AMAQ_NEWS", "nashir"]))) == {"diacritics", "wa", "bi", "lil"}
    assert names(search(arch, "الدولة", Filters.build(channel="nobody"))) == set()
    assert names(search(arch, "claimed OR claims", Filters.build(platform="x", channel="otherdesk"))) == {"english3"}
    assert names(search(arch, "claimed OR claims OR الدولة", Filters.build(rule="isis-claims"))) == {"english", "wa"}
    assert names(search(arch, "claimed OR claims", Filters.build(platform="telegram"))) == set()


def test_channel_known_only_in_channels_table(arch) -> None:
    arch.upsert_channel("telegram", "-1003", username="irgc_official", title="IRGC")
    assert names(search(arch, "يك", Filters.build(channel="irgc_official"))) == {"persian"}


def test_bad_filter_values() -> None:
    with pytest.raises(FilterError, match="--since"):
        Filters.build(since="last tuesday")
    with pytest.raises(FilterError, match="--platform"):
        Filters.build(platform="facebook")
    with pytest.raises(FilterError, match="not before"):
        Filters.build(since="2024-03-01", until="2024-02-01")


def test_relative_since(arch) -> None:
    recent = Message("x", "42", "99", datetime.now(timezone.utc), "claimed fresh", channel="newsdesk", raw={"id": 99})
    arch.store([(recent, [])])
    assert [r.key for r in search(arch, "claimed", Filters.build(since="2d"))] == ["x:42:99"]


def test_window_bounds_ranking_to_newest_matches(arch) -> None:
    res = search(arch, "claimed OR claims OR responsibility", window=2, limit=1)
    assert res.window_full
    # only the two newest rows (by archive order) were candidates
    assert names(res) <= {"english2", "english3"}
    full = search(arch, "claimed OR claims OR responsibility", window=0, limit=5)
    assert len(full) == 3 and not full.window_full


# -- errors ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "query, message",
    [
        ('"unterminated', "unterminated quote"),
        ("(isis OR army", "unbalanced '('"),
        ("isis)", "unbalanced ')'"),
        ("isis AND", "'AND' at position 6 needs a search term"),
        ("NOT isis", "'NOT' at position 1"),
        ("isis OR OR army", "'OR' at position 9"),
        ("()", "empty parentheses"),
        ("  ", "empty search query"),
        ("- ; !", "no searchable words"),
    ],
)
def test_query_errors_are_clear(arch, query: str, message: str) -> None:
    with pytest.raises(QuerySyntaxError, match=message.replace("(", r"\(").replace(")", r"\)")):
        search(arch, query)


# -- CLI -----------------------------------------------------------------------------------
runner = CliRunner()


def test_cli_search_table_json_csv(arch, db_path) -> None:
    r = runner.invoke(app, ["search", "الدولة", "--db", str(db_path), "--channel", "nashir"])
    assert r.exit_code == 0, r.output
    assert "بالدولة" in r.output and "للدولة" in r.output and "2 result(s)" in r.output

    r = runner.invoke(app, ["search", "claimed", "--db", str(db_path), "--json", "--since", "2024-01-01"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.output.splitlines()]
    assert {row["key"] for row in rows} == {"x:42:7", "x:42:8"}
    first = rows[0]
    assert first["schema"] == "claimwatch.message/1" and first["raw"]["id"] in ("7", "8")
    assert first["text"][slice(*first["highlights"][0])].lower().startswith("claimed")
    assert "**claimed**" in first["snippet"]

    r = runner.invoke(app, ["search", "کتاب", "--db", str(db_path), "--csv"])
    assert r.exit_code == 0, r.output
    (row,) = list(csv.DictReader(io.StringIO(r.output)))
    assert row["key"] == "telegram:-1003:6" and row["text"] == POSTS["arabic_ya"][4]


def test_cli_search_errors_exit_2_without_traceback(arch, db_path) -> None:
    for args in (["search", '"oops'], ["search", "isis AND"], ["search", "x", "--since", "soon"],
                 ["search", "x", "--json", "--csv"]):
        r = runner.invoke(app, [*args, "--db", str(db_path)])
        assert r.exit_code == 2, (args, r.output)
        assert "Traceback" not in r.output and "error:" in r.output
        assert r.exception is None or isinstance(r.exception, SystemExit)


def test_cli_search_missing_archive(tmp_path) -> None:
    r = runner.invoke(app, ["search", "x", "--db", str(tmp_path / "none.db")])
    assert r.exit_code == 2 and "archive not found" in r.output


def test_hostile_text_is_not_rich_markup(db_path) -> None:
    with Archive.open(db_path) as a:
        a.store([(Message("telegram", "1", "1", D1, "claimed [bold red]FAKE[/] [link=http://x]y[/link]", raw={}), [])])
    r = runner.invoke(app, ["search", "claimed", "--db", str(db_path)])
    assert r.exit_code == 0
    flat = "".join(ch for ch in r.output if ch not in " \n│")
    assert "[boldred]FAKE[/]" in flat and "[link=http://x]y[/link]" in flat


def test_cli_search_on_a_narrow_console_lists_results_readably(arch, db_path) -> None:
    # At 80 columns the table left the snippet a few letters wide (one word per line).
    r = runner.invoke(app, ["search", "claimed", "--db", str(db_path)], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    assert "2 result(s) for claimed" in r.output
    assert "ISIS claimed responsibility for the attack on the checkpoint" in r.output
    assert any(line.split()[-1:] == ["x:42:7"] for line in r.output.splitlines()), r.output
    assert all(len(line) <= 80 for line in r.output.splitlines())
    r = runner.invoke(app, ["search", "claimed", "--db", str(db_path)], env={"COLUMNS": "160"})
    assert r.exit_code == 0 and "┃ score" in r.output and "ISIS claimed responsibility for the attack" in r.output
