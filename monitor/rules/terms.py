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
from array import array
from collections import defaultdict
from functools import partial
from itertools import accumulate, chain, compress, count, islice, repeat
from operator import is_, itemgetter, sub
from typing import NamedTuple

from .morphology import MERGE_TOKENS as _MERGE, PREFIX_TOKENS, merge_term_words
from ..text import WORD_RE, is_arabic_script, normalize

MAX_TERM_CHARS = 256
MAX_TERM_WORDS = 16

EXACT, PREFIX, SUFFIX, INFIX = "exact", "prefix", "suffix", "infix"


class TermError(ValueError):
    """The term cannot be used; the message says why."""


_tuple_new = tuple.__new__


class Word(NamedTuple):
    """One word of a term. A named tuple (immutable, compared and hashed by value): parsed
    words are interned (:func:`parse_term` gives equal words as one object) and a compiled
    set with 200,000 names unpickles them at C speed (:mod:`monitor.rules.cache`)."""

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

    def __reduce__(self) -> tuple:  # unpickled by tuple.__new__ in C, not the named tuple's __new__
        return (_tuple_new, (Word, tuple(self)))


class Term(NamedTuple):
    """A parsed term (a named tuple, see :class:`Word`)."""

    raw: str  # as written in the rule
    words: tuple[Word, ...]

    @property
    def is_phrase(self) -> bool:
        return len(self.words) > 1

    @property
    def arabic(self) -> bool:
        return any(is_arabic_script(w.text) for w in self.words)

    def __reduce__(self) -> tuple:
        return (_tuple_new, (Term, tuple(self)))


# chunk (a whitespace-free piece of a term without '*') -> its words; equal words are one
# object. Bounded: cleared when full (a pure function of the chunk, so only a cache).
_CHUNKS: dict[str, tuple[Word, ...]] = {}
_WORDS: dict[str, Word] = {}
_MERGING: set[str] = set()  # cached chunks with a word that joins its neighbour (see _join_pieces)
MAX_CACHED_CHUNKS = 500_000


def _chunk_words(chunk: str) -> tuple[Word, ...]:
    got = _CHUNKS.get(chunk)
    if got is None:
        words = _WORDS
        got = tuple([words.get(w) or words.setdefault(w, Word(w)) for w in WORD_RE.findall(normalize(chunk))])
        if not _MERGE.isdisjoint([w.text for w in got]):
            _MERGING.add(chunk)
        _CHUNKS[chunk] = got
    return got


def parse_term(raw: str) -> Term:
    """Parse one term as written in a rule; raises :class:`TermError`."""
    if len(_CHUNKS) >= MAX_CACHED_CHUNKS:  # between two terms: a term's chunks are flagged alike
        _CHUNKS.clear()
        _WORDS.clear()
        _MERGING.clear()
    if "*" not in raw:  # the common case: plain words, each chunk's words cached
        chunks = raw.split()
        if not chunks:
            raise TermError("empty term")
        if len(raw) > MAX_TERM_CHARS:
            raise TermError(f"term is {len(raw)} characters long (at most {MAX_TERM_CHARS})")
        if len(chunks) == 1:
            words = _CHUNKS.get(chunks[0]) or _chunk_words(chunks[0])
        else:
            got = list(map(_CHUNKS.get, chunks))
            if None in got:
                got = [_chunk_words(c) if g is None else g for g, c in zip(got, chunks)]
            words = tuple(chain.from_iterable(got))
        if not words:
            raise TermError(f"empty term: {raw!r} has no words (only punctuation or spaces)")
        if not _MERGING.isdisjoint(chunks):
            words = tuple(_join_pieces(list(words)))
    else:
        if not raw.strip():
            raise TermError("empty term")
        if len(raw) > MAX_TERM_CHARS:
            raise TermError(f"term is {len(raw)} characters long (at most {MAX_TERM_CHARS})")
        wild = _wildcard_words(raw)
        if not wild:
            raise TermError(f"empty term: {raw!r} has no words (only punctuation or spaces)")
        if not _MERGE.isdisjoint([w.text for w in wild]):
            wild = _join_pieces(wild)
        words = tuple(wild)
    if len(words) > MAX_TERM_WORDS:
        raise TermError(f"term {raw!r} has {len(words)} words (at most {MAX_TERM_WORDS})")
    return _tuple_new(Term, (raw, words))  # Term(raw, words) without the named tuple's Python __new__


