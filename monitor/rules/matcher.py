"""The compiled matcher: one scan per message finds the words of every rule, then only the
rules that can be true are evaluated.

Compilation (on load and on every reload):

* Every word of every term becomes one or more Aho-Corasick keys over the message's
  :func:`~monitor.rules.normalize.word_text` framed by spaces: ``" word "`` for a whole word,
  ``" word"`` for ``word*``, ``"word "`` for ``*word``, ``"word"`` for ``*word*``; an Arabic-script
  word adds a key per proclitic form (``" والدوله "``, ``" بالدوله "`` ...). Whole-word matching
  is thus part of the scan: ``isis`` can never be found inside ``crisis``.
* ``regex:`` selections of a field go into one RE2 ``FilteredRE2`` (its literal atoms decide
  which regexes run at all; each runs in linear time).
* Each rule gets an anchor, its "fast pattern": from the selections its condition requires
  (:func:`~monitor.rules.condition.necessary_selections`) the cheapest set by estimated word
  frequency (:mod:`monitor.rules.anchors`), and from each of those the rarest word of each
  term. A rule is evaluated only when one of its anchor words was found, so a rule
  ``claim and common_word`` costs nothing on the many messages that only have the common word.
  Rules whose condition can be true with nothing found (``not denial``) are evaluated always.

Per message: ``word_text`` (one ``str.translate``), one Aho-Corasick pass per scanned field,
the anchor lookup, then short-circuit condition bytecode with lazily evaluated selections.
Positions (phrases, ``near``) are computed only when a candidate rule needs them, and
character spans in the original text only for hits.
"""

from __future__ import annotations

import bisect
import re
from operator import itemgetter
from typing import Callable, Sequence

import ahocorasick

from ..model import Hit, Match, Message, make_url
from .anchors import REGEX_COST, rarest_word
from .condition import run_program
from .language import message_language
from .normalize import OffsetMap, normalize, text_span, word_text
from .regexes import compile_regex, options as regex_options, prepare as prepare_regex
from .ruleset import FIELDS, Rule, RuleSet, Selection
from .source_filter import sources_match
from .terms import Term, Word

MAX_MATCHES_PER_HIT = 100
_TOKEN = re.compile(r"\S+")
_SPACES = re.compile(" +")
_second = itemgetter(1)


def field_value(msg: Message, field: str) -> str:
    """The text a selection with ``field:`` is matched against."""
    if field == "text":
        return msg.text or ""
    if field == "channel":
        return "\n".join(dict.fromkeys(v for v in (msg.channel, msg.channel_title) if v))
    if field == "author":
        return msg.author or ""
    if field == "forwarded_from":
        fw = msg.forwarded_from
        return "\n".join(v for v in (fw.name, fw.id) if v) if fw else ""
    if field == "url":
        return msg.url or make_url(msg.platform, msg.channel, msg.channel_id, msg.message_id) or ""
    raise KeyError(field)


