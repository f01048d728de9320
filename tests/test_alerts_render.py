"""Alert content: Slack escaping/bold/truncation, email subject/text/HTML, templates."""

from __future__ import annotations

import json

import pytest
from alerts_support import HOSTILE, hit_for, message

from monitor.alerts import slack_format as sf
from monitor.alerts.render import Renderer, RenderError, hit_context, one_line, render_row


def _facts(text: str = HOSTILE, **over):
    term = "claimed responsibility"
    start = text.find(term)
    facts = {
        "hit_id": 7,
        "hit_created_at": "2024-05-01T12:00:01.000000Z",
        "rule_id": "claims",
        "level": "high",
        "title": "Claim of responsibility",
        "platform": "telegram",
        "channel_id": "-1001",
        "channel": "amaq_example",
        "channel_title": "Amaq Example",
        "message_id": "42",
        "date": "2024-05-01T12:00:00Z",
        "text": text,
        "url": None,
        "matches": [{"selection": "s1", "term": term, "start": start, "end": start + len(term), "field": "text"}]
        if start >= 0
        else [],
        "forwarded_from": {"name": "Source <b>", "id": "55", "message_id": "9", "date": "2024-04-30T00:00:00Z"},
        "media": [{"type": "photo", "size": 123456}, {"type": "document", "file_name": "<x>.pdf"}],
    }
    facts.update(over)
    return facts


def _all_slack_text(alert) -> str:
    return alert.slack_text + "\n" + json.dumps(alert.slack_blocks, ensure_ascii=False)


# -- slack_format ---------------------------------------------------------------------


def test_escape_neutralises_mentions_and_links():
    out = sf.escape("<!channel> <!here> <@U123> <https://evil|click> a&b")
    assert out == "&lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt; &lt;https://evil|click&gt; a&amp;b"
    assert "<" not in out and ">" not in out


def test_bold_uses_original_offsets_after_escaping():
    text = "a<b & c> claimed responsibility <!here> end"
    s = text.index("claimed")
    out = sf.mrkdwn_text(text, [(s, s + len("claimed responsibility"))])
    assert out == "a&lt;b &amp; c&gt; *claimed responsibility* &lt;!here&gt; end"


def test_bold_inside_word_gets_word_boundaries_and_overlaps_merge():
    text = "والدولة claims"
    out = sf.mrkdwn_text(text, [(1, 7), (2, 5)])  # "الدولة" after the proclitic و
    assert out == "و\u200b*الدولة*" + " claims"
    out2 = sf.mrkdwn_text("xclaimy", [(1, 6)])
    assert out2 == "x\u200b*claim*\u200by"


def test_bold_spans_out_of_range_are_ignored():
    assert sf.mrkdwn_text("abc", [(2, 10), (-1, 1), (5, 6)]) == "abc"


