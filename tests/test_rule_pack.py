"""The shipped rule pack (rules/): every rule has realistic positive and negative examples."""

from __future__ import annotations

from collections import defaultdict

import pytest

from monitor.rules import Matcher, load_rules
from monitor.rules.reference import NaiveMatcher

from conftest import RULES
from rules_helpers import msg

TG = dict(platform="telegram")
X = dict(platform="x")

# (rule id, message text, message fields, expected)
EXAMPLES = [
    # -- Islamic State claims, Arabic ---------------------------------------------------------
    ("is-claim-ar", "وكالة أعماق: مصدر أمني لأعماق: هجوم لمقاتلي الدولة الإسلامية يستهدف تجمعاً للمرتدين في مدينة كرمان جنوب إيران", dict(channel="amaq_agency", **TG), True),
    ("is-claim-ar", "بفضل الله تعالى، تمكّن جنود الخلافة من تفجير حزامين ناسفين وسط تجمع كبير للمشركين الرافضة قرب هلاك قائدهم قاسم سليماني في مدينة كرمان، ولله الحمد.", dict(channel="nashir_news", **TG), True),
    ("is-claim-ar", "#عاجل | تنظيم داعش يتبنّى الهجوم على مسجد في مسقط، وفق بيان نشرته وكالة أعماق", dict(channel="alarabiya_brk", **TG), True),
    ("is-claim-ar", "ولاية غرب إفريقية تعلن مسؤوليتها عن مقتل 12 جندياً نيجيرياً في هجوم على ثكنة في ولاية بورنو", dict(**X, channel="sahel_watch", lang="ar"), True),
    ("is-claim-ar", "#ولاية_خراسان | بفضل الله تعالى، استهدف جنود الخلافة حافلة تقل عناصر من طالبان المرتدة في كابل", dict(**TG), True),
    ("is-claim-ar", "أعلن تنظيم الدولة الإسلامية مسؤوليته عن الهجوم الانتحاري الذي استهدف مسجداً في مسقط", dict(**TG), True),
    ("is-claim-ar", "أعلنت وزارة الداخلية أن الدولة الإسلامية كانت تخطط لهجمات، وحمّلت المسؤولية للأجهزة الأمنية السابقة", dict(**TG), False),
    ("is-claim-ar", "الحشد الشعبي ينفي تبني الهجوم الذي نسب إلى الدولة الإسلامية في ديالى", dict(**TG), False),
    ("is-claim-ar", "لم تتبن أي جهة حتى الآن الهجوم الذي قالت مصادر إنه يحمل بصمات تنظيم الدولة", dict(**TG), False),
    ("is-claim-ar", "تبنى مجلس النواب قانون الموازنة الجديد بعد جلسة طويلة", dict(**TG), False),
    ("is-claim-ar", "القوات العراقية تعتقل خلية تابعة لتنظيم الدولة في كركوك", dict(**TG), False),
    # -- Islamic State claims, English --------------------------------------------------------
    ("is-claim-en", "Islamic State claimed responsibility for the twin bombings in Kerman, its Amaq news agency said on Thursday.", dict(**X, channel="Reuters", lang="en"), True),
    ("is-claim-en", "BREAKING: ISKP claims responsibility for the suicide attack at Kabul airport", dict(**X, lang="en"), True),
    ("is-claim-en", "Amaq: By the grace of Allah, soldiers of the caliphate targeted a gathering of apostates in Mosul", dict(**TG), True),
    ("is-claim-en", "No group has claimed the attack, though officials suspect Islamic State", dict(**X, lang="en"), False),
    ("is-claim-en", "Taliban spokesman denies involvement and says the Islamic State claimed responsibility", dict(**X, lang="en"), False),
    ("is-claim-en", "A ransomware gang claimed responsibility for the cyberattack on the hospital", dict(**X, lang="en"), False),
    ("is-claim-en", "The crisis in the region deepens as aid is cut", dict(**X, lang="en"), False),
    # -- Islamic State official releases -------------------------------------------------------
    ("is-statement-ar", "مؤسسة الفرقان تنشر كلمة صوتية للمتحدث الرسمي للدولة الإسلامية الشيخ أبي حذيفة الأنصاري بعنوان: وقاتلوهم حتى لا تكون فتنة", dict(**TG), True),
    ("is-statement-ar", "صحيفة النبأ - العدد 425 - الخميس 23 جمادى الآخرة", dict(channel="naba_weekly", **TG), True),
    ("is-statement-ar", "بيان وزارة الداخلية حول الوضع الأمني في المحافظة", dict(**TG), False),
    ("is-statement-ar", "ناشطون: الإصدار المنسوب لمؤسسة الفرقان مفبرك", dict(**TG), False),
    ("is-statement-en", "Al-Furqan Media releases audio message from IS spokesman Abu Hudhayfah al-Ansari", dict(**X, lang="en"), True),
    ("is-statement-en", "New issue of al-Naba weekly newsletter (No. 425) released via Nashir News", dict(**TG), True),
    ("is-statement-en", "The ministry issued a statement condemning the attack", dict(**X, lang="en"), False),
    ("is-statement-en", "Analysts say the purported al-Furqan video is fabricated", dict(**X, lang="en"), False),
    # -- Iranian official statements -----------------------------------------------------------
    ("iran-official-blame-fa", "سخنگوی وزارت امور خارجه جمهوری اسلامی ایران حمله تروریستی کرمان را به شدت محکوم کرد و رژیم صهیونیستی و آمریکا را مسئول این جنایت دانست.", dict(**X, channel="IRIMFA", lang="fa"), True),
    ("iran-official-blame-fa", "بیانیه سپاه پاسداران: عاملان این جنایت تروریستی مزدوران رژیم صهیونیستی هستند", dict(**TG, channel="sepahnews"), True),
    ("iran-official-blame-fa", "رئیس‌جمهور: آمریکا و رژیم صهیونیستی مسئول مستقیم این جنایت هستند", dict(**TG), True),
    ("iran-official-blame-fa", "سخنگوی وزارت خارجه ادعای آمریکا درباره مسئولیت ایران در این حمله تروریستی را تکذیب کرد", dict(**TG), False),
    ("iran-official-blame-fa", "قیمت دلار آمریکا در بازار تهران امروز افزایش یافت", dict(**TG), False),
    ("iran-official-blame-en", "Iran's Foreign Ministry spokesman Nasser Kanaani condemned the terrorist attack in Kerman and said the Zionist regime and the United States bear responsibility.", dict(**X, channel="PressTV", lang="en"), True),
    ("iran-official-blame-en", "IRGC statement: the criminal Zionist regime will pay for its crime in Damascus", dict(**X, channel="IRIran_Military", lang="en"), True),
    ("iran-official-blame-en", "IRGC rejects U.S. claims that it was responsible for the attack", dict(**X, lang="en"), False),
    ("iran-official-blame-en", "Israel condemned the terrorist attack in Jerusalem", dict(**X, lang="en"), False),
    # -- attack-place watch lists --------------------------------------------------------------
    ("place-iran-attack", "Two explosions hit a ceremony near the tomb of Qasem Soleimani in Kerman, killing at least 84 people", dict(**X, lang="en"), True),
    ("place-iran-attack", "انفجار تروریستی در حرم شاهچراغ شیراز", dict(**TG), True),
    ("place-iran-attack", "هجوم مسلح على مرقد شاه جراغ في مدينة شيراز الإيرانية", dict(**TG), True),
    ("place-iran-attack", "Kerman province reports a record pistachio harvest this year", dict(**X, lang="en"), False),
    ("place-iran-attack", "A gas explosion was reported in Tabriz on Monday", dict(**X, lang="en"), False),
    ("place-iraq-syria-attack", "Two soldiers killed in an IED attack near Tikrit, Salahuddin province", dict(**X, lang="en"), True),
    ("place-iraq-syria-attack", "مقتل ثلاثة جنود بتفجير عبوة ناسفة في البادية السورية", dict(**TG), True),
    ("place-iraq-syria-attack", "Baghdad hosts the Arab League summit next month", dict(**X, lang="en"), False),
    ("place-afpak-attack", "Suicide bomber kills 5 at a mosque in Peshawar", dict(**X, lang="en"), True),
    ("place-afpak-attack", "انفجار در شهر کابل دست‌کم ۱۰ کشته برجای گذاشت", dict(**TG), True),
    ("place-afpak-attack", "Kabul: the Taliban government announced new school hours", dict(**X, lang="en"), False),
    ("site-mention", "Thousands of pilgrims visited the Shah Cheragh shrine in Shiraz", dict(**X, lang="en"), True),
    ("site-mention", "آژانس بین‌المللی انرژی اتمی از تأسیسات نطنز بازدید کرد", dict(**TG), True),
    ("site-mention", "Shiraz hosts its annual poetry festival", dict(**X, lang="en"), False),
]