class _FieldIndex:
    """Words and regexes of all selections on one field, compiled."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.words: list[Word] = []
        self.word_ids: dict[tuple[str, str], int] = {}
        self.automaton: ahocorasick.Automaton | None = None
        self.regexes: list[str] = []
        self.regex_ids: dict[str, int] = {}
        self.filter = None
        self.compiled: list = []
        self.triggers: dict[int, set[int]] = {}  # word id -> rule indexes anchored on it
        self.regex_triggers: dict[int, set[int]] = {}  # regex id -> rule indexes

    def word_id(self, word: Word) -> int:
        key = (word.kind, word.text)
        wid = self.word_ids.get(key)
        if wid is None:
            wid = self.word_ids[key] = len(self.words)
            self.words.append(word)
        return wid

    def regex_id(self, pattern: str) -> int:
        rid = self.regex_ids.get(pattern)
        if rid is None:
            rid = self.regex_ids[pattern] = len(self.regexes)
            self.regexes.append(pattern)
        return rid

    def build(self) -> None:
        """Build the automaton (value of each key: its index) and the per-key tables."""
        self.key_wids: list[tuple[int, ...]] = []
        self.key_rules: list[frozenset[int] | None] = []
        self.word_keys: list[list[int]] = [[] for _ in self.words]
        if self.words:
            keys: dict[str, list[int]] = {}
            for wid, word in enumerate(self.words):
                for key in word.keys():
                    keys.setdefault(key, []).append(wid)
            auto = ahocorasick.Automaton()
            for key, wids in keys.items():
                for w in wids:
                    self.word_keys[w].append(len(self.key_wids))
                auto.add_word(key, len(self.key_wids))
                self.key_wids.append(tuple(wids))
                if len(wids) == 1:
                    rules = self.triggers.get(wids[0])
                    self.key_rules.append(frozenset(rules) if rules else None)
                else:
                    rules = set().union(*(self.triggers.get(w, ()) for w in wids))
                    self.key_rules.append(frozenset(rules) if rules else None)
            auto.make_automaton()
            self.automaton = auto
        if self.regexes:
            import re2

            flt = re2.Filter()
            opts = regex_options()
            for pattern in self.regexes:
                flt.Add(prepare_regex(pattern), opts)
            flt.Compile()
            self.filter = flt
            self.compiled = [compile_regex(p) for p in self.regexes]

    @property
    def eager(self) -> bool:
        return bool(self.triggers or self.regex_triggers)


class _Sel:
    """A selection compiled against its field's word and regex ids."""

    __slots__ = (
        "sel", "field", "op", "singles", "phrases", "term_wids", "regex_ids", "within", "groups", "name", "cost",
        "anchors", "single_keys", "single_keysets",
    )

    def __init__(self, sel: Selection, index: _FieldIndex) -> None:
        self.sel = sel
        self.name = sel.name
        self.field = sel.field
        self.op = sel.op
        self.within = sel.within
        self.term_wids: list[tuple[int, ...]] = [tuple(index.word_id(w) for w in t.words) for t in sel.terms]
        self.singles = frozenset(w[0] for w in self.term_wids if len(w) == 1)
        self.phrases = tuple(w for w in self.term_wids if len(w) > 1)
        self.regex_ids = frozenset(index.regex_id(p) for p in sel.regexes)
        self.groups = [list(g) for g in sel.groups]
        self.single_keys: frozenset[int] = frozenset()  # filled by finish() once keys exist
        self.single_keysets: list[frozenset[int]] = []
        # anchor words: the rarest word of each term (any), of the cheapest term (all) or of
        # each alternative of the cheapest group (near)
        if sel.op == "regex":
            self.cost = REGEX_COST * len(sel.regexes)
            self.anchors: list[tuple[str, int]] = [("r", r) for r in self.regex_ids]
        else:
            rarest = [rarest_word(t) for t in sel.terms]  # (word index, cost) per term
            if sel.op == "any":
                self.cost = sum(c for _, c in rarest)
                self.anchors = [("w", tw[i]) for (i, _), tw in zip(rarest, self.term_wids)]
            elif sel.op == "near":
                costs = [sum(rarest[t][1] for t in g) for g in sel.groups]
                g = sel.groups[costs.index(min(costs))]
                self.cost = min(costs)
                self.anchors = [("w", self.term_wids[t][rarest[t][0]]) for t in g]
            else:
                costs = [c for _, c in rarest]
                t = costs.index(min(costs))
                self.cost = costs[t]
                self.anchors = [("w", self.term_wids[t][rarest[t][0]])]


    def finish(self, index: _FieldIndex) -> None:
        """Key sets of the single-word terms: ``any``/``all`` of them is decided on the scan's keys."""
        sets = [frozenset(index.word_keys[w]) for w in sorted(self.singles)]
        self.single_keysets = sets
        self.single_keys = frozenset().union(*sets)


class _Rule:
    __slots__ = ("rule", "sels", "program", "positive", "sources", "languages", "hit")

    def __init__(self, rule: Rule, sels: list[_Sel], default_destinations: tuple[str, ...]) -> None:
        self.rule = rule
        self.sels = sels
        index = {s.name: i for i, s in enumerate(sels)}
        self.program = rule.condition.program(index)
        self.positive = [i for i, s in enumerate(sels) if s.name in rule.condition.positive]
        self.sources = rule.sources
        self.languages = rule.languages
        self.hit = dict(
            rule_id=rule.id,
            rule_hash=rule.hash,
            level=rule.level,
            title=rule.title,
            destinations=tuple(rule.alert) or default_destinations,
            throttle_seconds=rule.throttle,
            tags=tuple(rule.tags),
            kind=rule.kind,
        )


_NOTHING: frozenset[int] = frozenset()


