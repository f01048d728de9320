"""The naive matcher: one Python regex per term, every rule evaluated on every message.

It exists to check the compiled :class:`~monitor.rules.matcher.Matcher` (tests compare the
two on generated messages) and as the baseline of ``bench/match_bench.py``. It shares only
the term parser and the normalisation with the compiled matcher: whole words, wildcards,
proclitics and phrases are expressed as regexes, conditions are evaluated recursively.
"""

from __future__ import annotations

import re
from bisect import bisect_right

from ..model import Message
from .condition import Node
from .language import message_language
from .matcher import field_value
from .normalize import WORD_RE, normalize
from .regexes import compile_regex
from .ruleset import Rule, RuleSet, Selection
from .source_filter import sources_match


class _NaiveSel:
    def __init__(self, sel: Selection) -> None:
        self.sel = sel
        self.patterns = [re.compile(t.regex()) for t in sel.terms]
        self.regexes = [compile_regex(p) for p in sel.regexes]

    def evaluate(self, norm: str) -> bool:
        op = self.sel.op
        if op == "any":
            return any(p.search(norm) for p in self.patterns)
        if op == "all":
            return all(p.search(norm) for p in self.patterns)
        if op == "regex":
            return any(r.search(norm) for r in self.regexes)
        starts = [m.start() for m in WORD_RE.finditer(norm)]
        positions = []
        for group in self.sel.groups:
            # a group's positions: every word where one of its alternatives matches
            found = set()
            for t in group:
                p = self.patterns[t]
                for s in starts:
                    m = p.match(norm, s)
                    if m:
                        found.add(bisect_right(starts, m.start()) - 1)
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
        norms: dict[str, str] = {}
        for rule, sels in self.rules:
            if rule.sources and not sources_match(rule.sources, msg):
                continue
            if rule.languages is not None and message_language(msg) not in rule.languages:
                continue

            def truth(name: str, sels: dict[str, _NaiveSel] = sels) -> bool:
                sel = sels[name]
                f = sel.sel.field
                if f not in norms:
                    norms[f] = normalize(field_value(msg, f))
                return sel.evaluate(norms[f])

            if _eval(rule.condition.tree, truth):
                out.append(rule.id)
        return out