def test_truncation_respects_limit_and_never_cuts_an_entity():
    text = "&" * 1000  # escapes to 5000 chars
    out = sf.mrkdwn_text(text, [], 3000)
    assert sf.slen(out) <= 3000
    assert out.endswith("…")
    body = out[:-1]
    assert body == "&amp;" * (len(body) // 5)


def test_truncation_counts_utf16_units():
    text = "😀" * 2000  # 4000 UTF-16 units
    out = sf.mrkdwn_text(text, [], 3000)
    assert sf.slen(out) <= 3000 and out.endswith("…")
    assert len(out) == 1500  # 1499 emoji (2998 units) + "…"


def test_truncated_bold_segment_does_not_leave_a_dangling_marker():
    text = "x" * 10 + " claimed responsibility " + "y" * 10
    s = text.index("claimed")
    out = sf.mrkdwn_text(text, [(s, s + 22)], 20)
    assert sf.slen(out) <= 20 and out.endswith("…")
    assert out.count("*") % 2 == 0


def test_links_only_for_http_urls_and_labels_escaped():
    assert sf.link("https://t.me/x/1", "a<b>|c") == "<https://t.me/x/1|a&lt;b&gt;\u2223c>"
    assert sf.link("javascript:alert(1)", "x") == "x"
    assert sf.link("https://e.org/a>b|c&d", "l") == "<https://e.org/a%3Eb%7Cc&amp;d|l>"


def test_clip_keeps_entities_whole():
    out = sf.clip("ab&amp;&amp;", 6)
    assert out in ("ab…", "ab&amp;…") and sf.slen(out) <= 6


# -- rendered alert -----------------------------------------------------------------


def test_slack_alert_content_and_escaping():
    alert = Renderer().render(hit_context(_facts()))
    everything = _all_slack_text(alert)
    for bad in ("<!channel>", "<!here>", "<@U123>", "<https://evil.example", "{{ 49 }}", "49 claimed"):
        assert bad not in everything
    body = alert.slack_blocks[2]["text"]["text"]
    assert body == (
        "&lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt; &lt;https://evil.example|click&gt; &amp; {{ 7*7 }} "
        "*claimed responsibility*"
    )
    head = alert.slack_blocks[0]["text"]["text"]
    assert "*HIGH*" in head and "Claim of responsibility" in head
    fields = [f["text"] for f in alert.slack_blocks[1]["fields"]]
    assert "*Channel*\n<https://t.me/amaq_example|Amaq Example (@amaq_example)>" in fields
    assert "*Posted*\n2024-05-01 12:00:00 UTC" in fields
    assert "*Message*\n<https://t.me/amaq_example/42|t.me/amaq_example/42>" in fields
    notes = " ".join(e["text"] for e in alert.slack_blocks[3]["elements"])
    assert "Forwarded from Source &lt;b&gt; (id 55), message 9" in notes
    assert "photo (123.5 KB)" in notes and "document &lt;x&gt;.pdf" in notes


def test_long_text_is_truncated_with_ellipsis_to_slack_limits():
    text = "claimed responsibility " + "word " * 2000
    alert = Renderer().render(hit_context(_facts(text)))
    body = alert.slack_blocks[2]["text"]["text"]
    assert body.endswith("…") and sf.slen(body) <= 3000
    assert body.startswith("*claimed responsibility*")
    assert sf.slen(alert.slack_text) <= 40000
    for block in alert.slack_blocks:
        if "text" in block:
            assert sf.slen(block["text"]["text"]) <= 3000
        for f in block.get("fields", []):
            assert sf.slen(f["text"]) <= 2000


def test_email_subject_is_one_line_with_level_title_channel():
    facts = _facts(channel_title="Evil\r\nBcc: victim@evil.example\u2028X: y")
    alert = Renderer().render(hit_context(facts))
    assert alert.subject == (
        "[claimwatch][HIGH] Claim of responsibility · Evil Bcc: victim@evil.example X: y (@amaq_example)"
    )
    assert "\r" not in alert.subject and "\n" not in alert.subject
    assert one_line("a\r\n\tb\x00c\x85d") == "a b c d"


def test_html_escapes_all_message_text_and_shows_jinja_literally():
    facts = _facts(channel_title="<script>alert(1)</script>", url="javascript:alert(1)")
    alert = Renderer().render(hit_context(facts))
    assert "<script>" not in alert.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in alert.html
    assert "&lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt; &lt;https://evil.example|click&gt; &amp; {{ 7*7 }}" in alert.html
    assert "<strong>claimed responsibility</strong>" in alert.html
    assert "javascript:" not in alert.html  # unsafe message link replaced by the t.me link
    assert 'href="https://t.me/amaq_example/42"' in alert.html
    assert "{{ 7*7 }}" in alert.text and "49" not in alert.text
    assert HOSTILE in alert.text  # the plain-text part keeps the evidence verbatim


def test_edited_and_deleted_render_previous_and_new_text():
    r = Renderer()
    edited = r.render(hit_context(_facts("new <!here>"), kind="edited", change={"previous_text": "old <b>", "new_text": "new <!here>"}))
    assert edited.subject.startswith("[claimwatch][HIGH] Edited: Claim of responsibility · ")
    blocks = json.dumps(edited.slack_blocks)
    assert "old &lt;b&gt;" in blocks and "new &lt;!here&gt;" in blocks
    assert "Before:\nold <b>" in edited.text and "After:\nnew <!here>" in edited.text
    assert "old &lt;b&gt;" in edited.html
    deleted = r.render(hit_context(_facts("gone"), kind="deleted", change={"previous_text": "gone", "new_text": None}))
    assert deleted.subject.startswith("[claimwatch][HIGH] Deleted: ")
    assert "the archived text is kept" in deleted.text


def test_user_templates_override_builtin(tmp_path):
    (tmp_path / "alert.txt.j2").write_text("CUSTOM {{ title }} :: {{ message.text }}\n", encoding="utf-8")
    alert = Renderer(tmp_path).render(hit_context(_facts()))
    assert alert.text == f"CUSTOM Claim of responsibility :: {HOSTILE}\n"
    assert "<strong>claimed responsibility</strong>" in alert.html  # html still the built-in one


def test_user_template_html_is_autoescaped(tmp_path):
    (tmp_path / "alert.html.j2").write_text("<p>{{ message.text }}</p>", encoding="utf-8")
    alert = Renderer(tmp_path).render(hit_context(_facts()))
    assert alert.html.startswith("<p>&lt;!channel&gt;")


def test_user_template_cannot_escape_the_sandbox(tmp_path):
    (tmp_path / "alert.txt.j2").write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}", encoding="utf-8")
    with pytest.raises(RenderError, match="SecurityError|UndefinedError"):
        Renderer(tmp_path).render(hit_context(_facts()))


def test_missing_template_folder_is_a_clear_error(tmp_path):
    with pytest.raises(RenderError, match="alerts.templates: .*not a folder"):
        Renderer(tmp_path / "nope")


