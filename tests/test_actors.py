"""Actors (rules/actors.yml): loading, @actor references in terms and sources, hit tagging."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.rules import Matcher, RuleSetError, load_rules

from conftest import RULES
from rules_helpers import msg, write

ACTORS = """
actors:
  - id: houthis
    type: group
    title: Houthis (Ansar Allah)
    names:
      en: [Houthis, Houthi, Ansar Allah, Yahya Saree]
      ar: [الحوثيين, أنصار الله, يحيى سريع]
      fa: [حوثی, انصارالله]
    accounts: ["telegram:army21ye", "x:@army21ye"]
  - id: hamas
    type: group
    title: Hamas
    names:
      en: [Hamas]
      ar: [حماس]
  - id: al-qassam
    type: military
    title: Al-Qassam Brigades
    member_of: hamas
    names:
      en: [Qassam Brigades, al-Qassam]
      ar: [كتائب القسام]
  - id: iran
    type: government
    title: Iran (government)
    names:
      en: [Iran]
    accounts: ["x:khamenei_ir"]
  - id: khamenei
    type: person
    title: Ali Khamenei
    member_of: iran
    names:
      en: [Khamenei]
    accounts: ["telegram:khamenei_*"]
"""


def rules_dir(tmp_path: Path, rules: str, actors: str = ACTORS) -> Path:
    d = tmp_path / "rules"
    write(d / "actors.yml", actors)
    write(d / "rules.yml", rules)
    return d


def problems(tmp_path: Path, rules: str, actors: str = ACTORS) -> list[str]:
    d = rules_dir(tmp_path, rules, actors)
    with pytest.raises(RuleSetError) as info:
        load_rules([d])
    return [str(p).replace(str(d) + "/", "") for p in info.value.problems]


CLAIM = """
id: houthi-claim
kind: claim
level: high
match:
  group: ["@actor:houthis"]
  claim: [announce*, targeted]
condition: group and claim
"""


def test_actor_term_expands_to_every_name(tmp_path) -> None:
    m = Matcher(load_rules([rules_dir(tmp_path, CLAIM)]))
    (hit,) = m.match(msg("Yahya Saree announces that the Yemeni armed forces targeted a ship"))
    assert hit.kind == "claim" and hit.actors == ("houthis",)
    assert [mt.term for mt in hit.matches if mt.selection == "group"] == ["Yahya Saree"]
    assert m.match(msg("والحوثيين targeted"))[0].actors == ("houthis",)  # proclitic form, as rule terms
    assert m.match(msg("Houthis-controlled port targeted")) != []
    assert m.match(msg("The Houthiland resort announced a sale")) == []  # whole words only


def test_actor_in_a_near_group_is_one_group_of_alternatives(tmp_path) -> None:
    rule = """
id: near-claim
match:
  n:
    near:
      within: 3
      terms: ["@actor:hamas", [claims, claimed]]
"""
    m = Matcher(load_rules([rules_dir(tmp_path, rule)]))
    assert m.match(msg("Hamas said it claimed the rocket fire"))[0].actors == ("hamas",)
    assert m.match(msg("حماس claims"))
    assert m.match(msg("Hamas one two three four claimed")) == []
    # a member's names are not the parent's names (a term expands to that actor's names only)
    assert m.match(msg("al-Qassam claimed the rocket fire")) == []


def test_hits_are_tagged_with_named_and_posting_actors_and_parents(tmp_path) -> None:
    rule = "id: attack\nmatch:\n  s: [attack]\n"
    m = Matcher(load_rules([rules_dir(tmp_path, rule)]))
    # a member named: the parent is tagged too
    (hit,) = m.match(msg("Qassam Brigades attack near Gaza"))
    assert hit.actors == ("al-qassam", "hamas")
    # posted by an actor's account (exact username, case and @ ignored; or a glob)
    assert m.match(msg("attack", platform="x", channel="@Army21YE"))[0].actors == ("houthis",)
    assert m.match(msg("attack", platform="telegram", channel="khamenei_fa"))[0].actors == ("iran", "khamenei")
    # the same username on another platform is not that account
    assert m.match(msg("attack", platform="x", channel="khamenei_fa"))[0].actors == ()
    # one tag list shared by all hits of a message
    two = Matcher(load_rules([rules_dir(tmp_path, "rules:\n  - {id: a, match: {s: [attack]}}\n  - {id: b, match: {s: [Iran]}}\n")]))
    hits = two.match(msg("Iran: attack by Houthi forces"))
    assert [h.rule_id for h in hits] == ["a", "b"] and {h.actors for h in hits} == {("houthis", "iran")}
    # no hit, no tagging needed; actors_of works on its own
    assert two.match(msg("Houthi")) == [] and two.actors_of(msg("Houthi")) == ("houthis",)


def test_sources_actor_means_posted_by_its_or_its_members_accounts(tmp_path) -> None:
    rule = """