_is_none = partial(is_, None)
PARSE_BATCH = 50_000  # terms per batch of parse_terms (the chunk cache is checked between two)


def parse_terms(raws: "list[str]") -> "list[Term | None]":
    """``parse_term`` of each of ``raws`` (a watch list's 200,000 names), in a few C-level
    passes instead of one call per term: the same terms (equal words, interned alike).
    An entry is None where :func:`parse_term` must decide (wildcards, a term too long, without
    words or with too many, Persian pieces to join): call it for those (it may raise)."""
    out: list[Term | None] = []
    for at in range(0, len(raws), PARSE_BATCH):
        out.extend(_parse_batch(raws[at : at + PARSE_BATCH]))
    return out


def _parse_batch(raws: "list[str]") -> "list[Term | None]":
    if len(_CHUNKS) >= MAX_CACHED_CHUNKS:  # as parse_term does between two terms
        _CHUNKS.clear()
        _WORDS.clear()
        _MERGING.clear()
    if not raws:
        return []
    splits = list(map(str.split, raws))
    counts = list(map(len, splits))
    flat = list(chain.from_iterable(splits))
    cache = _CHUNKS
    missing = set(flat).difference(cache)
    if missing:
        _fill_chunks(list(missing))
    got = list(map(cache.__getitem__, flat))
    if set(map(len, got)) == {1}:  # every chunk one word (names): the words themselves
        it = iter(list(map(itemgetter(0), got)))
        words = [tuple(islice(it, k)) for k in counts]
    else:
        it2 = iter(got)
        words = [tuple(chain.from_iterable(islice(it2, k))) for k in counts]
    terms: list[Term | None] = list(map(_tuple_new, repeat(Term), zip(raws, words)))
    # what parse_term decides itself: '*', length, no words or too many, Persian pieces
    odd = "*" in "".join(raws) or max(map(len, raws)) > MAX_TERM_CHARS
    sizes = set(map(len, words))
    if odd or 0 in sizes or max(sizes) > MAX_TERM_WORDS or not _MERGING.isdisjoint(flat):
        merging = _MERGING
        for i, raw in enumerate(raws):
            w = words[i]
            if (not w or len(w) > MAX_TERM_WORDS or "*" in raw or len(raw) > MAX_TERM_CHARS
                    or not merging.isdisjoint(splits[i])):
                terms[i] = None
    return terms


def parse_terms_flat(raws: "list[str]") -> "tuple[tuple[Word, ...], array, array] | None":
    """The flat form of ``parse_term`` of each of ``raws`` (see
    :meth:`~monitor.rules.lists.ListTerms.flat`: the distinct words in order of first
    occurrence, the number of each word of each term, the number of words of each term),
    computed from the cached chunks without a tuple of words or a ``Term`` per entry; the
    same words as :func:`parse_terms`. None when an entry is one :func:`parse_term` must
    decide (wildcards, a term too long, without words or with too many, Persian pieces to
    join): then parse them one by one (:func:`parse_terms`)."""
    if not raws or max(map(len, raws)) > MAX_TERM_CHARS or "*" in "\n".join(raws):
        return None
    wordlist: list[Word] = []
    per_term: list[int] = []
    for at in range(0, len(raws), PARSE_BATCH):
        got = _flat_batch(raws[at : at + PARSE_BATCH])
        if got is None:
            return None
        wordlist += got[0]
        per_term += got[1]
    if max(per_term) > MAX_TERM_WORDS or 0 in per_term:
        return None
    # each word's number, given on its first occurrence (one look-up per word, in C)
    number: defaultdict[Word, int] = defaultdict(count().__next__)
    ids = array("I", map(number.__getitem__, wordlist))
    return tuple(number), ids, array("B", per_term)