class _Scan:
    """One field of one message: the keys the scan found; words and positions on demand."""

    __slots__ = ("index", "text", "wt", "keys", "_matches", "_found", "_tokens", "_positions", "_regex", "_spans")

    def __init__(self, index: _FieldIndex, text: str) -> None:
        self.index = index
        self.text = text
        self.wt = wt = f" {word_text(text)} "
        auto = index.automaton
        self._matches: list[tuple[int, int]] | None = None
        self._found: set[int] | None = None
        self._tokens: list[tuple[int, int]] | None = None
        self._positions: dict[int, list[int]] | None = None
        self._regex: frozenset[int] | None = None
        self._spans = None
        if auto is None or not text:
            self.keys: set[int] | frozenset[int] = _NOTHING
            self._matches = []
            self._found = set()
        else:
            self.keys = set(map(_second, auto.iter(wt)))  # the key indexes found

    @property
    def matches(self) -> list[tuple[int, int]]:
        """(end, key index) of every key occurrence (a second scan, only when positions are needed)."""
        if self._matches is None:
            self._matches = list(self.index.automaton.iter(self.wt))  # type: ignore[union-attr]
        return self._matches

    @property
    def found(self) -> set[int]:
        """Ids of the words found."""
        if self._found is None:
            key_wids = self.index.key_wids
            found: set[int] = set()
            for k in self.keys:
                found.update(key_wids[k])
            self._found = found
        return self._found

    def token_starts(self) -> list[int]:
        """Start offsets (in ``wt``) of all words, for word distances (``near``)."""
        if self._tokens is None:
            self._tokens = [m.start() for m in _TOKEN.finditer(self.wt)]
        return self._tokens

    def occurrences(self, wid: int) -> list[int]:
        """Sorted start offsets (in ``wt``) of the words where word ``wid`` was found."""
        if self._positions is None:
            wt = self.wt
            rfind = wt.rfind
            key_wids = self.index.key_wids
            pos: dict[int, set[int]] = {}
            for end, k in self.matches:
                # a key ends inside its word or on the space right after it
                start = rfind(" ", 0, end) + 1
                for w in key_wids[k]:
                    got = pos.get(w)
                    if got is None:
                        pos[w] = {start}
                    else:
                        got.add(start)
            self._positions = {w: sorted(s) for w, s in pos.items()}
        return self._positions.get(wid, [])

    def term_starts(self, wids: tuple[int, ...]) -> list[int]:
        """Start offsets where the term (consecutive words) starts."""
        found = self.found
        for w in wids:
            if w not in found:
                return []
        first = self.occurrences(wids[0])
        if len(wids) == 1:
            return first
        wt = self.wt
        find = wt.find
        spaces = _SPACES.match
        rest = [set(self.occurrences(w)) for w in wids[1:]]
        out = []
        for s in first:
            pos = s
            for occ in rest:
                pos = spaces(wt, find(" ", pos)).end()  # the next word
                if pos not in occ:
                    break
            else:
                out.append(s)
        return out

    def term_end(self, start: int, n_words: int) -> int:
        """End offset (in ``wt``) of the ``n_words``-th word from ``start``."""
        wt = self.wt
        end = wt.find(" ", start)
        for _ in range(n_words - 1):
            end = wt.find(" ", _SPACES.match(wt, end).end())
        return end

    def regex_matched(self) -> frozenset[int]:
        if self._regex is None:
            flt = self.index.filter
            got = flt.Match(normalize(self.text)) if flt is not None and self.text else None
            self._regex = frozenset(got or ())
        return self._regex

    def offsets(self) -> OffsetMap:
        """Positions of the normalised text (``wt`` minus its leading space) in the original."""
        if self._spans is None:
            self._spans = OffsetMap(self.text)
        return self._spans


def _near_window(starts: list[list[int]], within: int) -> list[int] | None:
    """One start per group, all within ``within`` words of each other (first such window)."""
    if any(not s for s in starts):
        return None
    events = sorted((p, t) for t, ps in enumerate(starts) for p in ps)
    k = len(starts)
    counts = [0] * k
    have = 0
    lo = 0
    for hi, (p, t) in enumerate(events):
        if counts[t] == 0:
            have += 1
        counts[t] += 1
        while events[lo][0] < p - within:
            lt = events[lo][1]
            counts[lt] -= 1
            if counts[lt] == 0:
                have -= 1
            lo += 1
        if have == k:
            chosen: dict[int, int] = {}
            for q, tt in events[lo : hi + 1]:
                chosen.setdefault(tt, q)
            return [chosen[t2] for t2 in range(k)]
    return None


