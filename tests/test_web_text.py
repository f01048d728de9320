"""The web view's text helpers: word-level diff, highlighted pieces, direction, bidi controls,
per-day chart geometry, search page URLs."""

from __future__ import annotations

from monitor.web.chart import bars, day_series
from monitor.web.search_page import parse_params, url_for
from monitor.web.text import neutralize_bidi, pieces, text_dir, word_diff


def test_word_diff_reconstructs_both_texts() -> None:
    old = "سپاه پاسداران: حمله به مقر گروهک انجام شد."
    new = "سپاه پاسداران: حمله موشکی به مقر گروهک داعش انجام شد!"
    d = word_diff(old, new)
    assert "".join(t for op, t in d if op != "del") == new
    assert "".join(t for op, t in d if op != "ins") == old
    assert ("ins", "موشکی ") in d or any(op == "ins" and "موشکی" in t for op, t in d)
    assert [t for op, t in d if op == "del"] == ["شد."]
    assert word_diff("same text", "same text") == [("same", "same text")]
    assert word_diff(None, "new") == [("ins", "new")]


def test_pieces_merge_and_clip_spans() -> None:
    assert pieces("abc def ghi", [(4, 7), (0, 3), (2, 5), (9, 99)]) == [
        (True, "abc def"), (False, " g"), (True, "hi")]
    assert pieces("", []) == [(False, "")]


def test_pieces_leave_a_mark_or_zwnj_at_a_span_edge_outside_the_highlight() -> None:
    # a rule's match can end on the RLM after a phrase (the matcher's span): the <mark> holds the words
    text = "تبنى الدولة الإسلامية\u200f الهجوم و\u200cبیانیه"
    s = text.index("الدولة")
    e = text.index("\u200f") + 1
    b = text.index("\u200c")
    assert pieces(text, [(s, e), (b, len(text))]) == [
        (False, "تبنى "), (True, "الدولة الإسلامية"), (False, "\u200f الهجوم و\u200c"), (True, "بیانیه")]
    assert pieces("\u200f", [(0, 1)]) == [(False, "\u200f")]


def test_bidi_controls_neutralised_same_length() -> None:
    text = "a\u202eb\u2067c\u200fd"
    out = neutralize_bidi(text)
    assert out == "a\ufffdb\ufffdc\u200fd" and len(out) == len(text)


def test_text_dir() -> None:
    assert text_dir("@KermanGov_IR مراسم تشییع شهدای حادثه تروریستی کرمان") == "rtl"
    assert text_dir("Amaq News: الدولة") == "auto"  # 8 Latin letters, 6 Arabic
    assert text_dir([(False, "بيان "), (True, "الدولة")]) == "rtl"
    assert text_dir("") == "auto"


def test_day_series_fills_gaps_and_bars_scale() -> None:
    s = day_series({"2024-01-01": 2, "2024-01-04": 4})
    assert s == [("2024-01-01", 2), ("2024-01-02", 0), ("2024-01-03", 0), ("2024-01-04", 4)]
    assert len(day_series({"2024-01-01": 1, "2024-12-31": 1}, max_days=30)) == 30
    b = bars(s)
    assert b["peak"] == 4 and b["total"] == 6 and len(b["bars"]) == 4
    tallest = max(b["bars"], key=lambda x: x["h"])
    assert tallest["day"] == "2024-01-04" and tallest["y"] == b["top"]
    assert [x["h"] for x in b["bars"]][1:3] == [0, 0]
    assert bars([])["bars"] == []


def test_search_params_and_urls() -> None:
    p = parse_params({"q": " الدولة ", "kind": ["claim,statement"], "level": ["high"]})
    assert p["q"] == "الدولة" and p["kind"] == ["claim", "statement"] and p["sort"] == "rank"
    url = url_for(p, level=[])
    assert url.startswith("/search?q=%D8%A7") and "kind=claim&kind=statement" in url and "level" not in url
    assert url_for({"q": "", "since": "", "until": ""}) == "/search"
