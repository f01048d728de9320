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
    # -- claims, English -------------------------------------------------------------------------
    ("claim-en", "Islamic State claimed responsibility for the twin bombings in Kerman, its Amaq news agency said on Thursday.", dict(**X, channel="Reuters", lang="en"), True),
    ("claim-en", "BREAKING: ISKP claims responsibility for the suicide attack at Kabul airport", dict(**X, lang="en"), True),
    ("claim-en", "The Pakistani Taliban (TTP) said it carried out the attack on the police station in Bannu.", dict(**X, lang="en"), True),
    ("claim-en", "Al-Shabaab has claimed an attack on a hotel in Mogadishu, the group's radio station said.", dict(**X, lang="en"), True),
    ("claim-en", "No group has claimed the attack, though officials suspect Islamic State", dict(**X, lang="en"), False),
    ("claim-en", "Hamas denied any involvement and said it did not claim responsibility for the shooting", dict(**X, lang="en"), False),
    ("claim-en", "A ransomware gang claimed responsibility for the cyberattack on the hospital", dict(**X, lang="en"), False),
    ("claim-en", "The company said it takes its corporate social responsibility seriously", dict(**X, lang="en"), False),
    ("claim-en", "Real Madrid claimed the title after a late goal against Barcelona", dict(**X, lang="en"), False),
    ("claim-formula-en", "The Islamic Resistance in Iraq targeted the Ain al-Asad base with two drones on Friday, the group said.", dict(**X, lang="en"), True),
    ("claim-formula-en", "Saree: the naval forces carried out a qualitative military operation targeting the ship MSC Sarah V", dict(**TG), True),
    ("claim-formula-en", "The IDF said it struck Hezbollah targets in southern Lebanon overnight", dict(**X, lang="en"), False),
    ("claim-formula-en", "Hezbollah held a rally in Beirut to mark the anniversary of the 2006 war", dict(**X, lang="en"), False),
    ("claim-account-en", "Our fighters targeted a gathering of enemy soldiers east of Khan Younis with mortar shells", dict(**TG, channel="qassambrigades"), True),
    ("claim-account-en", "Our fighters targeted a gathering of enemy soldiers east of Khan Younis with mortar shells", dict(**TG, channel="some_news"), False),
    ("claim-account-en", "Eid greetings to our people and our nation", dict(**TG, channel="qassambrigades"), False),
    ("claim-en", "The movement added that its fighters stormed the base after killing the guards at the gate.", dict(**X, lang="en"), True),
    ("claim-en", "The company said that its members will receive the dividend next month.", dict(**X, lang="en"), False),
    # -- denials and reports, English -----------------------------------------------------------
    ("denial-en", "Tehran denied any involvement in the attack and said the accusations were baseless", dict(**X, lang="en"), True),
    ("denial-en", "The Taliban said they had nothing to do with the bombing in Peshawar", dict(**X, lang="en"), True),
    ("denial-en", "The government approved a new budget for the health ministry", dict(**X, lang="en"), False),
    ("report-en", "Although ISIS claimed responsibility for the Kerman bombings, officials in Tehran insist Israel was behind them", dict(**X, lang="en"), True),
    ("report-en", "The TTP has claimed responsibility for several deadly attacks in the past, including the 2014 school massacre", dict(**X, lang="en"), True),
    ("report-en", "Islamic State claimed responsibility for Thursday's bombing in a statement on Telegram", dict(**X, lang="en"), False),
    ("report-en", "The BLA, which claimed responsibility for a bombing in Quetta last March, has stepped up its attacks.", dict(**X, lang="en"), True),
    ("claim-en", "The BLA, which claimed responsibility for a bombing in Quetta last March, has stepped up its attacks.", dict(**X, lang="en"), False),
    # -- claims, Arabic ---------------------------------------------------------------------------
    ("claim-ar", "#عاجل | تنظيم داعش يتبنّى الهجوم على مسجد في مسقط، وفق بيان نشرته وكالة أعماق", dict(channel="alarabiya_brk", **TG), True),
    ("claim-ar", "أعلن تنظيم الدولة الإسلامية مسؤوليته عن الهجوم الانتحاري الذي استهدف مسجداً في مسقط", dict(**TG), True),
    ("claim-ar", "ولاية غرب إفريقية تعلن مسؤوليتها عن مقتل 12 جندياً نيجيرياً في هجوم على ثكنة في ولاية بورنو", dict(**X, channel="sahel_watch", lang="ar"), True),
    ("claim-ar", "الحشد الشعبي ينفي تبني الهجوم الذي نسب إلى الدولة الإسلامية في ديالى", dict(**TG), False),
    ("claim-ar", "لم تتبن أي جهة حتى الآن الهجوم الذي قالت مصادر إنه يحمل بصمات تنظيم الدولة", dict(**TG), False),
    ("claim-ar", "تبنى مجلس النواب قانون الموازنة الجديد بعد جلسة طويلة", dict(**TG), False),
    ("claim-formula-ar", "بفضل الله تعالى، تمكّن جنود الخلافة من تفجير حزامين ناسفين وسط تجمع للمرتدين في مدينة كرمان", dict(channel="nashir_news", **TG), True),
    ("claim-formula-ar", "استهدف مجاهدو المقاومة الإسلامية تجمعاً لجنود العدو الإسرائيلي في موقع المالكية بالأسلحة الصاروخية", dict(**TG), True),
    ("claim-formula-ar", "نفذت القوات البحرية عملية عسكرية نوعية استهدفت السفينة في البحر الأحمر بعدد من الصواريخ", dict(**TG), True),
    ("claim-formula-ar", "أعلن الجيش الإسرائيلي أن غارة إسرائيلية استهدفت قياديا في حزب الله جنوب لبنان", dict(**TG), False),
    ("claim-formula-ar", "حزب الله يشارك في المشاورات النيابية لتشكيل الحكومة", dict(**TG), False),
    ("claim-account-ar", "استهدفنا سفينة تجارية في خليج عدن بعدد من الصواريخ البحرية", dict(**TG, channel="army21ye"), True),
    ("claim-account-ar", "استهدفنا سفينة تجارية في خليج عدن بعدد من الصواريخ البحرية", dict(**TG, channel="news_today"), False),
    ("claim-account-ar", "تهنئة بمناسبة عيد الفطر المبارك لشعبنا اليمني", dict(**TG, channel="army21ye"), False),
    ("denial-ar", "حركة حماس تنفي أي علاقة لها بالهجوم وتصفه بأنه عار عن الصحة", dict(**TG), True),
    ("denial-ar", "نفت الحكومة مسؤوليتها عن التفجير", dict(**TG), True),
    ("denial-ar", "أعلنت وزارة الصحة عن افتتاح مستشفى جديد", dict(**TG), False),
    ("denial-ar", "وقال المتحدث باسم الحركة: لا يد لنا في هذا التفجير ونرفض الزج باسمنا", dict(**TG), True),
    ("denial-ar", "ورفضت الجماعة في بيان الاتهامات التي وجهتها لها الحكومة بالوقوف وراء الهجوم", dict(**TG), True),
    ("denial-ar", "وأعربت الوزارة عن رفضها القاطع للهجوم على المدنيين", dict(**TG), False),
    ("report-ar", "رغم تبني تنظيم داعش الهجوم، تصر طهران على أن إسرائيل تقف وراءه", dict(**TG), True),
    ("report-ar", "تبنى تنظيم داعش الهجوم في بيان نشرته وكالة أعماق مساء الخميس", dict(**TG), False),
    ("claim-ar", "ولم تعلن أي جماعة مسؤوليتها عن التفجير حتى الآن، فيما تشتبه السلطات بتنظيم داعش", dict(**TG), False),
    ("claim-ar", "وكانت حركة الشباب أعلنت في بيان مسؤوليتها عن الهجوم على الفندق الشهر الماضي", dict(**TG), False),
    ("report-ar", "وكانت حركة الشباب أعلنت في بيان مسؤوليتها عن الهجوم على الفندق الشهر الماضي", dict(**TG), True),
    ("claim-ar", "ونشأت الجماعة قبل عقد، وتبنت الكثير من الهجمات على قوات الأمن في الإقليم", dict(**TG), False),
    ("report-ar", "ونشأت الجماعة قبل عقد، وتبنت الكثير من الهجمات على قوات الأمن في الإقليم", dict(**TG), True),
    ("claim-ar", "وتبنت جماعة تطلق على نفسها اسم كتائب الأحرار الهجوم على نقطة التفتيش", dict(**TG), True),
    ("claim-ar", "وأعلن مسلحون مسؤوليتهم عن تفجير خط أنابيب الغاز في الإقليم", dict(**TG), True),
    ("claim-ar", "حملت الحكومة الحركة مسؤولية الهجوم على مركز الشرطة", dict(**TG), False),
    ("claim-ar", "وتبنت الحركة سياسة جديدة لتوسيع قاعدتها الشعبية", dict(**TG), False),
    ("claim-ar", "وفي غالبية الأحيان يتبنى التنظيم الهجمات بعد أيام من وقوعها", dict(**TG), False),
    ("report-ar", "وفي غالبية الأحيان يتبنى التنظيم الهجمات بعد أيام من وقوعها", dict(**TG), True),
    ("claim-ar", "الانفجار الذي أعلنت جماعة مسلحة مسؤوليتها عنه أثار مخاوف من تصعيد جديد", dict(**TG), False),
    ("report-ar", "الانفجار الذي أعلنت جماعة مسلحة مسؤوليتها عنه أثار مخاوف من تصعيد جديد", dict(**TG), True),
    ("claim-formula-ar", "أكدت جماعة جيش العدل في بيان أنها نفذت هجوما على مركز لقوات الأمن في سراوان", dict(**TG), True),
    ("claim-formula-ar", "قام المجاهدون بتوجيه ضربة لمقر تابع لوزارة الدفاع في صنعاء", dict(**TG), True),
    ("claim-formula-ar", "قالت وزارة الدفاع في بيان إن المجاهدين استهدفوا نقطة تفتيش وإن قواتها صدت الهجوم", dict(**TG), False),
    # the group must be the one speaking; accused or spoken about by someone else it is not a claim
    ("claim-formula-ar", "ووفقاً لبيان للمقاومة فإن الجماعة استهدفت قاعدة عسكرية بطائرة مسيرة", dict(**TG), True),
    ("claim-formula-ar", "وأكد العميد يحيى سريع أن القوات المسلحة اليمنية نفذت عملية عسكرية نوعية استهدفت سفينة في البحر الأحمر", dict(**TG), True),
    ("claim-formula-ar", "وذكرت مصادر محلية أن مسلحين يشتبه بانتمائهم لحركة الشباب شنوا هجوما على قاعدة للجيش", dict(**TG), False),
    ("claim-formula-ar", "اتهم جهاز الأمن التركي حزب العمال الكردستاني بتنفيذ التفجير في أنقرة", dict(**TG), False),
    ("claim-formula-ar", "وقال نتنياهو إن حماس نفذت هجوما وحشيا على المدنيين في الجنوب", dict(**TG), False),
    ("claim-formula-ar", "وقال وزير الدفاع في مؤتمر صحفي إن مسلحي حركة الشباب هاجموا القاعدة فجرا", dict(**TG), False),
    # the statement quoted without its speaker, in the attacker's own words
    ("claim-formula-ar", "وأكد البيان أن الصاروخ أصاب هدفه بدقة ولم تنجح الدفاعات الجوية في التصدي له", dict(**TG), True),
    ("claim-formula-ar", "وقالت في بيان إنها استهدفت تجمعا لجنود العدو بقذائف الهاون وحققت إصابات مؤكدة", dict(**TG), True),
    ("claim-formula-ar", "وأكد بيان الحرس الثوري أن الصواريخ أصابت أهدافها بدقة في الأراضي المحتلة", dict(**TG), False),
    ("claim-formula-ar", "وجاء في البيان أن الأمطار الغزيرة أصابت عددا من المنازل بأضرار", dict(**TG), False),
    ("claim-formula-ar", "وأدانت الخارجية في بيان استهداف قوات الاحتلال للمدنيين وقالت إنها تحمل العدو الإسرائيلي المسؤولية", dict(**TG), False),
    ("claim-formula-ar", "«استهدفنا تجمعا لجنود العدو شرق المدينة بقذائف الهاون وحققنا إصابات مؤكدة»", dict(**TG), True),
    ("claim-formula-ar", "«تمكنا من تحقيق أهداف الموسم الزراعي رغم الجفاف الذي أصاب المزارعين»", dict(**TG), False),
    ("claim-ar", "أعلنت سرايا أولياء الدم استهداف رتل للدعم اللوجستي بعبوة ناسفة على الطريق الدولي", dict(**TG), True),
    ("claim-formula-ar", "وقالت الأمم المتحدة في بيان إن الاستيطان في الأراضي المحتلة يقوض حل الدولتين", dict(**TG), False),
    ("claim-formula-ar", "الإعلام الحربي: مجاهدو المقاومة الإسلامية يستهدفون تجمعا لجنود العدو في محيط ثكنة برانيت", dict(**TG), True),
    ("statement-strike-ar", "أكد الجيش الأردني أنه أسقط طائرة مسيرة مجهولة اخترقت الأجواء الأردنية", dict(**TG), True),
    ("statement-threat-ar", "وتعهد الرئيس الأمريكي بالرد على الهجوم الذي قتل ثلاثة جنود أمريكيين", dict(**TG), True),
    ("statement-threat-ar", "ودفع الهجوم الهند للرد بشن غارات على الأراضي الباكستانية، وفق محللين", dict(**TG), False),
    ("claim-formula-ar", "وأفاد بيان للحركة بأن مقاتليها هاجموا موقعا للجيش وقتلوا عددا من الجنود", dict(**TG), True),
    ("statement-comment-ar", "وشدد المتحدث باسم الخارجية الصينية على رفض بلاده لاستهداف المدنيين في غزة", dict(**TG), True),
    ("statement-comment-ar", "وقال وزير الاقتصاد إن الحكومة تواصل استهداف التضخم عبر رفع أسعار الفائدة", dict(**TG), False),
    ("statement-comment-ar", "وقال البنتاغون إن الحوثيين أطلقوا صاروخين مضادين للسفن على مدمرة أمريكية في البحر الأحمر", dict(**TG), True),
    ("statement-comment-ar", "وقال الحوثيون إنهم أطلقوا صاروخين على مدمرة أمريكية في البحر الأحمر", dict(**TG), False),
    ("statement-comment-ar", "وقالت وكالة الفضاء الحكومية إن الصاروخ أطلق قمرا صناعيا إلى المدار", dict(**TG), False),
    ("statement-comment-ar", "أكد البيان الختامي للقمة العربية ضرورة مكافحة الإرهاب وتجفيف منابع تمويله", dict(**TG), False),
    ("claim-formula-ar", "وجاء في البيان أن الشركة حققت أهدافها المالية للعام الجاري بنجاح", dict(**TG), False),
    ("claim-formula-ar", "وقالت الحركة في بيان إنها ستشارك في الانتخابات البلدية المقبلة بقوائم مستقلة", dict(**TG), False),
    ("claim-formula-ar", "أعلنت حماس أن مقاتليها قصفوا تل أبيب برشقة صاروخية، فيما قال الجيش الإسرائيلي إن الدفاعات اعترضت معظمها", dict(**TG), True),
    ("claim-formula-ar", "قالت حركة الشباب إنها قتلت 20 جنديا في الهجوم، بينما قال الجيش الصومالي إنه صد المهاجمين", dict(**TG), True),
    ("claim-formula-ar", "وقال الجيش الإسرائيلي إن حزب الله أطلق نحو 40 صاروخا على الجليل وإن طائراته ردت بقصف المنصات", dict(**TG), False),
    ("claim-formula-ar", "وأوضح المتحدث العسكري للقوات المسلحة اليمنية العميد يحيى سريع في بيان أن القوة الصاروخية استهدفت سفينة نفطية في البحر الأحمر", dict(**TG), True),
    ("claim-formula-ar", "وقال المتحدث العسكري إن القوات استهدفت مواقع لعناصر حركة الشباب وقتلت 12 منهم", dict(**TG), False),
    # -- claims, Persian --------------------------------------------------------------------------
    ("claim-fa", "گروه تروریستی داعش با انتشار بیانیه‌ای مسئولیت حمله تروریستی کرمان را بر عهده گرفت.", dict(**TG), True),
    ("claim-fa", "جیش الظلم مسئولیت حمله به پاسگاه مرزی راسک را پذیرفت", dict(**TG), True),
    ("claim-fa", "تا کنون هیچ گروهی مسئولیت این حمله را بر عهده نگرفته است", dict(**TG), False),
    ("claim-fa", "مسئولیت اجتماعی شرکت‌ها در قبال محیط زیست بر عهده مدیران است", dict(**TG), False),
    ("claim-formula-fa", "حزب‌الله لبنان در بیانیه‌ای اعلام کرد رزمندگانش تجمع سربازان صهیونیست را با موشک هدف قرار دادند", dict(**TG), True),
    ("claim-formula-fa", "یحیی سریع گفت نیروی دریایی ما یک کشتی آمریکایی در خلیج عدن را هدف قرار داد", dict(**TG), True),
    ("claim-formula-fa", "ارتش اسرائیل اعلام کرد مواضع حزب‌الله در جنوب لبنان را هدف قرار داد", dict(**TG), False),
    ("claim-formula-fa", "حزب‌الله لبنان در انتخابات پارلمانی شرکت کرد", dict(**TG), False),
    ("denial-fa", "سخنگوی وزارت خارجه هرگونه دخالت ایران در این حمله را تکذیب کرد", dict(**TG), True),
    ("denial-fa", "قیمت طلا در بازار تهران کاهش یافت", dict(**TG), False),
    ("report-fa", "با وجود اینکه داعش مسئولیت حمله را بر عهده گرفته بود، مقامات اسرائیل را مقصر دانستند", dict(**TG), True),
    ("report-fa", "داعش مسئولیت حمله تروریستی شیراز را بر عهده گرفت", dict(**TG), False),
    ("claim-formula-fa", "پ ک ک در بیانیه‌ای گفت اعضایش مواد منفجره را در زیر ساختمان پایگاه جاسازی کرده بودند", dict(**TG), True),
    ("claim-formula-fa", "پلیس اعلام کرد مواد منفجره را در یک خودروی رهاشده کشف کرد", dict(**TG), False),
    ("claim-formula-ar", "أعلنت سرايا القدس أنها وضعت مستوطنات غلاف غزة تحت النار برشقة صاروخية", dict(**TG), True),
    ("claim-formula-ar", "وقال الجيش الإسرائيلي إن سرايا القدس وضعت مستوطنات غلاف غزة تحت النار", dict(**TG), False),
    ("claim-formula-fa", "این حزب در بیانیه‌ای اعلام کرد یک تانک مرکاوا را با موشک هدف قرار داده است", dict(**TG), True),
    ("claim-formula-fa", "نیروهای یمنی اعلام کردند یک پهپاد آمریکایی را بر فراز الحدیده سرنگون کرده‌اند", dict(**TG), True),
    ("denial-fa", "طالبان گفتند ارتباطی با این انفجار ندارند", dict(**TG), True),
    ("denial-fa", "این شرکت هیچ شعبه‌ای در تهران ندارد", dict(**TG), False),
    # -- official statements, English ----------------------------------------------------------
    ("statement-blame-en", "Iran's Foreign Ministry spokesman said the Zionist regime and the United States bear responsibility for the terrorist attack in Kerman.", dict(**X, channel="PressTV", lang="en"), True),
    ("statement-blame-en", "Pakistan's Foreign Office held Afghanistan-based groups responsible for the attack in Bajaur", dict(**X, lang="en"), True),
    ("statement-blame-en", "IRGC rejects U.S. claims that it was behind the attack", dict(**X, lang="en"), False),
    ("statement-blame-en", "The minister is responsible for the new school curriculum", dict(**X, lang="en"), False),
    ("statement-threat-en", "IRGC statement: the criminal Zionist regime will pay the price for its crime in Damascus", dict(**X, channel="IRIran_Military", lang="en"), True),
    ("statement-threat-en", "The White House said the attack on U.S. troops will not go unanswered", dict(**X, lang="en"), True),
    ("statement-threat-en", "The government warned that consumers will pay the price for higher fuel taxes", dict(**X, lang="en"), False),
    ("statement-condemn-en", "The UN Secretary-General condemned the terrorist attack in Moscow in the strongest terms", dict(**X, lang="en"), True),
    ("statement-condemn-en", "Qatar's foreign ministry strongly condemns the bombing of a mosque in Peshawar", dict(**X, lang="en"), True),
    ("statement-condemn-en", "The president offered condolences to the families of the flood victims", dict(**X, lang="en"), False),
    ("statement-strike-en", "CENTCOM forces conducted self-defense strikes against two Houthi anti-ship missiles prepared to launch", dict(**X, channel="CENTCOM", lang="en"), True),
    ("statement-strike-en", "ISPR: security forces conducted an intelligence-based operation in North Waziristan; six terrorists were killed", dict(**X, lang="en"), True),
    ("statement-strike-en", "The army concluded a joint exercise with Turkish special forces near Quetta", dict(**X, lang="en"), False),
    ("statement-strike-en", "The IDF appointed a new commander for the Northern Command", dict(**X, lang="en"), False),
    ("statement-account-en", "I warn the criminal Zionist regime: you will pay the price for this crime.", dict(**X, channel="khamenei_ir", lang="en"), True),
    ("statement-account-en", "I warn the criminal Zionist regime: you will pay the price for this crime.", dict(**X, channel="random_user", lang="en"), False),
    ("statement-account-en", "Congratulations to the Iranian nation on the anniversary of the revolution.", dict(**X, channel="khamenei_ir", lang="en"), False),
    ("statement-threat-en", "\u201cThose who planned this cowardly attack will pay a heavy price,\u201d he said on Sunday.", dict(**X, lang="en"), True),
    ("statement-threat-en", "Hamas said Israel will pay a heavy price for the attack on the camp.", dict(**X, lang="en"), False),
    ("statement-threat-en", "\u201cThe United States reserves the right to respond against those militias,\u201d the defense secretary told his Iraqi counterpart.", dict(**X, lang="en"), True),
    ("statement-blame-en", "The terrorists were sponsored from across the border, the statement said, holding Kabul responsible for the attack.", dict(**X, lang="en"), True),
    ("statement-blame-en", "Hamas said the occupation bears full responsibility for the attack on the hospital.", dict(**X, lang="en"), False),
    ("statement-condemn-en", "\u201cI condemn in the strongest terms this cowardly terrorist attack on worshippers,\u201d he wrote.", dict(**X, lang="en"), True),
    ("statement-condemn-en", "\u201cI condemn the referee's decision,\u201d the coach said after the match.", dict(**X, lang="en"), False),
    ("statement-strike-en", "Five terrorists were killed in a clearance operation near the border, the statement said.", dict(**X, lang="en"), True),
    ("statement-strike-en", "The statement said a training course for police officers would begin on Monday.", dict(**X, lang="en"), False),
    ("statement-threat-en", "\u201cYou will pay a heavy price,\u201d the prime minister warned Hezbollah.", dict(**X, lang="en"), True),
    # -- official statements, Arabic -----------------------------------------------------------
    ("statement-blame-ar", "وزارة الخارجية الإيرانية: الكيان الصهيوني يتحمل المسؤولية الكاملة عن الهجوم الإرهابي في كرمان", dict(**TG), True),
    ("statement-blame-ar", "الحكومة تحمل المسؤولية لشركة الكهرباء عن انقطاع التيار", dict(**TG), False),
    ("statement-blame-ar", "وحمّل وزير الداخلية الباكستاني حركة طالبان الأفغانية مسؤولية إيواء المسلحين الذين نفذوا الهجوم", dict(**TG), True),
    ("claim-formula-ar", "وحمّل وزير الداخلية الباكستاني حركة طالبان الأفغانية مسؤولية إيواء المسلحين الذين نفذوا الهجوم", dict(**TG), False),
    ("statement-strike-ar", "وقال المتحدث العسكري باسم قوات صنعاء العميد يحيى سريع إن القوات البحرية استهدفت سفينة إسرائيلية بعدد من الصواريخ", dict(**TG), False),
    ("claim-formula-ar", "وقال المتحدث العسكري باسم قوات صنعاء العميد يحيى سريع إن القوات البحرية استهدفت سفينة إسرائيلية بعدد من الصواريخ", dict(**TG), True),
    ("statement-threat-ar", "المتحدث باسم الجيش: العدوان الصهيوني لن يمر دون عقاب وسيدفع الثمن غاليا", dict(**TG), True),
    ("statement-threat-ar", "وزير الاقتصاد يحذر من ارتفاع الأسعار في الأسواق", dict(**TG), False),
    ("statement-condemn-ar", "تدين وزارة الخارجية السعودية بأشد العبارات الهجوم الإرهابي الذي استهدف مسجدا في مسقط", dict(**TG), True),
    ("statement-condemn-ar", "الرئيس يستقبل وفدا من رجال الأعمال لبحث التعاون الاقتصادي", dict(**TG), False),
    ("statement-strike-ar", "الجيش الإسرائيلي: شنت طائراتنا غارات على مواقع لحزب الله في جنوب لبنان", dict(**TG), True),
    ("statement-strike-ar", "القوات المسلحة تختتم مناورات عسكرية مشتركة استهدفت رفع الجاهزية", dict(**TG), False),
    ("statement-account-ar", "ندين الهجوم الإرهابي الجبان على المصلين", dict(**X, channel="MofaQatar_AR", lang="ar"), True),
    ("statement-account-ar", "ندين الهجوم الإرهابي الجبان على المصلين", dict(**X, channel="someone", lang="ar"), False),
    ("statement-account-ar", "تهنئة بمناسبة اليوم الوطني", dict(**X, channel="MofaQatar_AR", lang="ar"), False),
    ("statement-threat-ar", "وأضاف في تغريدة: \"أطمئن شعبنا بأن من يقفون وراء هذا الهجوم الجبان لن يفلتوا من العقاب\"", dict(**TG), True),
    ("statement-threat-ar", "وقالت حركة حماس في بيان إن الاحتلال سيدفع الثمن على جرائمه في غزة", dict(**TG), False),
    ("statement-comment-ar", "وجاء في البيان أن التفجير الإرهابي استهدف مدنيين أبرياء في سوق شعبي", dict(**TG), True),
    ("statement-comment-ar", "وجاء في البيان أن المهرجان الثقافي سيقام في الصيف المقبل", dict(**TG), False),
    ("statement-condemn-ar", "وأضافت في بيان: \"نعرب عن إدانتنا لهذا العمل الإرهابي الذي استهدف المصلين\"", dict(**TG), True),
    ("statement-condemn-ar", "وصف رئيس الوزراء الهجوم على الحافلة بأنه عمل إرهابي جبان", dict(**TG), True),
    ("statement-condemn-ar", "نعرب عن تضامننا مع المتضررين من الفيضانات في الإقليم", dict(**TG), False),
    ("statement-strike-ar", "وجاء في البيان أن القوات تمكنت من تحييد عشرة إرهابيين في عملية أمنية بريف المحافظة", dict(**TG), True),
    ("statement-strike-ar", "وجاء في البيان أن الحكومة ستعقد مؤتمرا حول مكافحة الإرهاب الشهر المقبل", dict(**TG), False),
    ("statement-threat-ar", "وقال وزير الدفاع إن حزب الله سيدفع ثمنا باهظا إذا واصل هجماته على الشمال", dict(**TG), True),
    # a group speaking under its generic noun, or in its own stance words, is not an official statement
    ("statement-strike-ar", "وقالت الجماعة في بيان إن مقاتليها استهدفوا مواقع للجيش وقتلوا عددا من عناصر الأمن", dict(**TG), False),
    ("statement-strike-ar", "قام المجاهدون بتوجيه ضربة إلى مقر لقوات الجيش وقتل عدد من عناصره", dict(**TG), False),
    ("statement-strike-ar", "أعلنت الجبهة مسؤوليتها عن الهجوم الذي استهدف مواقع الجيش قرب الحدود", dict(**TG), False),
    ("statement-strike-ar", "وقال الجيش في بيان إن قواته استهدفت مواقع المسلحين وقتلت عددا من عناصر التنظيم", dict(**TG), True),
    ("statement-comment-ar", "وقال المتحدث باسم الحركة إن الهجوم جاء ردا على اعتقال قادتها", dict(**TG), False),
    ("statement-comment-ar", "وقال مسؤول في حركة الشباب لرويترز إن الهجوم على القاعدة العسكرية أسفر عن مقتل جنود", dict(**TG), False),
    ("statement-comment-ar", "وقال مسؤول في وزارة الدفاع لرويترز إن الهجوم على القاعدة العسكرية أسفر عن مقتل جنود", dict(**TG), True),
    ("statement-comment-ar", "وقال مندوب إيران لدى الأمم المتحدة إن الهجوم على القنصلية انتهاك صارخ للقانون الدولي", dict(**TG), True),
    ("statement-comment-ar", "وقال مندوب المبيعات إن الشركة ستطلق هاتفا جديدا بعد الهجوم الإعلاني للمنافسين", dict(**TG), False),
    ("statement-condemn-ar", "وأضاف البيان: ندين الهجوم الإرهابي الذي نفذته عناصر مرتبطة بالتنظيم", dict(**TG), True),
    ("statement-condemn-ar", "وقالت الجماعة في بيان إنها تدين الهجوم وتعتبره عملا إجراميا", dict(**TG), False),
    ("statement-comment-ar", "ورفضت الخارجية في بيان الاتهامات الباطلة بشأن الهجوم على السفارة", dict(**TG), False),
    ("statement-comment-ar", "وأضاف البيان أن التفجير يكشف زيف ادعاءات الجماعات المتطرفة", dict(**TG), True),
    ("statement-comment-ar", "وقال المتحدث باسم الداخلية إن المهاجمين عناصر إرهابية تسللت عبر الحدود", dict(**TG), True),
    ("statement-comment-ar", "وقال المتحدث باسم الداخلية إن المتهمين أحيلوا إلى المحكمة بتهمة الاحتيال المالي", dict(**TG), False),
    ("statement-comment-ar", "وقال المتحدث باسم الخارجية إن هذه الادعاءات افتراءات لا تمت بصلة إلى الحقيقة بشأن الهجوم", dict(**TG), False),
    ("statement-comment-ar", "متحدثة الخارجية: الإرهابيون الذين أطلقوا النار على المدنيين سيحاسبون", dict(**TG), True),
    ("statement-condemn-ar", "وأعربت وزارة الخارجية عن خالص تعازيها لأسر ضحايا الهجوم الإرهابي الذي استهدف حافلة للزوار", dict(**TG), True),
    ("statement-condemn-ar", "وأعربت وزارة الخارجية عن خالص تعازيها لأسر ضحايا حادث تحطم الطائرة", dict(**TG), False),
    ("statement-threat-ar", "وقال وزير الداخلية إن مرتكبي الاعتداء سيتحملون العواقب الوخيمة ولن نقف مكتوفي الأيدي", dict(**TG), True),
    ("statement-threat-ar", "وحذر وزير المالية من عواقب وخيمة لارتفاع الأسعار على الأسواق", dict(**TG), False),
    ("statement-threat-ar", "وقال وزير الدفاع إن بلاده تحتفظ بحق الدفاع عن النفس بعد الهجوم على القاعدة", dict(**TG), True),
    ("statement-threat-ar", "وقال وزير الصحة إن الوزارة ستتخذ كافة الإجراءات لمواجهة موجة الإنفلونزا", dict(**TG), False),
    ("statement-threat-ar", "وقال وزير النقل إن الوزارة ستتخذ كافة الإجراءات بعد الحادث المروري على الطريق السريع", dict(**TG), False),
    ("statement-strike-ar", "وقالت وزارة الداخلية إن قوات الأمن اعتقلت عناصر من المعارضة خلال مداهمة في العاصمة", dict(**TG), False),
    ("claim-ar", "وقال الوزير إن الحكومة تتحمل مسؤوليتها عن حماية المدنيين من هجمات الجماعات المسلحة", dict(**TG), False),
    ("claim-ar", "أعلن رئيس الحركة مسؤوليته عن الخسارة في الانتخابات وقدم استقالته", dict(**TG), False),
    ("claim-formula-ar", "وقالت وزارة الصحة اللبنانية في بيان إن غارة للعدو الإسرائيلي أدت إلى إصابة ثلاثة مدنيين", dict(**TG), False),
    ("claim-formula-ar", "وقالت مصادر محلية إن مسلحين يعتقد أنهم من حركة الشباب هاجموا قرية في جنوب الصومال", dict(**TG), False),
    ("statement-comment-ar", "أعلنت وزارة الصحة ارتفاع عدد الشهداء جراء العدوان إلى أكثر من ثلاثين ألفا", dict(**TG), False),
    ("statement-strike-ar", "وقال شهود عيان إن طائرات حربية قصفت مواقع في ريف إدلب الجنوبي", dict(**TG), False),
    ("claim-ar", "أعلن فصيل مسلح يطلق على نفسه سرايا أولياء الدم مسؤوليته عن القصف الصاروخي على مطار أربيل", dict(**TG), True),
    ("claim-formula-ar", "قصفت كتائب المدفعية في الجيش مواقع المسلحين في ريف حماة", dict(**TG), False),
    ("claim-formula-ar", "وذكرت وكالة أعماق التابعة للتنظيم أن الهجوم أسفر عن مقتل 20 عنصرا من الميليشيات", dict(**TG), True),
    ("claim-formula-ar", "وبثت وكالة أعماق صورا قالت إنها لمنفذ الهجوم", dict(**TG), True),
    ("claim-formula-ar", "ونشرت وكالة أعماق بيانا عن الهجوم تبين لاحقا أنه مفبرك", dict(**TG), False),
    ("claim-formula-ar", "قائد الشرطة: ضبط كميات من المخدرات في عملية نوعية على الحدود", dict(**TG), False),
    ("statement-threat-ar", "السفارة الأمريكية تحذر رعاياها من السفر إلى المناطق الحدودية بسبب الهجمات", dict(**TG), False),
    ("statement-comment-ar", "وأعلنت الخارجية الأمريكية في بيان إدراج الجماعة على قائمة المنظمات الإرهابية الأجنبية", dict(**TG), False),
    ("statement-threat-ar", "وقال رئيس الوزراء إن المسؤولين عن هذا الهجوم الجبان سينالون جزاءهم العادل", dict(**TG), True),
    ("statement-threat-ar", "وقال المدرب إن اللاعبين سينالون جزاءهم إذا خسروا المباراة", dict(**TG), False),
    ("statement-blame-ar", "وقال رئيس الوزراء إن المسؤولين عن هذا الهجوم الجبان سينالون جزاءهم العادل", dict(**TG), True),
    ("statement-strike-ar", "وأعلنت وزارة الداخلية في بيان أن الأجهزة الأمنية أحبطت مخططا إرهابيا وألقت القبض على ثلاثة إرهابيين", dict(**TG), True),
    ("statement-strike-ar", "وأعلنت وزارة الداخلية في بيان أن الأجهزة الأمنية ألقت القبض على عصابة لسرقة السيارات", dict(**TG), False),
    # -- official statements, Persian ----------------------------------------------------------
    ("statement-blame-fa", "سخنگوی وزارت امور خارجه رژیم صهیونیستی و آمریکا را مسئول این جنایت تروریستی دانست.", dict(**X, channel="IRIMFA", lang="fa"), True),
    ("statement-blame-fa", "سخنگوی وزارت خارجه ادعای آمریکا درباره دست داشتن ایران در این حمله تروریستی را تکذیب کرد", dict(**TG), False),
    ("statement-threat-fa", "رهبر انقلاب: عاملان این جنایت بهای سنگینی خواهند پرداخت و با پاسخ قاطع روبرو می‌شوند", dict(**TG), True),
    ("statement-threat-fa", "وزیر اقتصاد هشدار داد که تورم بازار را تهدید می‌کند", dict(**TG), False),
    ("statement-condemn-fa", "سخنگوی وزارت امور خارجه حمله تروریستی در کابل را به شدت محکوم کرد", dict(**TG), True),
    ("statement-condemn-fa", "وزیر آموزش و پرورش از مدارس تهران بازدید کرد", dict(**TG), False),
    ("statement-strike-fa", "روابط عمومی ارتش پاکستان اعلام کرد در این عملیات ۷ تروریست به هلاکت رسیدند", dict(**TG), True),
    ("statement-strike-fa", "رزمایش مشترک نیروی دریایی ارتش در دریای عمان آغاز شد", dict(**TG), False),
    ("statement-account-fa", "رژیم صهیونیستی و آمریکای جنایتکار بدانند که بهای سنگینی خواهند پرداخت", dict(**TG, channel="khamenei_ir"), True),
    ("statement-account-fa", "رژیم صهیونیستی و آمریکای جنایتکار بدانند که بهای سنگینی خواهند پرداخت", dict(**TG, channel="random_fa"), False),
    ("statement-account-fa", "عید نوروز بر ملت ایران مبارک باد", dict(**TG, channel="khamenei_ir"), False),
    # -- media-wing releases ---------------------------------------------------------------------
    ("group-release", "مؤسسة الفرقان تنشر كلمة صوتية للمتحدث الرسمي للدولة الإسلامية الشيخ أبي حذيفة الأنصاري", dict(**TG), True),
    ("group-release", "Al-Furqan Media releases audio message from IS spokesman Abu Hudhayfah al-Ansari", dict(**X, lang="en"), True),
    ("group-release", "Analysts say the purported al-Furqan video is fabricated", dict(**X, lang="en"), False),
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
    # -- more English constructions -------------------------------------------------------------
    ("claim-en", "“We have targeted Sderot and settlements in the Gaza envelope with rocket barrages,” the al-Quds Brigades said in a statement.", dict(**X, lang="en"), True),
    ("claim-en", "The Islamic State has claimed that one of its soldiers carried out the attack in Las Vegas.", dict(**X, lang="en"), True),
    ("claim-en", "The Taliban claimed the responsibility for the massive blast that rocked Kabul on Friday evening.", dict(**X, lang="en"), True),
    ("claim-en", "Claims were made by JNIM on the Telegram channel of its az-Zallaqa media foundation.", dict(**X, lang="en"), True),
    ("claim-en", "“We struck Hamas targets across Gaza overnight,” the IDF said.", dict(**X, lang="en"), False),
    ("claim-en", "The blast claimed the lives of 12 people; Hamas officials called it a massacre.", dict(**X, lang="en"), False),
    ("claim-en", "Al Qaeda released a video that the group claims was narrated by its leader.", dict(**X, lang="en"), False),
    ("claim-formula-en", "The group targeted the military site with a ballistic missile, Saree said in a televised address.", dict(**X, lang="en"), True),
    ("claim-formula-en", "The Islamic Resistance in Iraq issued a statement on Thursday, announcing that resistance fighters attacked a US base in Syria with drones.", dict(**X, lang="en"), True),
    ("claim-formula-en", "The Islamic Resistance in Iraq has repeatedly attacked US bases in Iraq and Syria so far.", dict(**X, lang="en"), False),
    ("statement-comment-en", "Pakistan's defence minister said the suicide bombing should serve as a warning about the growing terror threat.", dict(**X, lang="en"), True),
    ("statement-comment-en", "The Pentagon said in a statement that the attack against US personnel took place at a base near Hasakah.", dict(**X, lang="en"), True),
    ("statement-comment-en", "The defence ministry said the exercise would simulate an attack on the coast.", dict(**X, lang="en"), False),
    ("statement-comment-en", "Islamic State claimed the attack on the shrine, the interior ministry said.", dict(**X, lang="en"), False),
    ("statement-comment-en", "Hamas said in a statement that the attack on the tank killed three soldiers.", dict(**X, lang="en"), False),
    ("statement-threat-en", "“Those behind this atrocious act will be taken before justice. They will not be saved!” the Indian prime minister wrote.", dict(**X, lang="en"), True),
    ("group-release", "AQAP said in a statement released by al-Malahem that its members attacked a checkpoint in Abyan.", dict(**X, lang="en"), False),
    # -- more Arabic and Persian constructions -----------------------------------------------------
    ("claim-formula-ar", "وقالت المقاومة الإسلامية في العراق في بيان إن مجاهديها هاجموا بالطيران المسير هدفا حيويا في الجولان المحتل", dict(**TG), True),
    ("claim-formula-ar", "وأضافت حماس في بيان: استهدفنا دبابة ميركافا بقذيفة الياسين شرق خان يونس", dict(**TG), True),
    ("claim-formula-ar", "وقال الجيش في بيان إن قواتنا استهدفت مواقع لحماس في خان يونس", dict(**TG), False),
    ("statement-threat-ar", "وتوعد المرشد الإيراني علي خامنئي برد قاسٍ على تفجيري كرمان", dict(**TG), True),
    ("statement-condemn-ar", "وأشار المتحدث في بيان رسمي إلى أن الولايات المتحدة تندد بشدة بالهجمات التي شنتها الميليشيات", dict(**TG), True),
    ("statement-comment-ar", "وقال المتحدث باسم وزارة الداخلية في بيان إن الهجوم الإرهابي استهدف نقطة أمنية في شمال سيناء", dict(**TG), True),
    ("statement-comment-ar", "وقالت حركة حماس في بيان إن الهجوم جاء ردا على جرائم الاحتلال", dict(**TG), False),
    ("statement-comment-ar", "أعلن تنظيم داعش مسؤوليته عن الهجوم بحسب ما قال مسؤول أمني", dict(**TG), False),
    ("claim-fa", "پکک مسؤلیت انفجارهای اخیر را برعهده گرفت", dict(**TG), True),
    ("claim-fa", "هنوز هیچ گروهی مسئولیت این حمله را بر عهده نگرفته است", dict(**TG), False),
    ("claim-formula-fa", "گروه جیش العدل با صدور بیانیه‌ای مدعی شده که یک خودروی حامل مواد منفجره را در داخل پاسگاه منفجر کرده است", dict(**TG), True),
    ("claim-formula-fa", "دانیل هاگاری سخنگوی ارتش اسرائیل گفت جنگنده‌ها مواضع حزب‌الله را هدف قرار دادند", dict(**TG), False),
    ("statement-strike-fa", "ارتش پاکستان در بیانیه‌ای اعلام کرد در جریان دو عملیات ۱۱ عنصر وابسته به تحریک طالبان کشته شده‌اند", dict(**TG), True),
    ("statement-threat-fa", "وی افزود: عاملان این حمله تروریستی بهای سنگینی خواهند پرداخت", dict(**TG), True),
    ("statement-threat-fa", "حماس در بیانیه‌ای گفت رژیم صهیونیستی بهای سنگینی برای این جنایت خواهد پرداخت", dict(**TG), False),
    ("statement-condemn-fa", "ما این اقدام تروریستی علیه زائران بی‌گناه را به شدت محکوم می‌کنیم", dict(**TG), True),
    ("statement-condemn-fa", "ما این تصمیم داور را محکوم می‌کنیم و به آن اعتراض داریم", dict(**TG), False),
    ("statement-strike-fa", "بنا به بیانیه این وزارتخانه، پنج تروریست در عملیات خنثی‌سازی کشته شدند", dict(**TG), True),
    ("statement-strike-fa", "بیانیه این وزارتخانه درباره دوره آموزش نیروهای پلیس منتشر شد", dict(**TG), False),
    ("statement-comment-fa", "معاون سخنگوی وزارت دفاع آمریکا خاطرنشان کرد که این حملات ۳۲ بار در عراق رخ داده است", dict(**TG), True),
    ("statement-comment-fa", "سخنگوی طالبان اعلام کرد که این گروه هیچ ارتباطی با حملات دو روز پیش در کابل ندارد", dict(**TG), False),
    ("statement-comment-fa", "وزارت دفاع اعلام کرد رزمایش حمله به اهداف فرضی فردا برگزار می‌شود", dict(**TG), False),
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
    for rule in rs.rules:
        # claims alert HIGH; denials, reports of old claims and watch lists never reach alert level
        expected = {"claim": ("high",), "statement": ("medium", "high"), "denial": ("low",),
                    "report": ("low",), "watch": ("info", "low")}[rule.kind]
        assert rule.level in expected, (rule.id, rule.kind, rule.level)