class Matcher:
    """All rules of a :class:`RuleSet`, compiled; ``match(msg)`` returns the hits."""

    def __init__(self, ruleset: RuleSet, default_destinations: Sequence[str] = ("console",)) -> None:
        self.ruleset = ruleset
        self.default_destinations = tuple(default_destinations)
        self.fields: dict[str, _FieldIndex] = {}
        self._rules: list[_Rule] = []
        self._unanchored: list[int] = []
        for rule in ruleset.rules:
            if not rule.enabled:
                continue
            sels = [_Sel(s, self._field(s.field)) for s in rule.selections]
            compiled = _Rule(rule, sels, self.default_destinations)
            ri = len(self._rules)
            self._rules.append(compiled)
            by_name = {s.name: s for s in sels}
            anchor_names = rule.condition.necessary(lambda n: by_name[n].cost)
            if anchor_names is None:
                self._unanchored.append(ri)
                continue
            for name in anchor_names:
                sel = by_name[name]
                index = self.fields[sel.field]
                for kind, ident in sel.anchors:
                    target = index.triggers if kind == "w" else index.regex_triggers
                    target.setdefault(ident, set()).add(ri)
        for index in self.fields.values():
            index.build()
        for cr in self._rules:
            for sel in cr.sels:
                sel.finish(self.fields[sel.field])
        self._eager = [(name, idx) for name, idx in self.fields.items() if idx.eager]
        self._eager_text = self.fields["text"] if any(n == "text" for n, _ in self._eager) else None
        self._eager_other = [(n, i) for n, i in self._eager if n != "text"]
        self.rule_count = len(self._rules)
        # actors: a separate compiled matcher of their names, run only on messages with hits
        self.actors = None
        if getattr(ruleset, "actors", None):
            from .actors import ActorTagger

            self.actors = ActorTagger(ruleset.actors)

    def actors_of(self, msg: Message) -> tuple[str, ...]:
        """Ids of the actors ``msg`` names or was posted by (with their parents)."""
        return self.actors.tag(msg) if self.actors is not None else ()

    def _field(self, name: str) -> _FieldIndex:
        index = self.fields.get(name)
        if index is None:
            index = self.fields[name] = _FieldIndex(name)
        return index

    @property
    def rules(self) -> list[Rule]:
        return [r.rule for r in self._rules]

    def stats(self) -> dict[str, int]:
        """Sizes of the compiled set (for logs and the bench)."""
        return {
            "rules": self.rule_count,
            "unanchored_rules": len(self._unanchored),
            "words": sum(len(i.words) for i in self.fields.values()),
            "patterns": sum(len(i.automaton) for i in self.fields.values() if i.automaton is not None),
            "regexes": sum(len(i.regexes) for i in self.fields.values()),
        }

    # -- matching -------------------------------------------------------------------------
    def candidates(self, msg: Message) -> tuple[list[int], dict[str, _Scan]]:
        scans: dict[str, _Scan] = {}
        cands: set[int] = set(self._unanchored)
        text_index = self._eager_text
        if text_index is not None:
            scan = scans["text"] = _Scan(text_index, msg.text or "")
            key_rules = text_index.key_rules
            for k in scan.keys:
                t = key_rules[k]
                if t is not None:
                    cands |= t
            if text_index.regex_triggers:
                for r in scan.regex_matched():
                    cands.update(text_index.regex_triggers.get(r, ()))
        for name, index in self._eager_other:
            scan = scans[name] = _Scan(index, field_value(msg, name))
            for k in scan.keys:
                t = index.key_rules[k]
                if t is not None:
                    cands |= t
            if index.regex_triggers:
                for r in scan.regex_matched():
                    cands.update(index.regex_triggers.get(r, ()))
        return sorted(cands), scans

    def match(self, msg: Message) -> list[Hit]:
        """The hits of every rule on ``msg`` (in rule order)."""
        cands, scans = self.candidates(msg)
        if not cands:
            return []
        hits: list[Hit] = []
        actors: tuple[str, ...] | None = None  # computed once, for the first hit
        lang: list[str | None] = []
        memo: dict[int, bool] = {}
        rules = self._rules

        def scan_of(field: str) -> _Scan:
            s = scans.get(field)
            if s is None:
                s = scans[field] = _Scan(self.fields[field], field_value(msg, field))
            return s

        for ri in cands:
            cr = rules[ri]
            if cr.sources and not sources_match(cr.sources, msg):
                continue
            if cr.languages is not None:
                if not lang:
                    lang.append(message_language(msg))
                if lang[0] not in cr.languages:
                    continue
            sels = cr.sels

            def truth(i: int, sels: list[_Sel] = sels) -> bool:
                sel = sels[i]
                key = id(sel)
                v = memo.get(key)
                if v is None:
                    v = memo[key] = _evaluate(sel, scan_of(sel.field))
                return v

            if run_program(cr.program, truth):
                if actors is None:
                    actors = self.actors_of(msg)
                hits.append(self._hit(cr, truth, scan_of, actors))
        return hits

    def _hit(
        self, cr: _Rule, truth: Callable[[int], bool], scan_of: Callable[[str], _Scan], actors: tuple[str, ...] = ()
    ) -> Hit:
        matches: list[Match] = []
        for i in cr.positive:
            if len(matches) >= MAX_MATCHES_PER_HIT:
                break
            if truth(i):
                sel = cr.sels[i]
                matches.extend(_explain(sel, scan_of(sel.field)))
        # terms that normalise alike (كرمان, کرمان) find the same words: report each span once
        unique = list({(m.selection, m.field, m.start, m.end): m for m in reversed(matches)}.values())
        unique.sort(key=lambda m: (FIELDS.index(m.field), m.start, m.end, m.selection))
        return Hit(matches=tuple(unique[:MAX_MATCHES_PER_HIT]), actors=actors, **cr.hit)


