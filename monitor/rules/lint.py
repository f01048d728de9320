"""Warnings about a valid rule set: terms that will match too much, regexes that cannot do
what they seem to. ``rules check`` prints them after the set's size; they never fail it.
"""

from __future__ import annotations

from .anchors import COMMON_WORDS
from ..text import normalize
from .problems import Problem
from .regexes import ascii_boundary_next_to_arabic
from .ruleset import Rule, RuleSet, Selection
from .terms import EXACT

# Words found in a large share of news and channel traffic: alone they decide nothing.
_BROAD_RAW = """
attack attacks attacked killed kill killing dead death deaths said says say news today
people police army military government state forces security war report reports video
statement breaking update official officials source sources city country world
هجوم قتل مقتل قتلى الجيش الشرطة الحكومة الدولة خبر عاجل بيان اليوم مصدر مصادر
حمله کشته ارتش پلیس دولت خبر فوری بیانیه امروز منبع
"""
BROAD_WORDS: frozenset[str] = COMMON_WORDS | frozenset(normalize(w) for w in _BROAD_RAW.split())
SHORT_ARABIC_LETTERS = 2


def _warning(rule: Rule, sel: Selection, message: str) -> Problem:
    return Problem(rule.file, sel.line, sel.col, f"warning: {message}")


def _decides(rule: Rule, sel: Selection) -> bool:
    """True when ``sel`` being true on its own makes the rule true."""
    return rule.condition.evaluate(lambda name: name == sel.name)


def lint(ruleset: RuleSet) -> list[Problem]:
    """Warnings for ``ruleset`` (sorted like problems)."""
    out: list[Problem] = []
    for rule in ruleset.rules:
        for sel in rule.selections:
            decides: bool | None = None
            for term in sel.terms:
                if len(term.words) != 1:
                    continue
                word = term.words[0]
                if word.kind == EXACT and word.arabic and len(word.text) <= SHORT_ARABIC_LETTERS:
                    out.append(_warning(rule, sel, (
                        f"selection '{sel.name}': term {term.raw!r} is an Arabic-script word of "
                        f"{len(word.text)} letter(s): such words are frequent and match only as written "
                        "(no affixed forms); use a phrase or a longer word"
                    )))
                elif sel.op == "any" and not rule.sources and word.kind == EXACT and word.text in BROAD_WORDS:
                    # (a rule limited by ``sources`` only sees its own accounts' posts)
                    if decides is None:
                        decides = _decides(rule, sel)
                    if decides:
                        out.append(_warning(rule, sel, (
                            f"rule '{rule.id}': selection '{sel.name}' alone makes the rule true and its term "
                            f"{term.raw!r} is a very common word: expect hits on a large share of all messages "
                            "(combine it with another selection)"
                        )))
            for pattern in sel.regexes:
                if ascii_boundary_next_to_arabic(pattern):
                    out.append(_warning(rule, sel, (
                        f"selection '{sel.name}': regex {pattern!r} has \\b or \\B next to Arabic-script letters, "
                        "but RE2's boundaries only know ASCII letters: there \\b never holds and \\B always does "
                        "(use a term, or (?:^|[^\\pL\\pN_]) and (?:$|[^\\pL\\pN_]) around the word)"
                    )))
    return sorted(out)
