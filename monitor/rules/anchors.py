"""How likely a word is to occur in a message: used to pick each rule's "fast pattern".

The matcher only evaluates a rule when one of its anchor words was found (see
:mod:`monitor.rules.matcher`). Among the selections a condition requires, it anchors on the
one whose words are cheapest by this estimate: rare, long, exact words beat common, short
or wildcard ones, as Snort and Suricata prefer the longest content as fast pattern.
"""

from __future__ import annotations

from ..text import normalize
from .terms import EXACT, INFIX, PREFIX, SUFFIX, Term, Word

# Frequent words of the three languages the shipped rules cover (normalised on import).
_COMMON_RAW = """
the a an and or of to in on at for from by with as is are was were be been has have had it its
this that these those he she they we you i not no but if than then there their his her our
will would can could said says after before over under into about more new also who which what
when where while all one two three us un
في من على الى إلى عن مع هذا هذه ذلك التي الذي الذين كان كانت قد لم لا ما ان أن إن او أو ثم
بعد قبل حتى كل بين عند منذ هو هي هم نحن انا أنا وقد وفي ومن وعلى يوم اليوم قال وقال
و در از به با را که این آن است بود شد می برای تا هم یا اما هر ما شما او آنها خود نیز
کرد کرده شده باید بر روی پس پیش همه یک دو سه گفت
"""
COMMON_WORDS: frozenset[str] = frozenset(normalize(w) for w in _COMMON_RAW.split())

_KIND_FACTOR = {EXACT: 1.0, PREFIX: 3.0, SUFFIX: 6.0, INFIX: 12.0}


def word_cost(word: Word) -> float:
    """Estimated relative frequency of ``word`` in messages (higher = more often found)."""
    text = word.text
    if word.kind == EXACT and text in COMMON_WORDS:
        base = 200.0
    else:
        n = len(text)
        base = {1: 100.0, 2: 40.0, 3: 12.0, 4: 5.0, 5: 3.0}.get(n, 2.0 if n < 8 else 1.0)
    if word.arabic:
        base *= 1.5  # affixed forms match too
    return base * _KIND_FACTOR[word.kind]


def rarest_word(term: Term) -> tuple[int, float]:
    """(index, cost) of the term's word least likely to occur: a phrase is anchored on it."""
    best, best_cost = 0, word_cost(term.words[0])
    for i in range(1, len(term.words)):
        c = word_cost(term.words[i])
        if c < best_cost:
            best, best_cost = i, c
    return best, best_cost


def term_cost(term: Term) -> float:
    return rarest_word(term)[1]


REGEX_COST = 100.0  # anchoring on a regex may run it on every message: a last resort
