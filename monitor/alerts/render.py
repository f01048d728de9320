"""Turn outbox rows into :class:`Alert` content: Slack blocks, email subject/text/HTML, JSON.

Message text, channel names and file names come from Telegram/X and are hostile: Slack
text goes through :mod:`.slack_format` (escaped, then bold), email text and HTML come
from Jinja2 templates rendered in a ``SandboxedEnvironment`` with autoescaping for
``*.html.j2``. Message text is only ever a template *variable*, never template source,
so ``{{ 7*7 }}`` in a post shows literally.

Templates ship in ``monitor/alerts/templates``; a folder named in ``alerts.templates``
overrides any of them by file name.
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
import unicodedata
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, TemplateError, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

from ..archive.columns import classifier_why, score_text
from ..bidi import neutralize_all, trim_span
from ..model import channel_label, channel_url, make_url
from . import records
from . import slack_format as sf
from .alert import Alert
from .kinds import AlertKind
from ..timefmt import human_utc

BUILTIN_TEMPLATES = Path(__file__).parent / "templates"
SUBJECT_LIMIT = 200
FOLLOWUP_LIST_LIMIT = 20
_LEVEL_EMOJI = {
    "critical": ":rotating_light:",
    "high": ":red_circle:",
    "medium": ":large_orange_circle:",
    "low": ":large_blue_circle:",
    "info": ":information_source:",
    "test": ":white_check_mark:",
}


class RenderError(Exception):
    """An outbox row cannot be turned into an alert (missing hit, bad template...)."""


# -- small text helpers ------------------------------------------------------------
_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+")


def one_line(text: str, limit: int = SUBJECT_LIMIT) -> str:
    """A single header-safe line: no CR/LF or other control/line-separator characters."""
    text = _LINE_BREAKS.sub(" ", text or "")
    text = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _size(n: Any) -> str:
    try:
        size = float(n)
    except (TypeError, ValueError):
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return ""


def media_note(media: list[Mapping[str, Any]] | None) -> str:
    parts = []
    for m in media or []:
        bits = [str(m.get("type") or "media")]
        if m.get("file_name"):
            bits.append(str(m["file_name"]))
        size = _size(m.get("size")) if m.get("size") is not None else ""
        if size:
            bits.append(f"({size})")
        parts.append(" ".join(bits))
    return ", ".join(parts)


def forward_note(fwd: Mapping[str, Any] | None) -> str:
    """``Name (id 123), message 45, 2024-05-01 12:00:00 UTC`` for a forwarded post."""
    if not fwd:
        return ""
    who = str(fwd.get("name") or fwd.get("id") or "unknown source")
    if fwd.get("name") and fwd.get("id"):
        who += f" (id {fwd['id']})"
    parts = [who]
    if fwd.get("message_id"):
        parts.append(f"message {fwd['message_id']}")
    if fwd.get("date"):
        parts.append(human_utc(fwd["date"]))
    return ", ".join(parts)


def http_url(url: Any) -> str | None:
    """``url`` if it is a plain http(s) URL, else None (no ``javascript:`` links in HTML)."""
    return url if isinstance(url, str) and sf.safe_url(url) is not None else None


def _spans(text: str, matches: list[Mapping[str, Any]]) -> list[tuple[int, int]]:
    spans = []
    for m in matches:
        if m.get("field", "text") != "text":
            continue
        try:
            s, e = int(m["start"]), int(m["end"])
        except (KeyError, TypeError, ValueError):
            continue
        if 0 <= s < e <= len(text):
            # the matcher's span may end on an RLM or ZWNJ (or start on one): bolding it would put
            # the control inside Slack's *…* / the <b> run, where it turns the closing mark and
            # the bold spills; the character stays in the text, outside the highlight
            s, e = trim_span(text, s, e)
            if s < e:
                spans.append((s, e))
    return spans


def _terms(text: str, matches: list[Mapping[str, Any]]) -> list[str]:
    """Matched terms as they appear in the text (unique, in order)."""
    seen: dict[str, None] = {}
    for m in matches:
        term = None
        if m.get("field", "text") == "text":
            try:
                s, e = int(m["start"]), int(m["end"])
                if 0 <= s < e <= len(text):
                    s, e = trim_span(text, s, e)  # "الدولة الإسلامية", not with the RLM after it
                    term = text[s:e]
            except (KeyError, TypeError, ValueError):
                pass
        term = term or str(m.get("term") or "")
        if term:
            seen.setdefault(term, None)
    return list(seen)


# -- contexts (plain JSON-able dicts, the template variables) -----------------------
def _actor_items(actors: Any) -> list[dict[str, str]]:
    # ids from the archive; the renderer fills in the titles it knows (rules/actors.yml)
    return [{"id": one_line(str(a), 100), "title": one_line(str(a), 100)} for a in actors or []]


def _score(value: Any) -> float | None:
    """A hit's ``score`` (a learned classifier's probability) as a float; None for a rule's hit."""
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _why(h: Mapping[str, Any]) -> str:
    """``learned classifier: claim, probability 0.83`` for a classifier's hit (no terms), else ""."""
    return one_line(classifier_why(h.get("hit_kind") or "watch", _score(h.get("score"))), 200)