def _flat_batch(raws: "list[str]") -> "tuple[list[Word], list[int]] | None":
    if len(_CHUNKS) >= MAX_CACHED_CHUNKS:  # as parse_term does between two terms
        _CHUNKS.clear()
        _WORDS.clear()
        _MERGING.clear()
    splits = list(map(str.split, raws))
    counts = list(map(len, splits))  # chunks per term
    flat = list(chain.from_iterable(splits))
    cache = _CHUNKS
    got = list(map(cache.get, flat))
    if None in got:  # chunks not seen yet (their words are made once, in one pass)
        _fill_chunks(list(dict.fromkeys(compress(flat, map(_is_none, got)))))
        got = list(map(cache.__getitem__, flat))
    if _MERGING and not _MERGING.isdisjoint(flat):
        return None
    lens = list(map(len, got))
    if set(lens) == {1}:  # every chunk one word (names): the words themselves
        return list(map(itemgetter(0), got)), counts
    # words per term: the words of its chunks (a chunk "al-Houthi" has two, "-" none)
    cum = [0, *accumulate(lens)]
    bounds = [0, *accumulate(counts)]
    return list(chain.from_iterable(got)), list(map(sub, map(cum.__getitem__, bounds[1:]), map(cum.__getitem__, bounds[:-1])))


def _fill_chunks(chunks: "list[str]") -> None:
    """:func:`_chunk_words` of each chunk, normalised in one pass (normalisation maps each
    character on its own, so the chunks joined by newlines normalise to their normal forms
    joined by newlines, unless a character became a newline: then one by one)."""
    joined = "\n".join(chunks)
    parts = normalize(joined).split("\n")
    if len(parts) != len(chunks):  # pragma: no cover - no character normalises to a newline
        for c in chunks:
            _chunk_words(c)
        return
    words = _WORDS
    found = list(map(WORD_RE.findall, parts))  # each chunk's word texts
    texts = list(chain.from_iterable(found))
    got = list(map(words.get, texts))
    if None in got:  # new words: one Word per text, made in C
        new = list(dict.fromkeys(compress(texts, map(_is_none, got))))
        words.update(zip(new, map(_tuple_new, repeat(Word), zip(new, repeat(EXACT)))))
        got = list(map(words.__getitem__, texts))
    it = iter(got)
    _CHUNKS.update(zip(chunks, map(tuple, map(islice, repeat(it), map(len, found)))))
    if not _MERGE.isdisjoint(texts):  # chunks with a word that joins its neighbour (rare)
        merge = _MERGE
        _MERGING.update(c for c, f in zip(chunks, found) if not merge.isdisjoint(f))


def _wildcard_words(raw: str) -> list[Word]:
    words: list[Word] = []
    for chunk in raw.split():
        lead = chunk.startswith("*")
        trail = chunk.endswith("*") and len(chunk) > 1
        core = chunk.strip("*")
        if "*" in core:
            raise TermError(f"term {raw!r}: '*' is only allowed at the start or end of a word")
        chunk_words = list(_chunk_words(core)) if core else []
        if not chunk_words:
            if lead or trail or chunk == "*":
                raise TermError(f"term {raw!r}: '*' needs a word")
            continue  # punctuation between words, e.g. "claims - responsibility"
        if lead:
            first = chunk_words[0].text
            chunk_words[0] = Word(first, INFIX if (trail and len(chunk_words) == 1) else SUFFIX)
        if trail:
            last = chunk_words[-1]
            chunk_words[-1] = Word(last.text, INFIX if last.kind == SUFFIX else PREFIX)
        words.extend(chunk_words)
    return words


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