id: iran-leader-statement
kind: statement
level: high
sources: ["@actor:iran"]
match:
  threat: [Zionist regime, will pay the price]
"""
    rs = load_rules([rules_dir(tmp_path, rule)])
    assert sorted(str(s) for s in rs.rules[0].sources) == ["telegram:khamenei_*", "x:khamenei_ir"]
    m = Matcher(rs)
    text = "I warn the Zionist regime: you will pay the price for this crime"
    (hit,) = m.match(msg(text, platform="x", channel="khamenei_ir"))
    assert hit.kind == "statement" and hit.actors == ("iran",)
    (hit,) = m.match(msg(text, platform="telegram", channel="khamenei_fa"))
    assert hit.actors == ("iran", "khamenei")
    assert m.match(msg(text, platform="telegram", channel="some_news")) == []


def test_rule_hash_follows_the_actors_it_references(tmp_path) -> None:
    before = load_rules([rules_dir(tmp_path, CLAIM)]).rules[0].hash
    plain = load_rules([rules_dir(tmp_path, "id: p\nmatch:\n  s: [x]\n")]).rules[0].hash
    changed = ACTORS.replace("Yahya Saree]", "Yahya Saree, Abdul-Malik al-Houthi]")
    assert load_rules([rules_dir(tmp_path, CLAIM, changed)]).rules[0].hash != before
    assert load_rules([rules_dir(tmp_path, "id: p\nmatch:\n  s: [x]\n", changed)]).rules[0].hash == plain


@pytest.mark.parametrize(
    "rules, actors, expected",
    [
        pytest.param("id: r\nmatch:\n  s: ['@actor:houthi']\n", ACTORS,
                     ["rules.yml:3:7: selection 's': unknown actor 'houthi' (did you mean 'houthis'?)"], id="unknown-term"),
        pytest.param("id: r\nsources: ['@actor:irn']\nmatch:\n  s: [x]\n", ACTORS,
                     ["rules.yml:2:11: sources: unknown actor 'irn' (did you mean 'iran'?)"], id="unknown-source"),
        pytest.param("id: r\nsources: ['@actor:hamas']\nmatch:\n  s: [x]\n", ACTORS,
                     ["rules.yml:2:11: sources: actor 'hamas' has no accounts"], id="source-without-accounts"),
        pytest.param("id: r\nmatch:\n  s: ['@actors:type=group']\n", ACTORS,
                     ["rules.yml:3:7: selection 's': '@actors:type=group': an actor reference is written '@actor:ID' (e.g. '@actor:houthis')"],
                     id="bad-reference"),
        pytest.param("id: r\nkind: clam\nmatch:\n  s: [x]\n", ACTORS,
                     ["rules.yml:2:7: unknown kind 'clam' (did you mean 'claim'?); use claim, statement, denial, report, watch"], id="bad-kind"),
        pytest.param("id: r\nmatch:\n  s: [x]\n",
                     "actors:\n  - id: a\n    type: groop\n    names: {en: [A]}\n  - id: B c\n    type: group\n    names: {en: [b]}\n",
                     ["actors.yml:3:11: actor 'a': unknown type 'groop' (did you mean 'group'?); use group, government, military, media, person",
                      "actors.yml:5:9: invalid actor id 'B c': use lowercase letters, digits and '-'"], id="type-and-id"),
        pytest.param("id: r\nmatch:\n  s: [x]\n",
                     "actors:\n  - id: a\n    type: group\n    member_of: hamass\n    names: {en: [A]}\n  - id: hamas\n    type: group\n    names: [h]\n  - id: c\n    type: group\n    namez: [h]\n",
                     ["actors.yml:4:16: actor 'a': member_of: unknown actor 'hamass' (did you mean 'hamas'?)",
                      "actors.yml:11:5: actor: unknown key 'namez' (did you mean 'names'?)"], id="member-and-key"),
        pytest.param("id: r\nmatch:\n  s: [x]\n",
                     "actors:\n  - {id: a, type: group, member_of: b, names: [A]}\n  - {id: b, type: group, member_of: a, names: [B]}\n",
                     ["actors.yml:2:37: actor 'a': member_of makes a cycle (a -> b -> a)",
                      "actors.yml:3:37: actor 'b': member_of makes a cycle (b -> a -> b)"], id="cycle"),
        pytest.param("id: r\nmatch:\n  s: [x]\n",
                     "actors:\n  - {id: a, type: group, names: [A], accounts: [telegram]}\n  - {id: a, type: group, names: ['*']}\n  - {id: c, type: media}\n",
                     ["actors.yml:2:49: actor 'a': account 'telegram' names no channel (write platform:username, e.g. telegram:army21ye)",
                      "actors.yml:3:34: actor 'a': names: term '*': '*' needs a word",
                      "actors.yml:4:5: actor 'c': needs 'names' or 'accounts'"], id="accounts-names"),
        pytest.param("id: r\nmatch:\n  s: [x]\n",
                     "actors:\n  - {id: a, type: group, names: [A]}\n  - {id: a, type: group, names: [B]}\n",
                     ["actors.yml:3:5: duplicate actor id 'a' (also defined at actors.yml:2:5)"], id="duplicate"),
    ],
)
def test_actor_problems(tmp_path, rules: str, actors: str, expected: list[str]) -> None:
    assert problems(tmp_path, rules, actors) == expected


def test_reference_without_an_actor_file_says_so(tmp_path) -> None:
    path = write(tmp_path / "r.yml", "id: r\nmatch:\n  s: ['@actor:houthis']\n")
    with pytest.raises(RuleSetError) as info:
        load_rules([path])
    assert "unknown actor 'houthis' (no actor file loaded: give the rules folder, or its actors.yml too)" in str(info.value)


def test_shipped_actors_load_and_tag(tmp_path) -> None:
    rs = load_rules([RULES])
    ids = {a.id for a in rs.actors}
    assert {"islamic-state", "houthis", "iran", "irgc", "centcom"} <= ids
    assert all(r.kind in ("claim", "statement", "denial", "report", "watch") for r in rs.rules)
    m = Matcher(rs)
    hits = m.match(msg("Islamic State claimed responsibility for the twin bombings in Kerman, its Amaq news agency said.",
                       platform="x", lang="en"))
    claim = next(h for h in hits if h.rule_id == "claim-en")
    assert claim.kind == "claim" and claim.actors == ("islamic-state",)


@pytest.mark.parametrize("prepare_process", [False, True], ids=["in-process", "prepare-process"])
def test_import_stores_kind_and_actors(tmp_path, prepare_process: bool) -> None:
    """Both import write paths (in process, and rows prepared in a forked process) store the
    hits' kind and actors in the archive."""
    import sqlite3

    from monitor.archive import Archive
    from monitor.ingest import import_file

    from conftest import SAMPLES

    rules = load_rules([RULES])
    with Archive.open(tmp_path / "a.db") as archive:
        import_file(archive, SAMPLES / "x" / "tweets.jsonl", matcher=Matcher(rules), prepare_process=prepare_process)
    rows = sqlite3.connect(tmp_path / "a.db").execute("SELECT rule_id, kind, actors FROM hits ORDER BY id").fetchall()
    by_rule = {}
    for rule_id, kind, actors in rows:
        by_rule.setdefault(rule_id, set()).add((kind, actors))
    assert {k for k, _a in by_rule["claim-en"]} == {"claim"}
    assert any(a and "islamic-state" in a for _k, a in by_rule["claim-en"])
    assert {k for r in by_rule if r.startswith("place-") for k, _a in by_rule[r]} == {"watch"}


def test_posting_actors_are_remembered_per_channel_without_mixing_channels(tmp_path) -> None:
    rule = "id: attack\nmatch:\n  s: [attack]\n"
    m = Matcher(load_rules([rules_dir(tmp_path, rule)]))
    cases = [
        (dict(platform="x", channel="@Army21YE"), ("houthis",)),
        (dict(platform="x", channel="khamenei_fa"), ()),  # same name, other platform
        (dict(platform="telegram", channel="khamenei_fa"), ("iran", "khamenei")),
        (dict(platform="telegram", channel="some_news"), ()),
    ]
    for _ in range(3):  # repeated and interleaved: the remembered answers stay per channel
        for kw, expected in cases:
            assert m.match(msg("attack", **kw))[0].actors == expected, kw