def hit_context(
    facts: Mapping[str, Any],
    *,
    kind: str = "alert",
    change: Mapping[str, Any] | None = None,
    also: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Template context of an alert (or an edited/deleted follow-up) from :func:`records.load_hit`.

    ``also``: the other hits of the message the alert lists (:func:`records.load_listed_hits`),
    after ``facts``, its lead: ``rules`` lists them all, ``hit.actors`` and ``matches`` are the
    union, the lead gives level, title and kind. A learned classifier's hit (``score`` set, no
    matches, often no actors) adds no terms: ``classifier`` says why it matched
    (``learned classifier: claim, probability 0.83``), one line per such hit listed."""
    text = facts.get("text") or ""
    matches = list(facts.get("matches") or [])
    same_text = [h for h in also if h.get("text_sha256") == facts.get("text_sha256")]
    for other in same_text:  # the offsets are into the same text
        matches.extend(other.get("matches") or [])
    actors = list(dict.fromkeys(a for h in (facts, *also) for a in h.get("actors") or []))
    platform = facts.get("platform")
    url = http_url(facts.get("url")) or (
        make_url(platform, facts.get("channel"), facts.get("channel_id"), facts.get("message_id"))
        if platform and facts.get("channel_id") and facts.get("message_id")
        else None
    )
    ctx: dict[str, Any] = {
        "kind": kind,
        "test": kind == AlertKind.TEST,
        "level": one_line(str(facts.get("level") or "info").upper(), 30),
        "title": one_line(str(facts.get("title") or facts.get("rule_id") or ""), 300),
        "rule_id": facts.get("rule_id") or "",
        "hit": {
            "id": facts.get("hit_id"),
            "stored": human_utc(facts.get("hit_created_at")),
            "kind": one_line(str(facts.get("hit_kind") or "watch"), 30),
            "actors": _actor_items(actors),
            "score": _score(facts.get("score")),
        },
        # every rule that hit (the lead first): one alert per message, however many rules matched
        "rules": [
            {
                "hit_id": h.get("hit_id"),
                "rule_id": one_line(str(h.get("rule_id") or ""), 200),
                "title": one_line(str(h.get("title") or h.get("rule_id") or ""), 300),
                "level": one_line(str(h.get("level") or "info").upper(), 30),
                "kind": one_line(str(h.get("hit_kind") or "watch"), 30),
                "actors": _actor_items(h.get("actors")),
                "score": _score(h.get("score")),
                "why": _why(h),  # "" for a rule's hit (its terms are in ``matches``)
            }
            for h in (facts, *also)
        ],
        # why the hits without terms matched: "learned classifier: claim, probability 0.83"
        "classifier": [w for w in dict.fromkeys(_why(h) for h in (facts, *also)) if w],
        "channel": {
            "label": one_line(
                channel_label(platform, facts.get("channel"), facts.get("channel_title"), facts.get("channel_id")), 200
            ),
            "url": channel_url(platform, facts.get("channel")),
            "platform": platform,
            "id": facts.get("channel_id"),
        },
        "message": {
            "id": facts.get("message_id"),
            "url": url,
            "date": human_utc(facts.get("date")),
            "date_iso": facts.get("date"),
            "edited": human_utc(facts.get("edit_date")),
            "deleted": human_utc(facts.get("deleted_at")),
            "author": facts.get("author"),
            "text": text,
            "segments": [{"text": t, "match": b} for t, b in sf.segments(text, _spans(text, matches))],
            "forwarded": forward_note(facts.get("forwarded_from")),
            "media": (f"album of {facts['album_items']}: " if facts.get("album_items") else "")
            + media_note(facts.get("media")),
        },
        "matches": _terms(text, matches),
        "match_records": matches,
        "change": None,
        # the incident of the hit (id, title, note: "claim by ..., officials blamed ..."), set
        # by context_for_row from the incident tables
        "incident": None,
    }
    if kind in (AlertKind.EDITED, AlertKind.DELETED):
        change = change or {}
        previous = change.get("previous_text")
        ctx["change"] = {
            "previous_text": text if previous is None else str(previous),
            "new_text": None if change.get("new_text") is None else str(change.get("new_text")),
        }
    return ctx


def followup_context(payload: Mapping[str, Any], hits: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Context of an "N more hits" follow-up (payload written by the throttle policy)."""
    home = (payload.get("platform"), str(payload.get("channel_id")))
    items = []
    reposts: dict[tuple[str, str], dict[str, Any]] = {}
    for h in hits:
        label = one_line(channel_label(h.get("platform"), h.get("channel"), h.get("channel_title"), h.get("channel_id")), 200)
        url = http_url(h.get("url")) or make_url(h["platform"], h.get("channel"), h["channel_id"], h["message_id"])
        repost = (h.get("platform"), str(h.get("channel_id"))) != home
        items.append({"channel": label, "url": url, "date": human_utc(h.get("date")), "repost": repost})
        if repost:
            r = reposts.setdefault(
                (h.get("platform"), str(h.get("channel_id"))),
                {"channel": label, "url": channel_url(h.get("platform"), h.get("channel")), "count": 0},
            )
            r["count"] += 1
    count = int(payload.get("count") or 0)
    return {
        "kind": "followup",
        "test": False,
        "level": one_line(str(payload.get("level") or "info").upper(), 30),
        "title": one_line(str(payload.get("title") or payload.get("rule_id") or ""), 300),
        "rule_id": payload.get("rule_id") or "",
        "channel": {
            "label": one_line(str(payload.get("channel") or payload.get("channel_id")), 200),
            "url": http_url(payload.get("channel_url")),
            "platform": payload.get("platform"),
            "id": payload.get("channel_id"),
        },
        "count": count,
        "window": {
            "start": human_utc(payload.get("window_start")),
            "end": human_utc(payload.get("window_end")),
            "seconds": payload.get("window_seconds"),
        },
        "first_hit_id": payload.get("first_hit_id"),
        "hits": items[:FOLLOWUP_LIST_LIMIT],
        "more": max(0, count - min(len(items), FOLLOWUP_LIST_LIMIT)),
        "reposts": list(reposts.values()),
    }


