"""Terms: what a rule author writes in ``any``/``all``/``near`` lists, parsed into words.

A term is one or more words, matched as consecutive whole words of the normalised text
(whatever separates them in the text: spaces, punctuation, line breaks). ``*`` at the end
of a word makes it a prefix (``claim*`` matches ``claimed``), at the start a suffix
(``*stan``), at both ends an infix. Arabic-script words also match with attached
proclitics (``الدولة`` matches ``والدولة``, ``بالدولة``, ``للدولة``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .normalize import NON_WORD_CHAR, WORD_CHAR, WORD_RE, is_arabic_script, normalize, proclitic_forms

MAX_TERM_CHARS = 256
MAX_TERM_WORDS = 16

EXACT, PREFIX, SUFFIX, INFIX = "exact", "prefix", "suffix", "infix"


class TermError(ValueError):
    """The term cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Word:
    text: str  # normalised, without '*'
    kind: str = EXACT  # exact | prefix (w*) | suffix (*w) | infix (*w*)
    # The word and, for Arabic-script words that start at a word boundary, its proclitic forms.
    forms: tuple[str, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        forms = (self.text, *proclitic_forms(self.text)) if self.kind in (EXACT, PREFIX) else (self.text,)
        object.__setattr__(self, "forms", forms)

    def keys(self) -> list[str]:
        """Patterns for the matcher's scan of ``" " + word_text(text) + " "``."""
        if self.kind == EXACT:
            return [f" {f} " for f in self.forms]
        if self.kind == PREFIX:
            return [f" {f}" for f in self.forms]
        if self.kind == SUFFIX:
            return [f"{self.text} "]
        return [self.text]

    def regex(self) -> str:
        """The same word as a Python regex over normalised text (without the outer boundaries)."""
        alts = "|".join(re.escape(f) for f in sorted(self.forms, key=len, reverse=True))
        core = f"(?:{alts})"
        if self.kind == PREFIX:
            return core + WORD_CHAR + "*"
        if self.kind == SUFFIX:
            return WORD_CHAR + "*" + core
        if self.kind == INFIX:
            return WORD_CHAR + "*" + core + WORD_CHAR + "*"
        return core

    def __str__(self) -> str:
        return {EXACT: "{}", PREFIX: "{}*", SUFFIX: "*{}", INFIX: "*{}*"}[self.kind].format(self.text)


@dataclass(frozen=True, slots=True)
class Term:
    raw: str  # as written in the rule
    words: tuple[Word, ...]

    @property
    def is_phrase(self) -> bool:
        return len(self.words) > 1

    def regex(self) -> str:
        """The term as a Python regex over normalised text: whole words, any separators."""
        sep = NON_WORD_CHAR + "+"
        return f"(?<!{WORD_CHAR})" + sep.join(w.regex() for w in self.words) + f"(?!{WORD_CHAR})"

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
    if len(words) > MAX_TERM_WORDS:
        raise TermError(f"term {raw!r} has {len(words)} words (at most {MAX_TERM_WORDS})")
    return Term(raw, tuple(words))
