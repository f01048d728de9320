"""Translate a user's search query into an FTS5 expression over ``messages.search_text``.

The archive indexes :func:`monitor.text.search_text`: the normalised text plus
the proclitic-stripped stems of Arabic-script words. A query is normalised the same way,
term by term, while its FTS5 syntax is kept:

* ``"a phrase"``, ``prefix*`` and ``"a phr"*``
* ``AND``, ``OR``, ``NOT`` (uppercase only; lowercase ``and`` is a word) and parentheses
* anything else is a term; terms side by side are ANDed.

Every term is emitted as a quoted FTS5 string, so punctuation inside a term (``al-Qaeda``,
``U.S.``) can never be read as FTS5 syntax. Arabic-script words get the rules' proclitic
handling: the index holds the proclitic-stripped stems of every word, so ``الدولة`` finds
``والدولة`` and ``بالدولة``; the forms stems cannot give (``للدولة``) are ORed in; and a
phrase whose first word is Arabic-script is expanded to the same phrase with each
proclitic form of that word, so ``"الدولة الإسلامية"`` also finds ``والدولة الإسلامية``.
Inside a phrase only the first word gets proclitic forms.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from ..text import PROCLITICS, is_arabic_script, normalize, proclitic_stems

try:  # the matcher's own list of a word's proclitic forms (incl. the ل+ال contraction)
    from ..text import proclitic_forms as _proclitic_forms
except ImportError:  # pragma: no cover - older normalize

    def _proclitic_forms(word: str) -> tuple[str, ...]:
        if len(word) < 2 or not is_arabic_script(word):
            return ()
        skip_article = word.startswith("ال")
        return tuple(sorted(p + word for p in PROCLITICS if not (skip_article and p.endswith("ال"))))

OPERATORS = frozenset({"AND", "OR", "NOT"})
_WORD = re.compile(r"\w+")
_SPECIAL = set('"()')


class QuerySyntaxError(ValueError):
    """The search query cannot be understood; the message says why (one line)."""


@dataclass(frozen=True)
class CompiledQuery:
    """A translated query: the FTS5 expression, and the normalised words it looks for
    (``exact`` whole words, ``prefixes`` word starts) for highlighting."""

    fts: str
    exact: frozenset[str]
    prefixes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # term | phrase | op | lpar | rpar
    text: str = ""
    prefix: bool = False
    pos: int = 0


def _tokenize(query: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch.isspace():
            i += 1
        elif ch == "(":
            toks.append(_Tok("lpar", pos=i))
            i += 1
        elif ch == ")":
            toks.append(_Tok("rpar", pos=i))
            i += 1
        elif ch == '"':
            end = query.find('"', i + 1)
            if end < 0:
                raise QuerySyntaxError(f"unterminated quote at position {i + 1}")
            j = end + 1
            prefix = False
            while j < n and query[j] == "*":
                prefix = True
                j += 1
            toks.append(_Tok("phrase", query[i + 1 : end], prefix, i))
            i = j
        else:
            j = i
            while j < n and not query[j].isspace() and query[j] not in _SPECIAL:
                j += 1
            word = query[i:j]
            if word in OPERATORS:
                toks.append(_Tok("op", word, pos=i))
            else:
                stripped = word.rstrip("*")
                toks.append(_Tok("term", stripped, stripped != word, i))
            i = j
    return toks


def _quote(words: list[str]) -> str:
    return '"' + " ".join(words).replace('"', '""') + '"'


def _phrase(text: str, prefix: bool, exact: set[str], prefixes: list[str]) -> str | None:
    """FTS5 for one term or phrase, or None when it holds nothing searchable. Adds the words
    looked for to ``exact`` / ``prefixes``."""
    words = _WORD.findall(normalize(text))
    if not words:
        return None
    exact.update(words[:-1] if prefix else words)
    if prefix:
        prefixes.append(words[-1])
    star = "*" if prefix else ""
    first, rest = words[0], words[1:]
    if is_arabic_script(first) and (rest or not prefix):
        exact.update(_proclitic_forms(first))
    if not is_arabic_script(first) or (prefix and not rest):
        return _quote(words) + star
    if not rest:
        # The index holds each word's proclitic-stripped stems, so "الدوله" already finds
        # "والدوله"; add only the forms the stems do not give (e.g. "للدوله").
        extra = [f for f in _proclitic_forms(first) if first not in proclitic_stems(f)]
        if not extra:
            return _quote(words)
        return "(" + " OR ".join(_quote([w]) for w in [first, *extra]) + ")"
    alternatives = [_quote([form, *rest]) + star for form in [first, *_proclitic_forms(first)]]
    return "(" + " OR ".join(alternatives) + ")"


def translate(query: str) -> str:
    """Return the FTS5 MATCH expression for ``query``; raise :class:`QuerySyntaxError`."""
    return compile_query(query).fts


def compile_query(query: str) -> CompiledQuery:
    """Translate ``query`` (see module docstring); raise :class:`QuerySyntaxError`."""
    if query is None or not query.strip():
        raise QuerySyntaxError("empty search query")
    toks = _tokenize(query)
    out: list[str] = []
    exact: set[str] = set()
    prefixes: list[str] = []
    depth = 0
    terms = 0
    prev = "start"  # start | lpar | rpar | op | term: what was emitted last
    pending_op: _Tok | None = None
    for tok in toks:
        if tok.kind == "lpar":
            depth += 1
            if prev in ("term", "rpar"):
                out.append("AND")  # FTS5 has no implicit AND next to parentheses
            out.append("(")
            prev = "lpar"
        elif tok.kind == "rpar":
            depth -= 1
            if depth < 0:
                raise QuerySyntaxError(f"unbalanced ')' at position {tok.pos + 1}")
            if prev == "lpar":
                raise QuerySyntaxError(f"empty parentheses at position {tok.pos + 1}")
            if prev == "op" and pending_op is not None:
                raise _dangling(pending_op)
            out.append(")")
            prev = "rpar"
        elif tok.kind == "op":
            if prev in ("start", "lpar", "op"):
                raise _dangling(tok)
            out.append(tok.text)
            prev, pending_op = "op", tok
        else:
            fts = _phrase(tok.text, tok.prefix, exact, prefixes)
            if fts is not None:
                if prev in ("term", "rpar"):
                    out.append("AND")
                out.append(fts)
                terms += 1
                prev = "term"
    if depth > 0:
        raise QuerySyntaxError("unbalanced '(': missing ')'")
    if prev == "op" and pending_op is not None:
        raise _dangling(pending_op)
    if not terms:
        raise QuerySyntaxError(f"no searchable words in query {query!r}")
    return CompiledQuery(" ".join(out), frozenset(exact), tuple(dict.fromkeys(prefixes)))


def _dangling(tok: _Tok) -> QuerySyntaxError:
    return QuerySyntaxError(
        f"'{tok.text}' at position {tok.pos + 1} needs a search term on both sides"
        " (write it in lowercase to search for the word)"
    )


def fts_error(query: str, exc: sqlite3.OperationalError) -> QuerySyntaxError:
    """Turn SQLite's complaint about a MATCH expression into a one-line QuerySyntaxError."""
    msg = str(exc)
    if msg.startswith("fts5: "):
        msg = msg[len("fts5: ") :]
    return QuerySyntaxError(f"invalid search query {query!r}: {msg}")


def is_fts_error(exc: BaseException) -> bool:
    """True when an OperationalError comes from FTS5 parsing a MATCH expression."""
    msg = str(exc)
    return isinstance(exc, sqlite3.OperationalError) and (
        msg.startswith("fts5:") or "malformed MATCH" in msg or "unknown special query" in msg
    )
