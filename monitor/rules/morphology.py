"""Light, table-driven morphology of Arabic-script words, applied to the MESSAGE's words.

A rule term is stored as written (normalised); each word of a message is reduced, once, to
the few forms a term can match (:func:`word_forms`), and terms are looked up against those
forms. So the matcher holds one pattern per distinct term word, however many affixed forms
the word has in text (issue 14), and a term written in its base form matches its inflected
forms in messages (issue 08).

Forms of a normalised Arabic-script word (Arabic or Persian), as :func:`scan_text` gives it
(ة and ى still apart from ه and ي):

1. the word itself;
2. proclitics stripped: conjunctions و ف, prepositions ب ك ل, article ال and their
   combinations (``فبالدولة`` -> ``الدولة``, ``دولة``); ``لل`` also gives the form with the
   article (``للدولة`` -> ``الدولة``), and ``ل`` before a word starting with ``ل`` too
   (``لله`` -> ``الله``). In a Persian message (``persian=True``: the message's language is
   ``fa``) only the article is stripped (:data:`PERSIAN_PROCLITICS`): Persian writes و and
   the prepositions apart (``و``, ``به``, ``برای``), and a word's first ب is part of the
   word (the verb prefix of ``بزنید``, ``بامداد`` "dawn", which is not ب + ``امداد``
   "relief"); the Arabic article stays in the Arabic names Persian borrows (``القسام``,
   ``البغدادی``), so it is still taken off;
3. of each form of 1-2, enclitic pronouns stripped: ه ها هم هما هن كم كن نا ي ك, restoring
   ة where the stem ends in ت (``مسؤوليتها`` -> ``مسؤولية``) and ى where it ends in ا
   (``تبناه`` -> ``تبنى``); a final ة or ى is never taken for a pronoun (``دولة`` stays
   whole);
4. of each form of 1-2, Persian suffixes stripped: ها های هایی ترین تر, ای after ه
   (``بیانیهای`` -> ``بیانیه``), and the perfect's copula است / اند after a past participle (a
   word ending in ده or ته: ``کشتهاند`` -> ``کشته``, ``شدهاست`` -> ``شده``; ``کشورهاست`` is
   not one).

A stripped form must keep at least :data:`MIN_STEM` letters: shorter words match only as
written (the term ``لي`` does not hit ``ولي``, ``من`` does not hit ``ومن``).

Persian words written in two pieces (ZWNJ, which normalisation turns into a space, or a
plain space) are joined by :func:`merged_pairs`: a standalone suffix token
(:data:`SUFFIX_TOKENS`: ها های هایی ای ی تر ترین) joins the word before it (``بیانیه‌ای``,
``بیانیه ای`` -> ``بیانیهای`` -> ``بیانیه``), as does است / اند after a past participle
(``کشته‌اند``, ``کشته اند`` -> ``کشتهاند``: the spelling of the stored pages, which lost their
ZWNJs; not ``سپاه است``), and the verbal prefix می / نمی joins the word
after it (``می‌شود``, ``می شود`` -> ``میشود``). The prefix is never stripped (``میرود`` is
not ``رود``); terms are joined the same way (:func:`merge_term_words`), so ``میشود``,
``می‌شود`` and ``می شود`` are one term and match all three spellings.
"""

from __future__ import annotations

from itertools import compress, count

from ..text import PROCLITICS, is_arabic_script

MIN_STEM = 3  # letters a stripped form keeps at least

# proclitics as written before a word (ل + ال is written لل: لال never occurs)
STRIP_PROCLITICS: frozenset[str] = frozenset(p for p in PROCLITICS if "لال" not in p)
_MAX_PROCLITIC = max(len(p) for p in STRIP_PROCLITICS)
_LAM_ARTICLE = ("لل", "ولل", "فلل")  # ل + ال: the stem had the article
_LAM = ("ل", "ول", "فل")  # ل + الل...: لله is ل + الله
_PROCLITIC_FIRST = frozenset(p[0] for p in STRIP_PROCLITICS)
# what a Persian message's words lose: only the article of borrowed Arabic names (see above)
PERSIAN_PROCLITICS: frozenset[str] = frozenset({"ال"})
ENCLITICS = ("هما", "ها", "هم", "هن", "كم", "كن", "نا", "ه", "ي", "ك")
PERSIAN_SUFFIXES = ("هایی", "های", "ها", "ترین", "تر")
PERSIAN_SUFFIXES_AFTER_HEH = ("ای",)
PERSIAN_PERFECT = ("است", "اند")  # the copula of the perfect, after a past participle (ده / ته)

# after normalisation (ی -> ي, ک -> ك)
ENCLITICS_N = ENCLITICS
PERSIAN_SUFFIXES_N = tuple(s.replace("ی", "ي") for s in PERSIAN_SUFFIXES)
PERSIAN_AFTER_HEH_N = tuple(s.replace("ی", "ي") for s in PERSIAN_SUFFIXES_AFTER_HEH)
SUFFIX_TOKENS: frozenset[str] = frozenset({"ها", "هاي", "هايي", "اي", "ي", "تر", "ترين"})
PERFECT_TOKENS: frozenset[str] = frozenset(PERSIAN_PERFECT)  # pieces joined after a participle only
PREFIX_TOKENS: frozenset[str] = frozenset({"مي", "نمي"})
MERGE_TOKENS: frozenset[str] = SUFFIX_TOKENS | PERFECT_TOKENS | PREFIX_TOKENS


