"""The language a message is in, for rules' ``languages:`` filter.

The declared language (X's ``lang``) wins when it is a real language code; otherwise the
script decides: Arabic script with Persian-only letters is ``fa``, other Arabic script
``ar``, Latin ``en``.
"""

from __future__ import annotations

import re

from ..model import Message

try:  # (Arabic-script letters, Latin letters, Persian letter flags) of a text: see _scan.c
    from ._scan import script_counts as _script_counts
except ImportError:  # not built: the regexes below
    _script_counts = None

_ARABIC_SCRIPT = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]")
_LATIN = re.compile(r"[A-Za-z\u00C0-\u024F\u1E00-\u1EFF]")
_ARABIC_RUNS = re.compile(_ARABIC_SCRIPT.pattern + "+")
_LATIN_RUNS = re.compile(_LATIN.pattern + "+")
_STRONG_LETTERS = "پچژگ"  # letters Arabic does not use
_WEAK_LETTERS = "کی"  # Persian kaf/yeh, also typed in Arabic on Persian keyboards
_PERSIAN_STRONG = re.compile(f"[{_STRONG_LETTERS}]")
_PERSIAN_WEAK = re.compile(f"[{_WEAK_LETTERS}]")
_TEH_MARBUTA = re.compile(r"[ةۃ]")  # in nearly every Arabic text, rare in Persian
_PERSIAN_LETTERS = _WEAK_LETTERS + _STRONG_LETTERS  # the most frequent first (see is_persian)
# X's pseudo codes: undefined, no linguistic content, media/hashtag/cashtag/mention-only...
_NOT_LANGUAGES = {"und", "zxx", "mul", "mis"}


_DECLARED: dict[str, str | None] = {}  # declared code -> its answer (a feed uses a handful)
_DECLARED_MAX = 1_000


def declared_language(lang: str | None) -> str | None:
    """The primary subtag of a declared language code, or None when it names no language."""
    if not lang:
        return None
    try:
        return _DECLARED[lang]
    except (KeyError, TypeError):
        pass
    code: str | None = lang.strip().lower().replace("_", "-").split("-")[0]
    if not code.isalpha() or not 2 <= len(code) <= 3 or code in _NOT_LANGUAGES or code.startswith("q"):
        code = None
    if isinstance(lang, str):
        if len(_DECLARED) >= _DECLARED_MAX:
            _DECLARED.clear()
        _DECLARED[lang] = code
    return code


def _letters(text: str) -> tuple[int, int]:
    """(Arabic-script, Latin) letters of a non-ASCII ``text`` as :func:`script_language`
    weighs them (without Latin letters: 1 or 0 for Arabic script)."""
    if _script_counts is not None:  # one C pass
        arabic, latin, _ = _script_counts(text)
        return (arabic, latin) if latin else (1 if arabic else 0, 0)
    if _LATIN.search(text) is None:
        return (0 if _ARABIC_SCRIPT.search(text) is None else 1), 0
    # counted in runs (one string per word, not per letter)
    return sum(map(len, _ARABIC_RUNS.findall(text))), sum(map(len, _LATIN_RUNS.findall(text)))


def script_language(text: str) -> str | None:
    """``fa``, ``ar``, ``en`` or None from the letters of ``text``."""
    if not text:
        return None
    if text.isascii():  # no Arabic script: Latin letters or nothing
        return "en" if _LATIN.search(text) else None
    if _script_counts is not None:  # the same counts and letter tests in one C pass
        arabic, latin, flags = _script_counts(text)
        if arabic and arabic >= latin:
            if flags & 1 or (flags & 2 and not flags & 4):
                return "fa"
            return "ar"
        return "en" if latin else None
    arabic, latin = _letters(text)
    if arabic and arabic >= latin:
        if _PERSIAN_STRONG.search(text):
            return "fa"
        if _PERSIAN_WEAK.search(text) and not _TEH_MARBUTA.search(text):
            return "fa"
        return "ar"
    if latin:
        return "en"
    return None


def message_language(msg: Message) -> str | None:
    return declared_language(msg.lang) or script_language(msg.text)


def language_not_persian(msg: Message) -> str | None:
    """:func:`message_language` of a message :func:`is_persian` said no to (the script
    analysis without its Persian letter tests)."""
    lang = msg.lang
    if lang:
        lang = declared_language(lang)
        if lang is not None:
            return lang
    text = msg.text
    if not text:
        return None
    if text.isascii():
        return "en" if _LATIN.search(text) else None
    arabic, latin = _letters(text)
    if arabic and arabic >= latin:
        return "ar"
    return "en" if latin else None


def is_persian(msg: Message) -> bool:
    """Whether ``msg`` is in Persian (:func:`message_language` is ``fa``), for the word
    analysis (:func:`monitor.rules.morphology.word_forms`). Text without Arabic script is
    not (decided without the script analysis)."""
    lang = msg.lang
    if lang:
        lang = declared_language(lang)
        if lang is not None:
            return lang == "fa"
    text = msg.text
    if not text or text.isascii():
        return False
    # ``fa`` needs one of the Persian letters (strong or weak, as script_language reads them):
    # without one the answer is no, found with ``in`` (a text whose characters are all below
    # U+0100 answers at once; an Arabic one by memchr on the letter's low byte) instead of the
    # script analysis's several regex passes over the text
    for letter in _PERSIAN_LETTERS:
        if letter in text:
            return script_language(text) == "fa"
    return False
