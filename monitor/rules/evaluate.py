"""``rules eval``: precision and recall of a rule set on a labelled corpus.

The corpus is JSONL, one statement a line::

    {"id": "is-0001", "text": "...", "lang": "ar", "label": "claim", "actor": "islamic-state",
     "source": "https://www.example.org/news/123", "split": "dev"}

``label`` is ``claim`` | ``statement`` | ``denial`` | ``report`` | ``none``; ``actor`` an actor id
or null; ``split`` ``dev`` | ``test``. Each item is matched as a :class:`~monitor.model.Message`
(platform ``corpus``, channel the host of ``source``, language ``lang``).

Definitions (docs/rules.md, "Evaluating rules"):

* an item is ALERTED when it has a hit at ``alert_level`` or above;
* ``claim`` / ``statement``: recall = items labelled L with an alert-level hit of kind L / items
  labelled L; precision = items with an alert-level hit of kind L that are labelled L / items with
  an alert-level hit of kind L;
* ``denial`` / ``report``: the same with hits of kind L at any level (they sit below the alert
  level by design);
* overall alert precision = alerted items labelled claim or statement / alerted items; alert
  recall = claim and statement items alerted / claim and statement items; F1 everywhere.

The rule set's learned classifier (rules/classifier.yml), when it has one, is part of the matcher:
its hit counts like a rule's (``evaluate(..., classifier=False)``: the rules alone).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence
from urllib.parse import urlsplit

from ..model import Message
from ..sources.depth import depth_message, line_too_deep
from .ruleset import LEVELS

LABELS = ("claim", "statement", "denial", "report", "none")
POSITIVE = ("claim", "statement")  # what the desk must be alerted to
BELOW_ALERT = ("denial", "report")  # kinds counted at any level
SPLITS = ("dev", "test")
TEXT_WIDTH = 160
CORPUS_PLATFORM = "corpus"
_DATE = datetime(2024, 1, 1, tzinfo=timezone.utc)
_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,200}\Z")
_LANG_RE = re.compile(r"[a-z]{2,3}\Z")
_ACTOR_RE = re.compile(r"[a-z0-9-]+\Z")
# bidi controls (and other invisible format characters) that would reorder a terminal line
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class CorpusError(ValueError):
    """A corpus line is not valid; the message is ``FILE:LINE: field 'x': why``."""


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    text: str
    lang: str
    label: str
    actor: str | None
    source: str
    split: str
    file: str = ""
    line: int = 0

    @property
    def positive(self) -> bool:
        return self.label in POSITIVE

    def message(self) -> Message:
        host = urlsplit(self.source).hostname or "corpus"
        return Message(
            platform=CORPUS_PLATFORM, channel_id=host, message_id=self.id, date=_DATE, text=self.text,
            channel=host, lang=self.lang, url=self.source,
        )


def split_for(source_url: str) -> str:
    """The split a source belongs to: ``test`` for 3 sources in 10 (by SHA-256), else ``dev``."""
    return "test" if int(hashlib.sha256(source_url.encode("utf-8")).hexdigest(), 16) % 10 < 3 else "dev"


# -- reading --------------------------------------------------------------------------------
def _field_error(file: str, line: int, name: str, why: str) -> CorpusError:
    return CorpusError(f"{file}:{line}: field '{name}': {why}")


def parse_item(record: Any, file: str, line: int) -> Item:
    """One corpus record; raises :class:`CorpusError` naming the file, line and field."""
    if not isinstance(record, dict):
        raise CorpusError(f"{file}:{line}: not a JSON object")

    def text_field(name: str, *, required: bool = True) -> str | None:
        value = record.get(name)
        if value is None:
            if required:
                raise _field_error(file, line, name, "missing" if name not in record else "must not be null")
            return None
        if not isinstance(value, str):
            raise _field_error(file, line, name, f"must be a string, not {type(value).__name__}")
        return value

    raw_id = record.get("id")
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)
        record = {**record, "id": raw_id}
    item_id = text_field("id")
    assert item_id is not None
    if not _ID_RE.match(item_id):
        raise _field_error(file, line, "id", f"{item_id[:40]!r} is not an id (letters, digits, '.', '_', ':', '-')")
    text = text_field("text")
    assert text is not None
    if not text.strip():
        raise _field_error(file, line, "text", "is empty")
    lang = (text_field("lang") or "").strip().lower()
    if not _LANG_RE.match(lang):
        raise _field_error(file, line, "lang", f"{record.get('lang')!r} is not a language code (e.g. en, ar, fa)")
    label = (text_field("label") or "").strip().lower()
    if label not in LABELS:
        raise _field_error(file, line, "label", f"{record.get('label')!r} is not one of {', '.join(LABELS)}")
    actor = text_field("actor", required=False)
    if "actor" not in record:
        raise _field_error(file, line, "actor", "missing (an actor id, or null)")
    if actor is not None:
        actor = actor.strip()
        if not _ACTOR_RE.match(actor):
            raise _field_error(file, line, "actor", f"{actor[:40]!r} is not an actor id ([a-z0-9-]+)")
    source = (text_field("source") or "").strip()
    parts = urlsplit(source)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _field_error(file, line, "source", f"{source[:80]!r} is not an http(s) URL")
    split = (text_field("split") or "").strip().lower()
    if split not in SPLITS:
        raise _field_error(file, line, "split", f"{record.get('split')!r} is not one of {', '.join(SPLITS)}")
    return Item(item_id, text, lang, label, actor, source, split, file, line)


def corpus_files(paths: Sequence[str | Path]) -> list[Path]:
    """``paths`` with each folder replaced by its ``*.jsonl`` files (sorted)."""
    out: list[Path] = []
    for path in map(Path, paths):
        out.extend(sorted(path.glob("*.jsonl")) if path.is_dir() else [path])
    return out


def read_corpus(paths: Sequence[str | Path], split: str = "all") -> list[Item]:
    """The items of the JSONL files ``paths`` (a folder: its ``*.jsonl``) in the ``split``
    (``dev``, ``test`` or ``all``).

    Every line is validated (whatever its split); the first bad line raises :class:`CorpusError`.
    Blank lines are skipped; an id used twice is an error.
    """
    if split not in (*SPLITS, "all"):
        raise CorpusError(f"unknown split {split!r} (one of dev, test, all)")
    items: list[Item] = []
    seen: dict[str, tuple[str, int]] = {}
    for path in corpus_files(paths):
        file = str(path)
        try:
            fh = open(path, "rb")
        except OSError as exc:
            raise CorpusError(f"{file}: cannot read: {exc.strerror or exc}") from None
        with fh:
            for number, raw in enumerate(fh, 1):
                try:
                    text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    raise CorpusError(f"{file}:{number}: not valid UTF-8 ({exc.reason})") from None
                if not text.strip():
                    continue
                if line_too_deep(raw):  # json.loads would recurse (RecursionError)
                    raise CorpusError(f"{file}:{number}: {depth_message()}")
                try:
                    record = json.loads(text)
                except ValueError as exc:
                    raise CorpusError(f"{file}:{number}: not valid JSON: {exc}") from None
                item = parse_item(record, file, number)
                if item.id in seen:
                    first = seen[item.id]
                    raise _field_error(file, number, "id", f"duplicate id {item.id!r} (first at {first[0]}:{first[1]})")
                seen[item.id] = (file, number)
                if split == "all" or item.split == split:
                    items.append(item)
    return items


# -- results --------------------------------------------------------------------------------
@dataclass
class Figures:
    """Counts and the rates made from them (None when undefined: nothing to divide by)."""

    n: int = 0  # items in the group (labelled L, of that language...)
    relevant: int = 0  # items that should be found
    predicted: int = 0  # items found (alerted / hit with the kind)
    true: int = 0  # found and relevant

    @property
    def precision(self) -> float | None:
        return self.true / self.predicted if self.predicted else None

    @property
    def recall(self) -> float | None:
        return self.true / self.relevant if self.relevant else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None or p + r == 0:
            return None if p is None or r is None else 0.0
        return 2 * p * r / (p + r)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n, "relevant": self.relevant, "predicted": self.predicted, "true": self.true,
            "precision": _round(self.precision), "recall": _round(self.recall), "f1": _round(self.f1),
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


@dataclass(frozen=True, slots=True)
class HitInfo:
    rule: str
    kind: str
    level: str

    def to_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "kind": self.kind, "level": self.level}

    def __str__(self) -> str:
        return f"{self.rule}({self.kind},{self.level})"


@dataclass
class ItemResult:
    item: Item
    hits: list[HitInfo]
    alert_hits: list[HitInfo]

    @property
    def alerted(self) -> bool:
        return bool(self.alert_hits)

    def has_kind(self, kind: str) -> bool:
        """A hit of ``kind`` that counts for it (alert level, or any level for denial/report)."""
        pool = self.hits if kind in BELOW_ALERT else self.alert_hits
        return any(h.kind == kind for h in pool)

    @property
    def missed(self) -> bool:
        return self.item.positive and not self.has_kind(self.item.label)

    @property
    def false_alert(self) -> bool:
        if not self.alerted:
            return False
        if not self.item.positive:
            return True
        return any(h.kind in POSITIVE and h.kind != self.item.label for h in self.alert_hits)

    def listing(self, hits: Iterable[HitInfo]) -> dict[str, Any]:
        it = self.item
        return {
            "id": it.id, "lang": it.lang, "label": it.label, "actor": it.actor, "split": it.split,
            "source": it.source, "where": f"{it.file}:{it.line}",
            "rules": [h.to_dict() for h in hits], "text": one_line(it.text),
        }


def one_line(text: str, width: int = TEXT_WIDTH) -> str:
    """One line, at most ``width`` characters, bidi and control characters shown as escapes."""
    flat = " ".join(text.split())
    flat = _BIDI.sub(lambda m: f"\\u{ord(m.group()):04x}", flat)
    flat = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", flat)
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@dataclass
class Evaluation:
    alert_level: str
    split: str
    results: list[ItemResult] = field(default_factory=list)
    rules: list[Any] = field(default_factory=list)  # the Rule objects evaluated

    # -- figures --------------------------------------------------------------------------
    def by_label(self) -> dict[str, Figures]:
        """Per kind label: relevant = items labelled L, predicted = items with a counted hit of kind L."""
        out: dict[str, Figures] = {}
        for label in LABELS[:-1]:
            f = Figures()
            for r in self.results:
                labelled = r.item.label == label
                found = r.has_kind(label)
                f.n += labelled
                f.relevant += labelled
                f.predicted += found
                f.true += labelled and found
            out[label] = f
        none = Figures()
        for r in self.results:
            if r.item.label == "none":
                none.n += 1
                none.predicted += r.alerted  # false alerts on plain negatives
        out["none"] = none
        return out

    def overall(self, results: Iterable[ItemResult] | None = None) -> Figures:
        """Alerts: relevant = claim/statement items, predicted = alerted items."""
        f = Figures()
        for r in self.results if results is None else results:
            f.n += 1
            f.relevant += r.item.positive
            f.predicted += r.alerted
            f.true += r.item.positive and r.alerted
        return f

    def by_language(self) -> dict[str, Figures]:
        groups: dict[str, list[ItemResult]] = defaultdict(list)
        for r in self.results:
            groups[r.item.lang].append(r)
        return {lang: self.overall(rs) for lang, rs in sorted(groups.items())}

    def by_actor(self) -> dict[str, Figures]:
        """Per actor of positive items: recall = its items alerted with their own kind."""
        out: dict[str, Figures] = {}
        for r in self.results:
            if not r.item.positive:
                continue
            f = out.setdefault(r.item.actor or "(none)", Figures())
            f.n += 1
            f.relevant += 1
            ok = r.has_kind(r.item.label)
            f.predicted += ok
            f.true += ok
        return dict(sorted(out.items()))

    def by_rule(self) -> dict[str, dict[str, Any]]:
        """Per rule: hits (any level), alerts (alert level), and of the counted ones (alerts;
        hits for denial/report rules) how many were true (label = the rule's kind; for
        ``watch`` rules: a claim or statement) and false."""
        out: dict[str, dict[str, Any]] = {}
        for rule in self.rules:
            out[rule.id] = {"kind": rule.kind, "level": rule.level, "hits": 0, "alerts": 0, "true": 0, "false": 0}
        for r in self.results:
            alert_rules = {h.rule for h in r.alert_hits}
            for h in r.hits:
                row = out.setdefault(h.rule, {"kind": h.kind, "level": h.level, "hits": 0, "alerts": 0, "true": 0, "false": 0})
                row["hits"] += 1
                alerted = h.rule in alert_rules
                row["alerts"] += alerted
                if alerted or h.kind in BELOW_ALERT:
                    good = r.item.positive if h.kind == "watch" else r.item.label == h.kind
                    row["true" if good else "false"] += 1
        return out

    def misses(self) -> list[dict[str, Any]]:
        return [r.listing(r.hits) for r in self.results if r.missed]

    def false_alerts(self) -> list[dict[str, Any]]:
        return [r.listing(r.alert_hits) for r in self.results if r.false_alert]

    def to_dict(self) -> dict[str, Any]:
        labels = self.by_label()
        return {
            "split": self.split,
            "alert_level": self.alert_level,
            "items": len(self.results),
            "overall": self.overall().to_dict(),
            "labels": {k: v.to_dict() for k, v in labels.items()},
            "languages": {k: v.to_dict() for k, v in self.by_language().items()},
            "actors": {k: v.to_dict() for k, v in self.by_actor().items()},
            "rules": self.by_rule(),
            "misses": self.misses(),
            "false_alerts": self.false_alerts(),
        }

    def gate(self, min_recall: float | None, min_precision: float | None) -> list[str]:
        """The thresholds not met (empty: pass). Recall gates claims and statements each
        (a label with no items is not gated); precision gates the overall alert precision."""
        failed = []
        labels = self.by_label()
        if min_recall is not None:
            for label in POSITIVE:
                rec = labels[label].recall
                if rec is not None and rec < min_recall:
                    failed.append(f"{label} recall {rec:.3f} < {min_recall:g}")
        if min_precision is not None:
            prec = self.overall().precision
            if prec is not None and prec < min_precision:
                failed.append(f"alert precision {prec:.3f} < {min_precision:g}")
        return failed


# -- running --------------------------------------------------------------------------------
def evaluate(
    matcher: Any,
    items: Sequence[Item],
    *,
    alert_level: str = "medium",
    split: str = "all",
    progress: Callable[[int], None] | None = None,
    classifier: bool = True,
) -> Evaluation:
    """Match every item and collect the figures; ``progress(n)`` after every 100 items.
    ``classifier``: with the rule set's learned classifier (if it has one; False: the rules alone)."""
    if alert_level not in LEVELS:
        raise ValueError(f"unknown alert level {alert_level!r} (one of {', '.join(LEVELS)})")
    floor = LEVELS.index(alert_level)
    rank = {lv: i for i, lv in enumerate(LEVELS)}
    ev = Evaluation(alert_level=alert_level, split=split, rules=list(matcher.rules))
    match = matcher.match if classifier else partial(matcher.match, classifier=False)
    for i, item in enumerate(items, 1):
        hits = [HitInfo(h.rule_id, h.kind, h.level) for h in match(item.message())]
        alert_hits = [h for h in hits if rank.get(h.level, 0) >= floor]
        ev.results.append(ItemResult(item, hits, alert_hits))
        if progress is not None and i % 100 == 0:
            progress(i)
    if progress is not None:
        progress(len(items))
    return ev