def test_render_row_uses_the_version_that_matched(archive):
    msg = message("first text claimed responsibility")
    archive.store([(msg, [hit_for(msg)])])
    edited = message("edited later, no claim any more", edit_date=msg.date)
    archive.store([(edited, [])])
    row = dict(zip(("id", "hit_id", "destination", "kind", "payload", "dedup_key"),
                   archive.conn.execute("SELECT id, hit_id, destination, kind, payload, dedup_key FROM outbox").fetchone()))
    alert = render_row(archive.conn, row, Renderer())
    assert "first text *claimed responsibility*" in alert.slack_blocks[2]["text"]["text"]
    assert alert.outbox_id == row["id"] and alert.destination == "slack"


# -- issue 09 case 8: bidi controls and Slack emphasis in quoted text ----------------------
_BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]


def test_bidi_controls_are_neutralised_in_every_output(tmp_path):
    import asyncio
    import io

    from monitor.alerts.destinations.console import ConsoleDestination

    text = "Attack \u202eevil.exe\u202c claimed responsibility \u2067x\u2069 \u200fRLM stays"
    facts = _facts(text, channel_title="Chan\u202enaL", title="Claim \u2066t\u2069", author="a\u202bb")
    alert = Renderer().render(hit_context(facts))
    outputs = {
        "text": alert.text,
        "html": alert.html,
        "subject": alert.subject,
        "slack": _all_slack_text(alert),
        "json": json.dumps(alert.data, ensure_ascii=False),
    }
    stream = io.StringIO()
    asyncio.run(ConsoleDestination(stream=stream).send(alert))
    outputs["console"] = stream.getvalue()
    for name, out in outputs.items():
        assert not any(ch in out for ch in _BIDI), name
    assert "\ufffdevil.exe\ufffd" in alert.text and "\u200fRLM stays" in alert.text  # marks are kept
    assert "Chan\ufffdnaL" in alert.subject
    # the match is still bolded at the right place in Slack (offsets unchanged)
    assert "*claimed responsibility*" in _all_slack_text(alert)


def test_bidi_text_stays_raw_in_the_archive(tmp_path):
    from monitor.archive import Archive
    from monitor.model import Message
    from datetime import datetime, timezone

    raw = "x \u202eabc\u202c y"
    with Archive.open(tmp_path / "a.db") as archive:
        archive.store([(Message("telegram", "1", "1", datetime(2024, 1, 1, tzinfo=timezone.utc), raw), [])])
        assert archive.get_message("telegram", "1", "1")["text"] == raw


def test_slack_emphasis_in_quoted_text_is_neutralised():
    text = "*bold* _italic_ ~strike~ `code` claimed responsibility for claims_test 2*3"
    alert = Renderer().render(hit_context(_facts(text)))
    body = alert.slack_blocks[2]["text"]["text"]
    for marker in ("*bold*", "_italic_", "~strike~", "`code`"):
        assert marker not in body, marker
    assert "claims_test" in body and "2*3" in body
    assert "*claimed responsibility*" in body  # our own bold still works
    assert "*bold*" in alert.text  # plain text and the archive keep what was written


def test_bold_stops_before_a_bidi_mark_or_zwnj_at_the_end_of_a_match(tmp_path):
    """The matcher's phrase span can end on an RLM (or a ZWNJ) that follows the phrase: bolded,
    Slack got ``*الدولة الإسلامية\u200f*`` and email ``<b>…\u200f</b>``, the mark inside the run
    (the closing marker did not close, the bold spilled). Rendering bolds the words only; the
    mark stays in the text, outside."""
    from datetime import datetime, timezone

    from monitor.model import Message
    from monitor.rules import Matcher, load_rules

    (tmp_path / "r.yaml").write_text('id: is-name\ntitle: IS named\nlevel: high\nmatch:\n  n:\n'
                                     '    any: ["الدولة الإسلامية"]\ncondition: n\n', encoding="utf-8")
    text = "تبنى تنظيم الدولة الإسلامية\u200f الهجوم و\u200cالدولة الإسلامية\u200c"
    msg = Message("telegram", "-1001", "42", datetime(2024, 5, 1, tzinfo=timezone.utc), text=text)
    [hit] = Matcher(load_rules([tmp_path])).match(msg)
    spans = [(x.start, x.end) for x in hit.matches]
    assert any(text[e - 1] in "\u200f\u200c" for _s, e in spans)  # the matcher's spans (not changed here)
    matches = [{"selection": "n", "term": "x", "start": s, "end": e, "field": "text"} for s, e in spans]
    alert = Renderer().render(hit_context(_facts(text, matches=matches)))
    slack = _all_slack_text(alert)
    assert "*الدولة الإسلامية*\u200b\u200f الهجوم" in slack, slack
    assert "\u200f*" not in slack and "\u200c*" not in slack, slack
    assert "\u200f</strong>" not in alert.html and "\u200c</strong>" not in alert.html, alert.html
    assert "<strong>الدولة الإسلامية</strong>\u200f" in alert.html  # the mark is kept, outside the bold
