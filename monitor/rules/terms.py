"""Terms: what a rule author writes in ``any``/``all``/``near`` lists, parsed into words.

A term is one or more words, matched as consecutive whole words of the normalised text
(whatever separates them in the text: spaces, punctuation, line breaks). ``*`` at the end
of a word makes it a prefix (``claim*`` matches ``claimed``), at the start a suffix
(``*stan``), at both ends an infix. Arabic-script words also match their affixed forms in
messages (``الدولة`` matches ``والدولة``, ``مسؤولية`` matches ``مسؤوليتها``): the message's
words are reduced to the forms a term can match (:mod:`monitor.rules.morphology`); the term
itself is one pattern per word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .morphology import PREFIX_TOKENS, merge_term_words
from ..text import WORD_RE, is_arabic_script, normalize

MAX_TERM_CHARS = 256
MAX_TERM_WORDS = 16

EXACT, PREFIX, SUFFIX, INFIX = "exact", "prefix", "suffix", "infix"


class TermError(ValueError):
    """The term cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Word:
    text: str  # normalised, without '*'
    kind: str = EXACT  # exact | prefix (w*) | suffix (*w) | infix (*w*)

    def key(self) -> str:
        """The word's one pattern, matched against each form of a message word framed by
        spaces: ``" w "`` (whole form), ``" w"`` (prefix), ``"w "`` (suffix), ``"w"`` (infix)."""
        return {EXACT: " {} ", PREFIX: " {}", SUFFIX: "{} ", INFIX: "{}"}[self.kind].format(self.text)

    def keys(self) -> list[str]:
        return [self.key()]

    def matches(self, form: str) -> bool:
        """Whether one form of a message word matches this word (the reference semantics)."""
        if self.kind == EXACT:
            return form == self.text
        if self.kind == PREFIX:
            return form.startswith(self.text)
        if self.kind == SUFFIX:
            return form.endswith(self.text)
        return self.text in form

    @property
    def arabic(self) -> bool:
        return is_arabic_script(self.text)

    def __str__(self) -> str:
        return {EXACT: "{}", PREFIX: "{}*", SUFFIX: "*{}", INFIX: "*{}*"}[self.kind].format(self.text)


@dataclass(frozen=True, slots=True)
class Term:
    raw: str  # as written in the rule
    words: tuple[Word, ...]

    @property
    def is_phrase(self) -> bool:
        return len(self.words) > 1

    @property
    def arabic(self) -> bool:
        return any(is_arabic_script(w.text) for w in self.words)


def parse_term(raw: str) -> Term:
    """Parse one term as written in a rule; raises :class:`TermError`."""
    if not raw or not raw.strip():
        raise TermError("empty term")
    if len(raw) > MAX_TERM_CHARS:
        raise TermError(f"term is {len(raw)} characters long (at most {MAX_TERM_CHARS})")
    words: list[Word] = []
    for chunk in raw.split():
        lead = chunk.startswith("*")
        trail = chunk.endswith("*") and len(chunk) > 1
        core = chunk.strip("*")
        if "*" in core:
            raise TermError(f"term {raw!r}: '*' is only allowed at the start or end of a word")
        found = WORD_RE.findall(normalize(core))
        if not found:
            if lead or trail or chunk == "*":
                raise TermError(f"term {raw!r}: '*' needs a word")
            continue  # punctuation between words, e.g. "claims - responsibility"
        chunk_words = [Word(w) for w in found]
        if lead:
            chunk_words[0] = Word(found[0], INFIX if (trail and len(found) == 1) else SUFFIX)
        if trail:
            last = chunk_words[-1]
            chunk_words[-1] = Word(found[-1], INFIX if last.kind == SUFFIX else PREFIX)
        words.extend(chunk_words)
    if not words:
        raise TermError(f"empty term: {raw!r} has no words (only punctuation or spaces)")
    words = _join_pieces(words)
    if len(words) > MAX_TERM_WORDS:
        raise TermError(f"term {raw!r} has {len(words)} words (at most {MAX_TERM_WORDS})")
    return Term(raw, tuple(words))


def _join_pieces(words: list[Word]) -> list[Word]:
    """Persian words written in pieces join as in messages: ``بیانیه ای`` -> ``بیانیهای``,
    ``می شود`` -> ``میشود`` (see :func:`monitor.rules.morphology.merge_term_words`)."""
    groups = merge_term_words(
        [w.text for w in words], [w.kind == EXACT for w in words], [w.kind in (EXACT, PREFIX) for w in words]
    )
    if len(groups) == len(words):
        return words
    out = []
    for a, b in groups:
        if a == b:
            out.append(words[a])
        else:  # a suffix piece keeps the first word's kind, a prefix piece takes the second's
            kind = words[b].kind if words[a].text in PREFIX_TOKENS else words[a].kind
            out.append(Word(words[a].text + words[b].text, kind))
    return out