def is_participle(word: str) -> bool:
    """Whether a normalised word ends like a Persian past participle (ده / ته: ``شده``,
    ``کشته``), which the perfect's copula است / اند follows."""
    return len(word) >= 3 and word[-1] == "ه" and word[-2] in "دت"


def _by_last_letter(suffixes: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for x in suffixes:
        out.setdefault(x[-1], []).append(x)
    return {k: tuple(v) for k, v in out.items()}


_ENCLITICS_BY_LAST = _by_last_letter(ENCLITICS_N)
_PERSIAN_BY_LAST = _by_last_letter(PERSIAN_SUFFIXES_N + PERSIAN_AFTER_HEH_N + PERSIAN_PERFECT)
_SUFFIX_LAST = frozenset(_ENCLITICS_BY_LAST) | frozenset(_PERSIAN_BY_LAST)


def _strip_suffixes(word: str, out: set[str]) -> None:
    n = len(word)
    last = word[-1]
    for e in _ENCLITICS_BY_LAST.get(last, ()):
        if n - len(e) >= MIN_STEM and word.endswith(e):
            stem = word[: -len(e)]
            out.add(stem)
            end = stem[-1]
            if end == "ت":
                out.add(stem[:-1] + "ة")
            elif end == "ا":
                out.add(stem[:-1] + "ى")
    for x in _PERSIAN_BY_LAST.get(last, ()):
        if n - len(x) >= MIN_STEM and word.endswith(x):
            stem = word[: -len(x)]
            if x in PERSIAN_PERFECT:
                if is_participle(stem):
                    out.add(stem)
            elif x not in PERSIAN_AFTER_HEH_N or stem[-1] == "ه":
                out.add(stem)


def _fold(form: str) -> str:
    return form.replace("ة", "ه").replace("ى", "ي") if ("ة" in form or "ى" in form) else form


def word_forms(token: str, persian: bool = False) -> tuple[str, ...]:
    """The normalised forms a term can match for one token of :func:`scan_text`.

    The first is the token itself (folded: ة -> ه, ى -> ي); non-Arabic-script tokens have
    only that one. ``persian``: the token is a word of a Persian message (only the article
    is stripped of the proclitics).
    """
    if not ("\u0600" <= token[0] <= "\u06ff") or len(token) < MIN_STEM:
        return (_fold(token),)
    folded = _fold(token)
    base = {token}
    n = len(token)
    proclitics = PERSIAN_PROCLITICS if persian else STRIP_PROCLITICS
    for k in range(min(_MAX_PROCLITIC, n - 1) if token[0] in _PROCLITIC_FIRST else 0, 0, -1):
        p = token[:k]
        if p not in proclitics:
            continue
        rest = token[k:]
        if len(rest) >= MIN_STEM:
            base.add(rest)
        if len(rest) < 2:
            continue
        if p in _LAM_ARTICLE:
            base.add("ال" + rest)
        elif p in _LAM and rest.startswith("ل"):
            base.add("ال" + rest)
    out = set(base)
    for b in base:
        if b[-1] in _SUFFIX_LAST:
            _strip_suffixes(b, out)
    out.discard(token)
    if not out:
        return (folded,)
    rest_forms = {_fold(f) for f in out if len(f) >= MIN_STEM}
    rest_forms.discard(folded)
    return (folded, *rest_forms)


def merged_pairs(tokens: list[str]) -> list[tuple[int, str]]:
    """(index of the first token, joined token) for each Persian word written in two pieces:
    a suffix token after an Arabic-script word, or می/نمی before one."""
    out = []
    last = len(tokens) - 1
    for i in compress(count(), map(MERGE_TOKENS.__contains__, tokens)):  # the pieces, found at C level
        t = tokens[i]
        if t in SUFFIX_TOKENS and i > 0:
            prev = tokens[i - 1]
            if prev not in MERGE_TOKENS and is_arabic_script(prev):
                out.append((i - 1, prev + t))
        elif t in PERFECT_TOKENS and i > 0:
            prev = tokens[i - 1]
            if prev not in MERGE_TOKENS and is_participle(prev):
                out.append((i - 1, prev + t))
        if t in PREFIX_TOKENS and i < last:
            nxt = tokens[i + 1]
            if nxt not in MERGE_TOKENS and is_arabic_script(nxt):
                out.append((i, t + nxt))
    return out


def merge_term_words(texts: list[str], exact: list[bool], open_end: list[bool]) -> list[tuple[int, int]]:
    """How the words of a term join like a message's pieces: a list of (first, last) word
    indexes, one per resulting word. ``exact[i]``: word i has no wildcard; ``open_end[i]``:
    it has none at its start (exact or ``word*``)."""
    groups: list[list[int]] = []
    for i, t in enumerate(texts):
        if groups and len(groups[-1]) == 1:
            j = groups[-1][0]
            prev = texts[j]
            suffix = exact[i] and exact[j] and prev not in MERGE_TOKENS and (
                t in SUFFIX_TOKENS or t in PERFECT_TOKENS and is_participle(prev))
            prefix = exact[j] and open_end[i] and prev in PREFIX_TOKENS and t not in MERGE_TOKENS
            if (suffix and is_arabic_script(prev)) or (prefix and is_arabic_script(t)):
                groups[-1].append(i)
                continue
        groups.append([i])
    return [(g[0], g[-1]) for g in groups]


# -- the same forms, computed faster (the matcher's first look at a word) --------------------
# word_forms above is the specification (and what monitor.rules.reference uses); the matcher
# computes the same set of forms with fewer steps: the proclitics are looked up by the word's
# first letter, and the suffixes, which depend only on the word's end (every base form ends
# like the word), are found once for all base forms instead of once per base form.
# tests/test_normalize.py checks both agree.
_PROCLITICS_BY_FIRST: dict[str, tuple[tuple[str, int, bool], ...]] = {}
for _p in sorted(STRIP_PROCLITICS, key=lambda p: (-len(p), p)):
    _PROCLITICS_BY_FIRST.setdefault(_p[0], ())
    _PROCLITICS_BY_FIRST[_p[0]] += ((_p, len(_p), _p in _LAM_ARTICLE),)
_PERSIAN_PROCLITICS_BY_FIRST: dict[str, tuple[tuple[str, int, bool], ...]] = {
    first: tuple(x for x in entries if x[0] in PERSIAN_PROCLITICS)
    for first, entries in _PROCLITICS_BY_FIRST.items()
    if any(x[0] in PERSIAN_PROCLITICS for x in entries)
}
# suffix -> (suffix, its length, only after ه, restores ة/ى before it) by the suffix's last letter
_SUFFIXES_BY_LAST: dict[str, tuple[tuple[str, int, bool, bool], ...]] = {}
for _s in ENCLITICS_N:
    _SUFFIXES_BY_LAST.setdefault(_s[-1], ())
    _SUFFIXES_BY_LAST[_s[-1]] += ((_s, len(_s), False, True),)
for _s in PERSIAN_SUFFIXES_N + PERSIAN_AFTER_HEH_N + PERSIAN_PERFECT:
    _SUFFIXES_BY_LAST.setdefault(_s[-1], ())
    # what must stand before the suffix: 0 nothing, 1 ه, 2 a participle's ده / ته
    _SUFFIXES_BY_LAST[_s[-1]] += ((_s, len(_s), 1 if _s in PERSIAN_AFTER_HEH_N else 2 if _s in PERSIAN_PERFECT else 0, False),)
_FOLD_TABLE = str.maketrans({"ة": "ه", "ى": "ي"})


def fast_word_forms(token: str, persian: bool = False) -> tuple[str, ...]:
    """:func:`word_forms` (the same forms; the first is the folded token, the others in no
    particular order), computed with fewer steps."""
    n = len(token)
    if n < MIN_STEM or not ("\u0600" <= token[0] <= "\u06ff"):
        return (token.translate(_FOLD_TABLE) if ("ة" in token or "ى" in token) else token,)
    folded = token.translate(_FOLD_TABLE) if ("ة" in token or "ى" in token) else token
    bases = [folded]
    pros = (_PERSIAN_PROCLITICS_BY_FIRST if persian else _PROCLITICS_BY_FIRST).get(token[0])
    if pros is not None:
        for p, k, lam_article in pros:
            if k < n and token.startswith(p):
                rest = folded[k:]
                if n - k >= MIN_STEM:
                    bases.append(rest)
                if n - k >= 2 and (lam_article or (p in _LAM and rest[0] == "ل")):
                    bases.append("ال" + rest)
    sufs = _SUFFIXES_BY_LAST.get(token[-1])
    if sufs is None and len(bases) == 1:
        return (folded,)
    out = set(bases)
    if sufs is not None:
        # a base form with the article added (لل -> ال) is one letter longer than the token
        longest = max(map(len, bases)) if len(bases) > 1 else n
        for s, k, after, enclitic in sufs:
            # every base form long enough for the suffix ends like the token (n > k then)
            if longest - k >= MIN_STEM and token.endswith(s) and (
                not after or token[-k - 1] == "ه" and (after == 1 or (n - k >= 3 and token[-k - 2] in "دت"))
            ):
                restore = None
                if enclitic:
                    before = token[-k - 1]
                    restore = "ه" if before == "ت" else "ي" if before == "ا" else None
                for b in bases:
                    if len(b) - k >= MIN_STEM:
                        stem = b[:-k]
                        out.add(stem)
                        if restore is not None:
                            out.add(stem[:-1] + restore)
    out.discard(folded)
    if not out:
        return (folded,)
    return (folded, *out)
