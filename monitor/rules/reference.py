"""The naive matcher: one Python regex per term, every rule evaluated on every message.

It exists to check the compiled :class:`~monitor.rules.matcher.Matcher` (tests compare the
two on generated messages) and as the baseline of ``bench/match_bench.py``. It shares only
the term parser, the normalisation and the word analysis (:mod:`monitor.rules.morphology`,
tested on its own) with the compiled matcher: every term word is compared with every form
of every word of the message, phrases are followed word by word, conditions are evaluated
recursively.
"""

from __future__ import annotations

from ..model import Message
from .condition import Node
from .language import message_language
from .matcher import field_value
from .morphology import merged_pairs, word_forms
from ..text import normalize, scan_text
from .regexes import compile_regex
from .ruleset import Rule, RuleSet, Selection
from .terms import EXACT, Term
from .source_filter import sources_match


class _Field:
    """A field's text as the naive matcher sees it: normalised text and word forms."""

    def __init__(self, text: str, persian: bool = False) -> None:
        self.norm = normalize(text)
        tokens = scan_text(text).split()
        self.spans: dict[int, list[tuple[int, tuple[str, ...]]]] = {}  # start -> [(end, forms)]
        for i, t in enumerate(tokens):
            self.spans.setdefault(i, []).append((i + 1, word_forms(t, persian)))
        for i, joined in merged_pairs(tokens):
            self.spans[i].append((i + 2, word_forms(joined, persian)))
        self.forms = {f for spans in self.spans.values() for _, forms in spans for f in forms}

    def term_starts(self, term: Term) -> list[int]:
        if any(w.kind == EXACT and w.text not in self.forms for w in term.words):
            return []  # a word that is nowhere
        out = []
        for start in self.spans:
            ends = {start}
            for word in term.words:
                ends = {e for x in ends for e, forms in self.spans.get(x, ()) if any(word.matches(f) for f in forms)}
                if not ends:
                    break
            else:
                out.append(start)
        return out


class _NaiveSel:
    def __init__(self, sel: Selection) -> None:
        self.sel = sel
        self.regexes = [compile_regex(p) for p in sel.regexes]

    def evaluate(self, field: _Field) -> bool:
        op = self.sel.op
        terms = self.sel.terms
        if op == "any":
            return any(field.term_starts(t) for t in terms)
        if op == "all":
            return all(field.term_starts(t) for t in terms)
        if op == "regex":
            return any(r.search(field.norm) for r in self.regexes)
        positions = []
        for group in self.sel.groups:
            # a group's positions: every word where one of its alternatives starts
            found = {s for t in group for s in field.term_starts(terms[t])}
            if not found:
                return False
            positions.append(sorted(found))
        return _any_window(positions, self.sel.within)


def _any_window(positions: list[list[int]], within: int) -> bool:
    for anchor in sorted({p for ps in positions for p in ps}):
        if all(any(anchor <= p <= anchor + within for p in ps) for ps in positions):
            return True
    return False


def _eval(node: Node, truth) -> bool:
    kind = node[0]
    if kind == "sel":
        return truth(node[1])
    if kind == "not":
        return not _eval(node[1], truth)
    if kind == "and":
        return all(_eval(c, truth) for c in node[1])
    if kind == "or":
        return any(_eval(c, truth) for c in node[1])
    return sum(1 for n in node[2] if truth(n)) >= node[1]


class NaiveMatcher:
    """``match_ids(msg)`` -> ids of the rules that match, in rule order."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.rules: list[tuple[Rule, dict[str, _NaiveSel]]] = [
            (r, {s.name: _NaiveSel(s) for s in r.selections}) for r in ruleset.rules if r.enabled
        ]

    def match_ids(self, msg: Message) -> list[str]:
        out = []
        norms: dict[str, _Field] = {}
        for rule, sels in self.rules:
            if rule.sources and not sources_match(rule.sources, msg):
                continue
            if rule.languages is not None and message_language(msg) not in rule.languages:
                continue

            def truth(name: str, sels: dict[str, _NaiveSel] = sels) -> bool:
                sel = sels[name]
                f = sel.sel.field
                if f not in norms:
                    norms[f] = _Field(field_value(msg, f), message_language(msg) == "fa")
                return sel.evaluate(norms[f])

            if _eval(rule.condition.tree, truth):
                out.append(rule.id)
        return out