def digest_context(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Context of a digest (payload built by :func:`monitor.alerts.digest.build_digest`)."""
    return {
        "kind": "digest",
        "test": False,
        "level": "DIGEST",
        "title": "claimwatch digest",
        "since": human_utc(payload.get("since")),
        "until": human_utc(payload.get("until")),
        "total": int(payload.get("total_hits") or 0),
        # "why": a learned classifier's line ("mean probability 0.81"; "" for a rule, and in a
        # digest queued before there was one)
        "rules": [{**r, "why": one_line(str(r.get("why") or ""), 100)} for r in payload.get("rules") or []],
        "channels": [{**c, "url": http_url(c.get("url"))} for c in payload.get("channels") or []],
        "latest": [
            {**h, "url": http_url(h.get("url")), "date": human_utc(h.get("date")),
             "why": one_line(str(h.get("why") or ""), 100)}
            for h in payload.get("latest") or []
        ],
        "incidents": list(payload.get("incidents") or []),
    }


def notice_context(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Context of a notice from the daemon itself (e.g. a rules reload failed)."""
    return {
        "kind": "notice",
        "test": False,
        "level": one_line(str(payload.get("level") or "notice").upper(), 30),
        "title": one_line(str(payload.get("title") or "claimwatch notice"), 300),
        "text": str(payload.get("text") or ""),
    }


def sample_context(destination: str = "") -> dict[str, Any]:
    """A sample alert for ``claimwatch alerts test`` (fixed content, looks like a real one)."""
    text = (
        "This is a test alert from claimwatch. The word claim is bolded as a matched term; "
        "<!channel> and <https://example.org|links> in a post are shown literally."
    )
    start = text.index("claim ")
    facts = {
        "hit_id": None,
        "hit_created_at": None,
        "rule_id": "claimwatch-test",
        "level": "test",
        "title": "claimwatch test alert" + (f" for {destination}" if destination else ""),
        "platform": "telegram",
        "channel_id": "0",
        "channel": "claimwatch_test",
        "channel_title": "claimwatch test",
        "message_id": "1",
        "date": None,
        "text": text,
        "matches": [{"selection": "test", "term": "claim", "start": start, "end": start + 5, "field": "text"}],
        "url": "https://t.me/claimwatch_test/1",
    }
    return hit_context(facts, kind="test")


# -- the renderer -----------------------------------------------------------------
class Renderer:
    """Renders contexts into :class:`Alert` objects (templates: built-in, overridable)."""

    def __init__(self, templates_dir: str | Path | None = None, actor_titles: Mapping[str, str] | None = None) -> None:
        self.actor_titles = dict(actor_titles or {})
        loaders = []
        if templates_dir:
            path = Path(templates_dir)
            if not path.is_dir():
                raise RenderError(f"alerts.templates: {path}: not a folder")
            loaders.append(FileSystemLoader(str(path)))
        loaders.append(FileSystemLoader(str(BUILTIN_TEMPLATES)))
        self.env = SandboxedEnvironment(
            loader=ChoiceLoader(loaders),
            autoescape=select_autoescape(enabled_extensions=("html.j2", "html", "htm"), default=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def _titled(self, actors: Any) -> list[dict[str, str]]:
        return [{"id": a["id"], "title": one_line(self.actor_titles.get(a["id"], a["title"]), 100)} for a in actors or []]

    def _template(self, name: str, ctx: Mapping[str, Any]) -> str:
        try:
            return self.env.get_template(name).render(**ctx)
        except TemplateError as exc:
            raise RenderError(f"template {name}: {type(exc).__name__}: {exc}") from exc

    def render(self, ctx: Mapping[str, Any]) -> Alert:
        hit = ctx.get("hit")
        if hit and self.actor_titles:
            ctx = {**ctx, "hit": {**hit, "actors": self._titled(hit.get("actors"))}}
            if ctx.get("rules"):
                ctx["rules"] = [{**r, "actors": self._titled(r.get("actors"))} for r in ctx["rules"]]
        inc = ctx.get("incident")
        if inc:
            from ..incidents.alerting import note_text

            note = inc.get("note")
            ctx = {**ctx, "incident": {
                "id": inc["id"], "title": one_line(str(inc.get("title") or ""), 200),
                "note": one_line(note_text(note, self.actor_titles), 500) if isinstance(note, Mapping) else note,
            }}
        # Every output below (text, HTML, Subject, Slack, JSON) is built from this context.
        ctx = neutralize_all(dict(ctx))
        kind = ctx["kind"]
        spec = KINDS.get(kind)
        if spec is None:
            raise RenderError(f"unknown alert kind {kind!r}")
        text = self._template(f"{spec.template}.txt.j2", ctx)
        html = self._template(f"{spec.template}.html.j2", ctx)
        slack_text, blocks = spec.slack(ctx)
        return Alert(
            kind=kind,
            level=ctx["level"],
            title=one_line(_headline(ctx), 300),
            subject=subject(ctx),
            text=text,
            html=html,
            slack_text=sf.message_text(slack_text),
            slack_blocks=blocks[: sf.MAX_BLOCKS],
            data=_data(ctx),
            incident_id=inc["id"] if inc else None,
        )


def _more_rules(ctx: Mapping[str, Any]) -> str:
    """`` (+2 rules)`` when the alert lists more than its lead's rule, else ""."""
    n = len(ctx.get("rules") or ()) - 1
    return f" (+{n} rule{'s' if n > 1 else ''})" if n > 0 else ""


def _headline(ctx: Mapping[str, Any]) -> str:
    spec = KINDS.get(ctx["kind"])
    return spec.headline(ctx) if spec is not None else str(ctx["title"])


def subject(ctx: Mapping[str, Any]) -> str:
    """``[claimwatch][LEVEL] rule title · channel`` on one line (hostile parts cleaned)."""
    spec = KINDS.get(ctx["kind"])
    if spec is not None and spec.subject is not None:
        return one_line(spec.subject(ctx))
    level = "TEST" if ctx["kind"] == AlertKind.TEST else ctx["level"]
    hit = ctx.get("hit") or {}
    kind = f"[{one_line(hit['kind'], 20)}]" if hit.get("kind") not in (None, "", "watch") else ""
    actors = actor_line(ctx)
    return one_line(
        f"[claimwatch][{one_line(level, 20)}]{kind} {_headline(ctx)}" + (f" · {actors}" if actors else "")
        + f" · {ctx['channel']['label']}"
    )


def rule_line(rule: Mapping[str, Any]) -> str:
    """One hit an alert lists: ``HIGH claim · Claim of responsibility (claim-en)``; a learned
    classifier's: ``MEDIUM claim · Learned classifier: claim (classifier, probability 0.83)``."""
    score = score_text(rule.get("score"))
    return one_line(f"{rule['level']} {rule['kind']} · {rule['title']} ({rule['rule_id']}"
                    + (f", probability {score}" if score else "") + ")", 400)


def actor_line(ctx: Mapping[str, Any], limit: int = 200) -> str:
    """The hit's actors as one line of titles (``Houthis (Ansar Allah), Iran``); "" when none."""
    hit = ctx.get("hit") or {}
    return one_line(", ".join(a["title"] for a in hit.get("actors") or []), limit)


def _data(ctx: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON record for file/webhook destinations (the context without display helpers)."""
    data = {k: v for k, v in ctx.items() if k != "match_records"}
    if "message" in data:
        data["message"] = {k: v for k, v in data["message"].items() if k != "segments"}
        data["matches"] = ctx.get("match_records", [])
        data["matched_terms"] = ctx.get("matches", [])
    return data


# -- Slack ------------------------------------------------------------------------
def _emoji(level: str) -> str:
    return _LEVEL_EMOJI.get(level.lower(), ":warning:")


def _channel_link(ctx: Mapping[str, Any]) -> str:
    return sf.link(ctx["channel"].get("url"), ctx["channel"]["label"])


def _message_fields(ctx: Mapping[str, Any]) -> list[str]:
    msg = ctx["message"]
    items = ["*Channel*\n" + _channel_link(ctx)]
    if msg.get("date"):
        items.append("*Posted*\n" + sf.escape(msg["date"]))
    if msg.get("url"):
        items.append("*Message*\n" + sf.link(msg["url"], _short_url(msg["url"])))
    return items


def _short_url(url: str) -> str:
    return re.sub(r"^https?://(www\.)?", "", url)


def _context_notes(ctx: Mapping[str, Any]) -> list[str]:
    msg = ctx["message"]
    notes = []
    if msg.get("forwarded"):
        notes.append(":arrow_right_hook: Forwarded from " + sf.plain(msg["forwarded"], 500))
    if msg.get("media"):
        notes.append(":paperclip: Media: " + sf.plain(msg["media"], 500))
    if msg.get("edited"):
        notes.append(":pencil2: Edited " + sf.escape(msg["edited"]))
    rules = ctx.get("rules") or ()
    if len(rules) > 1:  # an alert listing several hits: each hit and its rule
        notes.append(" · ".join(f"hit #{r['hit_id']} rule `{sf.plain(r['rule_id'], 200)}`" for r in rules))
        notes.append(f"kind `{sf.plain(str(ctx['hit']['kind']), 30)}`")
        return notes
    tail = f"rule `{sf.plain(str(ctx['rule_id']), 200)}`"
    if (ctx.get("hit") or {}).get("kind"):
        tail += f" · kind `{sf.plain(str(ctx['hit']['kind']), 30)}`"
    if ctx.get("hit", {}).get("id") is not None:
        tail = f"hit #{ctx['hit']['id']} · " + tail
    notes.append(tail)
    return notes


def _slack_alert(ctx: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    msg = ctx["message"]
    kind = (ctx.get("hit") or {}).get("kind")
    kind = None if kind == "watch" else kind  # watch lists (the default kind) get no badge
    head = f"{_emoji(ctx['level'])} *{sf.plain(ctx['level'], 30)}*" + (f" · `{sf.plain(kind, 30)}`" if kind else "")
    head += f" · *{sf.plain(ctx['title'], 500)}*" + _more_rules(ctx)
    if ctx.get("test"):
        head += " _(test)_"
    text = msg["text"] or ""
    spans, pos = [], 0
    for seg in msg["segments"]:
        if seg["match"]:
            spans.append((pos, pos + len(seg["text"])))
        pos += len(seg["text"])
    body = sf.mrkdwn_text(text, spans, sf.SECTION_TEXT_LIMIT) if text.strip() else "_(no text)_"
    fields = _message_fields(ctx)
    actors = actor_line(ctx, 1000)
    if actors:
        fields.append("*Actors*\n" + sf.plain(actors, 1000))
    if ctx["matches"]:
        fields.append("*Matched*\n" + sf.plain(", ".join(ctx["matches"]), 1000))
    if ctx.get("classifier"):  # a hit without terms: why it matched instead
        fields.append("*Classifier*\n" + sf.plain("; ".join(ctx["classifier"]), 1000))
    if len(ctx.get("rules") or ()) > 1:
        fields.append("*Rules*\n" + sf.lines_within([f"• {sf.plain(rule_line(r), 300)}" for r in ctx["rules"]], 1900))
    inc = ctx.get("incident")
    if inc:
        fields.append(f"*Incident*\n#{inc['id']} " + sf.plain(inc["title"], 300))
    blocks = [sf.section(head), sf.fields(fields), sf.section(body), sf.context(_context_notes(ctx))]
    note = (inc or {}).get("note")
    if note:
        blocks.insert(1, sf.section(":pushpin: " + sf.plain(note, 1000)))
    fallback = (
        f"[{sf.plain(ctx['level'], 30)}]" + (f"[{sf.plain(kind, 30)}]" if kind else "")
        + f" {sf.plain(ctx['title'], 300)}{_more_rules(ctx)}" + (f" · {sf.plain(actors, 200)}" if actors else "")
        + (f" · {sf.plain(note, 300)}" if note else "")
        + f" · {sf.plain(ctx['channel']['label'], 200)}: "
        + (sf.plain(text, 300) if text else "(no text)")
    )
    return fallback, blocks


def _slack_change(ctx: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    change = ctx["change"]
    what = "Edited" if ctx["kind"] == "edited" else "Deleted"
    head = f"{_emoji(ctx['level'])} *{sf.plain(ctx['level'], 30)}* · *{what}:* *{sf.plain(ctx['title'], 500)}*"
    before = sf.mrkdwn_text(change["previous_text"] or "", (), 2900) or "_(no text)_"
    blocks = [sf.section(head), sf.fields(_message_fields(ctx)), sf.section("*Before*\n" + before)]
    if ctx["kind"] == "edited":
        after = sf.mrkdwn_text(change["new_text"] or "", (), 2900) or "_(no text)_"
        blocks.append(sf.section("*After*\n" + after))
    else:
        when = ctx["message"].get("deleted")
        blocks.append(
            sf.section(f"_Deleted{(' at ' + sf.escape(when)) if when else ''}; the archived text is kept._")
        )
    blocks.append(sf.context(_context_notes(ctx)))
    fallback = f"{what}: {sf.plain(ctx['title'], 300)} · {sf.plain(ctx['channel']['label'], 200)}"
    return fallback, blocks


def _slack_followup(ctx: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    n = ctx["count"]
    noun = "hit" if n == 1 else "hits"
    head = (
        f"{_emoji(ctx['level'])} *{n} more {noun}* for *{sf.plain(ctx['title'], 500)}* in {_channel_link(ctx)}"
        f" between {sf.escape(ctx['window']['start'])} and {sf.escape(ctx['window']['end'])}"
    )
    lines = [
        "• " + sf.link(h["url"], h["channel"]) + f" · {sf.escape(h['date'])}" + (" _(same text reposted)_" if h["repost"] else "")
        for h in ctx["hits"]
    ]
    if ctx["more"]:
        lines.append(f"… and {ctx['more']} more")
    blocks = [sf.section(head)]
    if lines:
        blocks.append(sf.section(sf.lines_within(lines, sf.SECTION_TEXT_LIMIT)))
    if ctx["reposts"]:
        rep = [f"• {sf.link(r['url'], r['channel'])}: {r['count']}" for r in ctx["reposts"]]
        blocks.append(sf.section("*Same text reposted in*\n" + sf.lines_within(rep, sf.SECTION_TEXT_LIMIT - 30)))
    blocks.append(sf.context([f"rule `{sf.plain(str(ctx['rule_id']), 200)}` · first alert: hit #{ctx['first_hit_id']}"]))
    fallback = f"{n} more {noun}: {sf.plain(ctx['title'], 300)} · {sf.plain(ctx['channel']['label'], 200)}"
    return fallback, blocks


def _slack_digest(ctx: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    head = (
        f":bar_chart: *claimwatch digest* · {ctx['total']} hits · "
        f"{sf.escape(ctx['since'])} to {sf.escape(ctx['until'])}"
    )
    blocks = [sf.section(head)]
    if ctx["rules"]:
        lines = [
            f"• *{sf.plain(str(r.get('level', '')).upper(), 30)}* {sf.plain(str(r.get('title') or r.get('rule_id')), 300)}: {r['count']}"
            + (f" ({sf.plain(str(r['why']), 100)})" if r.get("why") else "")
            for r in ctx["rules"]
        ]
        blocks.append(sf.section("*By rule*\n" + sf.lines_within(lines, sf.SECTION_TEXT_LIMIT - 20)))
    if ctx["channels"]:
        lines = [f"• {sf.link(c.get('url'), c['channel'])}: {c['count']}" for c in ctx["channels"]]
        blocks.append(sf.section("*Top channels*\n" + sf.lines_within(lines, sf.SECTION_TEXT_LIMIT - 20)))
    if ctx["latest"]:
        lines = [
            f"• {sf.link(h.get('url'), h['channel'])} · {sf.plain(str(h.get('title') or ''), 200)}"
            + (f" ({sf.plain(str(h['why']), 100)})" if h.get("why") else "") + f" · {sf.escape(h.get('date') or '')}"
            for h in ctx["latest"]
        ]
        blocks.append(sf.section("*Latest hits*\n" + sf.lines_within(lines, sf.SECTION_TEXT_LIMIT - 20)))
    if ctx["incidents"]:
        lines = [
            f"• #{i['id']} {sf.plain(str(i['title']), 200)}: {i['messages']} messages, {i['channels']} channels"
            + (f", {i['reposts']} reposts" if i.get("reposts") else "")
            for i in ctx["incidents"]
        ]
        blocks.append(sf.section("*Incidents*\n" + sf.lines_within(lines, sf.SECTION_TEXT_LIMIT - 20)))
    if not ctx["total"]:
        blocks.append(sf.section("_No hits in this period._"))
    fallback = f"claimwatch digest: {ctx['total']} hits, {sf.escape(ctx['since'])} to {sf.escape(ctx['until'])}"
    return fallback, blocks


def _slack_notice(ctx: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    head = f":warning: *{sf.plain(ctx['level'], 30)}* · *{sf.plain(ctx['title'], 500)}*"
    blocks = [sf.section(head)]
    if ctx["text"].strip():
        blocks.append(sf.section(sf.mrkdwn_text(ctx["text"], (), sf.SECTION_TEXT_LIMIT)))
    return f"{sf.plain(ctx['title'], 300)}", blocks


# -- from outbox rows ---------------------------------------------------------------
def _hit_row_context(conn: sqlite3.Connection, row: Mapping[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    kind = row["kind"]
    if row.get("hit_id") is None:
        raise RenderError(f"outbox row {row.get('id')}: kind {kind} without a hit")
    facts = records.load_hit(conn, row["hit_id"])
    if facts is None:
        raise RenderError(f"outbox row {row.get('id')}: hit {row['hit_id']} not found")
    if kind != AlertKind.ALERT:
        return hit_context(facts, kind=kind, change=payload)
    # the other hits of the message this alert lists (rows from before one alert per message have none)
    others = [i for i in payload.get("hit_ids") or () if i != row["hit_id"]]
    ctx = hit_context(facts, kind=kind, also=records.load_listed_hits(conn, others))
    from ..incidents.alerting import alert_incident

    # a claim among the hits is what the incident's note ("claim by …, officials blamed …") is about
    claim = next((r["hit_id"] for r in ctx["rules"] if r["kind"] == "claim"), row["hit_id"])
    ctx["incident"] = alert_incident(conn, claim)
    return ctx


def _followup_row_context(conn: sqlite3.Connection, row: Mapping[str, Any], payload: dict[str, Any]) -> dict[str, Any] | None:
    if not payload.get("count"):
        return None  # a window without further hits: nothing to say
    return followup_context(payload, records.load_hits_brief(conn, list(payload.get("hit_ids") or [])))


Context = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class KindSpec:
    """How one kind of outbox row becomes an alert."""

    template: str  # <template>.txt.j2 / .html.j2
    slack: Callable[[Mapping[str, Any]], tuple[str, list[dict[str, Any]]]]
    context: Callable[[sqlite3.Connection, Mapping[str, Any], dict[str, Any]], Context | None]
    headline: Callable[[Mapping[str, Any]], str] = lambda ctx: str(ctx["title"])
    subject: Callable[[Mapping[str, Any]], str] | None = None  # None: ``[claimwatch][LEVEL][kind] headline · …``


# One entry per alert kind (monitor.alerts.kinds.AlertKind, plus "test" for `claimwatch alerts test`).
KINDS: dict[str, KindSpec] = {
    AlertKind.ALERT: KindSpec("alert", _slack_alert, _hit_row_context,
                              headline=lambda ctx: f"{ctx['title']}{_more_rules(ctx)}"),
    AlertKind.TEST: KindSpec(
        "alert", _slack_alert, lambda _c, row, _p: sample_context(str(row.get("destination") or ""))
    ),
    AlertKind.EDITED: KindSpec("change", _slack_change, _hit_row_context,
                               headline=lambda ctx: f"Edited: {ctx['title']}"),
    AlertKind.DELETED: KindSpec("change", _slack_change, _hit_row_context,
                                headline=lambda ctx: f"Deleted: {ctx['title']}"),
    AlertKind.FOLLOWUP: KindSpec(
        "followup", _slack_followup, _followup_row_context,
        headline=lambda ctx: f"{ctx['count']} more {'hit' if ctx['count'] == 1 else 'hits'}: {ctx['title']}",
    ),
    AlertKind.DIGEST: KindSpec(
        "digest", _slack_digest, lambda _c, _row, payload: digest_context(payload),
        headline=lambda ctx: f"Digest: {ctx['total']} hits, {ctx['since']} to {ctx['until']}",
        subject=lambda ctx: f"[claimwatch] {_headline(ctx)}",
    ),
    AlertKind.NOTICE: KindSpec(
        "notice", _slack_notice, lambda _c, _row, payload: notice_context(payload),
        subject=lambda ctx: f"[claimwatch][{ctx['level']}] {ctx['title']}",
    ),
}


def context_for_row(conn: sqlite3.Connection, row: Mapping[str, Any]) -> dict[str, Any] | None:
    """The template context of an outbox row; None when there is nothing to send (an empty
    follow-up window). Raises :class:`RenderError` when the row cannot be rendered."""
    spec = KINDS.get(row["kind"])
    if spec is None:
        raise RenderError(f"outbox row {row.get('id')}: unknown kind {row['kind']!r}")
    return spec.context(conn, row, records.payload_of(row))


def render_row(conn: sqlite3.Connection, row: Mapping[str, Any], renderer: Renderer) -> Alert | None:
    """The :class:`Alert` for an outbox row (None: nothing to send)."""
    ctx = context_for_row(conn, row)
    if ctx is None:
        return None
    alert = renderer.render(ctx)
    return dataclasses.replace(
        alert, outbox_id=row.get("id"), destination=row.get("destination"), dedup_key=row.get("dedup_key"),
        created_at=row.get("created_at"),
    )
