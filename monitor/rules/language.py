"""The language a message is in, for rules' ``languages:`` filter.

The declared language (X's ``lang``) wins when it is a real language code; otherwise the
script decides: Arabic script with Persian-only letters is ``fa``, other Arabic script
``ar``, Latin ``en``.
"""

from __future__ import annotations

import re

from ..model import Message

_ARABIC_SCRIPT = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]")
_LATIN = re.compile(r"[A-Za-z\u00C0-\u024F\u1E00-\u1EFF]")
_ARABIC_RUNS = re.compile(_ARABIC_SCRIPT.pattern + "+")
_LATIN_RUNS = re.compile(_LATIN.pattern + "+")
_PERSIAN_STRONG = re.compile(r"[پچژگ]")  # letters Arabic does not use
_PERSIAN_WEAK = re.compile(r"[کی]")  # Persian kaf/yeh, also typed in Arabic on Persian keyboards
_TEH_MARBUTA = re.compile(r"[ةۃ]")  # in nearly every Arabic text, rare in Persian
# X's pseudo codes: undefined, no linguistic content, media/hashtag/cashtag/mention-only...
_NOT_LANGUAGES = {"und", "zxx", "mul", "mis"}


def declared_language(lang: str | None) -> str | None:
    """The primary subtag of a declared language code, or None when it names no language."""
    if not lang:
        return None
    code = lang.strip().lower().replace("_", "-").split("-")[0]
    if not code.isalpha() or not 2 <= len(code) <= 3 or code in _NOT_LANGUAGES or code.startswith("q"):
        return None
    return code


def script_language(text: str) -> str | None:
    """``fa``, ``ar``, ``en`` or None from the letters of ``text``."""
    if not text:
        return None
    if text.isascii():  # no Arabic script: Latin letters or nothing
        return "en" if _LATIN.search(text) else None
    if _LATIN.search(text) is None:
        arabic, latin = (0 if _ARABIC_SCRIPT.search(text) is None else 1), 0
    else:  # counted in runs (one string per word, not per letter)
        arabic = sum(map(len, _ARABIC_RUNS.findall(text)))
        latin = sum(map(len, _LATIN_RUNS.findall(text)))
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


def is_persian(msg: Message) -> bool:
    """Whether ``msg`` is in Persian (:func:`message_language` is ``fa``), for the word
    analysis (:func:`monitor.rules.morphology.word_forms`). Text without Arabic script is
    not (decided without the script analysis)."""
    lang = declared_language(msg.lang)
    if lang is not None:
        return lang == "fa"
    text = msg.text
    return bool(text) and not text.isascii() and script_language(text) == "fa"