@pytest.fixture(scope="module")
def pack():
    rs = load_rules([RULES])
    return rs, Matcher(rs), NaiveMatcher(rs)


@pytest.mark.parametrize(("rule_id", "text", "fields", "expected"), EXAMPLES)
def test_shipped_rule_examples(pack, rule_id: str, text: str, fields: dict, expected: bool) -> None:
    _rs, matcher, naive = pack
    m = msg(text, **fields)
    hits = {h.rule_id: h for h in matcher.match(m)}
    assert (rule_id in hits) is expected, sorted(hits)
    assert (rule_id in naive.match_ids(m)) is expected
    if expected:
        hit = hits[rule_id]
        assert hit.matches and all(0 <= x.start < x.end <= len(text) for x in hit.matches)


def test_every_shipped_rule_has_positive_and_negative_examples(pack) -> None:
    rs, _m, _n = pack
    seen: dict[str, set[bool]] = defaultdict(set)
    for rule_id, _text, _fields, expected in EXAMPLES:
        seen[rule_id].add(expected)
    assert {r.id for r in rs.rules} == set(seen)
    assert all(v == {True, False} for v in seen.values()), seen


def test_shipped_rules_are_documented_and_routable(pack) -> None:
    rs, matcher, _n = pack
    assert matcher.stats()["unanchored_rules"] == 0
    for rule in rs.rules:
        assert rule.title and rule.tags, rule.id
        assert rule.alert == ()  # shipped rules use the config's default destinations
        assert rule.level in ("info", "low", "medium", "high", "critical")
    levels = {r.id: r.level for r in rs.rules}
    assert all(levels[i] in ("info", "low") for i in levels if i.startswith(("place-", "site-")))
    assert all(levels[i] == "high" for i in levels if "claim" in i)