def _evaluate(sel: _Sel, scan: _Scan) -> bool:
    op = sel.op
    keys = scan.keys
    if op == "any":
        if not sel.single_keys.isdisjoint(keys):
            return True
        return any(scan.term_starts(p) for p in sel.phrases)
    if op == "all":
        for ks in sel.single_keysets:
            if ks.isdisjoint(keys):
                return False
        return all(scan.term_starts(p) for p in sel.phrases)
    if op == "regex":
        return not sel.regex_ids.isdisjoint(scan.regex_matched())
    # near: every group needs an alternative whose words were all found, then positions
    term_wids = sel.term_wids
    found = scan.found
    for group in sel.groups:
        if not any(found.issuperset(term_wids[t]) for t in group):
            return False
    return _near_window(_group_starts(sel, scan), sel.within) is not None


def _group_starts(sel: _Sel, scan: _Scan) -> list[list[int]]:
    """Word indexes where each ``near`` group (one of its alternatives) starts."""
    starts = scan.token_starts()
    bisect_left = bisect.bisect_left
    out = []
    for group in sel.groups:
        offs = {o for t in group for o in scan.term_starts(sel.term_wids[t])}
        out.append(sorted(bisect_left(starts, o) for o in offs))
    return out


def _explain(sel: _Sel, scan: _Scan) -> list[Match]:
    """The matches of a true selection, with spans in the original field text."""
    text = scan.text
    offsets = scan.offsets()
    out: list[Match] = []

    def add(term: str, start: int, n_words: int) -> None:
        # offsets in wt are one more than in the normalised text (wt starts with a space)
        s, e = text_span(text, offsets, start - 1, scan.term_end(start, n_words) - 1)
        out.append(Match(sel.name, term, s, e, sel.field))

    terms: list[Term] = list(sel.sel.terms)
    if sel.op in ("any", "all"):
        for term, wids in zip(terms, sel.term_wids):
            for o in scan.term_starts(wids)[:MAX_MATCHES_PER_HIT]:
                add(term.raw, o, len(wids))
    elif sel.op == "near":
        window = _near_window(_group_starts(sel, scan), sel.within)
        if window is not None:
            starts = scan.token_starts()
            for group, i in zip(sel.groups, window):
                for t in group:  # the first alternative that starts there
                    if starts[i] in scan.term_starts(sel.term_wids[t]):
                        add(terms[t].raw, starts[i], len(sel.term_wids[t]))
                        break
    else:
        matched = scan.regex_matched()
        for pattern, rid in zip(sel.sel.regexes, [scan.index.regex_ids[p] for p in sel.sel.regexes]):
            if rid not in matched:
                continue
            for m in scan.index.compiled[rid].finditer(normalize(text)):
                if m.end() > m.start():
                    start, end = text_span(text, offsets, m.start(), m.end())
                    out.append(Match(sel.name, pattern, start, end, sel.field))
                if len(out) >= MAX_MATCHES_PER_HIT:
                    break
    return out
