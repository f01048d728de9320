"""Loading rule files: the format, and every problem message with its file:line:col."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from monitor.rules import Matcher, RuleSetError, load_rules
from monitor.rules.loader import MAX_FILE_BYTES, format_problems

from rules_helpers import msg, write

GOOD = """
id: is-claim-ar
title: Islamic State claim of responsibility (Arabic)
description: >
  Amaq and Nashir style claims.
level: high
tags: [islamic-state, claim]
sources: ["telegram", "x:@IRIran_Military", "telegram:*amaq*"]
languages: [ar]
match:
  claim:
    any: ["تبنى", "أعلن مسؤوليته", "claimed responsibility", "claim*"]
  group:
    all: ["الدولة", "الإسلامية"]
  place:
    field: text
    any: ["kerman", "كرمان", "کرمان"]
  rx:
    regex: ['\\bwilayat\\s+\\w+']
  near_attack:
    near: {terms: ["attack", "killed"], within: 8}
  denial:
    any: ["ينفي", "denies", "denied"]
condition: claim and (group or place or rx or near_attack) and not denial
alert: [slack-ops, email-analysts]
throttle: 10m
author: analyst team
references: ["https://example.org/amaq"]
"""


def problems_of(tmp_path: Path, text: str | bytes, *, name: str = "rule.yml", known: set[str] | None = None) -> list[str]:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        write(path, text)
    with pytest.raises(RuleSetError) as info:
        load_rules([path], known_destinations=known)
    out = [str(p) for p in info.value.problems]
    assert str(info.value) == format_problems(info.value.problems)
    return [line.replace(str(path), "F") for line in out]


def test_full_rule_loads(tmp_path) -> None:
    path = write(tmp_path / "claim.yml", GOOD)
    rs = load_rules([path], known_destinations={"slack-ops", "email-analysts", "console"})
    (rule,) = rs.rules
    assert rule.id == "is-claim-ar" and rule.level == "high"
    assert rule.title.startswith("Islamic State") and rule.description.strip() == "Amaq and Nashir style claims."
    assert rule.tags == ("islamic-state", "claim")
    assert [str(s) for s in rule.sources] == ["telegram", "x:IRIran_Military", "telegram:*amaq*"]
    assert rule.languages == frozenset({"ar"})
    assert [s.name for s in rule.selections] == ["claim", "group", "place", "rx", "near_attack", "denial"]
    assert rule.selection("near_attack").within == 8
    assert rule.selection("rx").regexes == ("\\bwilayat\\s+\\w+",)
    assert rule.alert == ("slack-ops", "email-analysts") and rule.throttle == 600
    assert rule.hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert rule.file == str(path) and rule.line == 1
    assert rule.author == "analyst team" and rule.references == ("https://example.org/amaq",)


def test_defaults_and_scalar_shorthands(tmp_path) -> None:
    rs = load_rules([write(tmp_path / "r.yml", "id: r1\nmatch:\n  s: claimed responsibility\n")])
    rule = rs.rules[0]
    assert rule.title == "r1" and rule.level == "medium" and rule.alert == () and rule.throttle is None
    assert rule.sources == () and rule.languages is None and rule.enabled
    assert rule.kind == "watch"
    assert rule.selection("s").op == "any" and rule.selection("s").terms[0].raw == "claimed responsibility"


def test_kind_is_read_and_reaches_the_hit(tmp_path) -> None:
    from monitor.rules import Matcher
    from rules_helpers import msg

    rs = load_rules([write(tmp_path / "r.yml", "id: r1\nkind: Statement\nmatch:\n  s: [condemns]\n")])
    assert rs.rules[0].kind == "statement"
    (hit,) = Matcher(rs).match(msg("The ministry condemns the attack"))
    assert hit.kind == "statement" and hit.actors == ()


def test_terms_stay_strings_as_written(tmp_path) -> None:
    rs = load_rules([write(tmp_path / "r.yml", "id: r1\nmatch:\n  s: [no, 1991, on, 3.0]\n")])
    assert [t.raw for t in rs.rules[0].selection("s").terms] == ["no", "1991", "on", "3.0"]


def test_rules_list_and_directory_recursion(tmp_path) -> None:
    d = tmp_path / "rules"
    write(d / "b" / "list.yaml", """
        rules:
          - id: one
            match:
              s: [alpha]
          - id: two   # a comment
            match:
              s: [beta]
        """)
    write(d / "a.yml", "id: zero\nmatch:\n  s: [gamma]\n")
    write(d / ".hidden" / "x.yml", "not: a rule")
    write(d / ".skipped.yml", "not: a rule")
    write(d / "README.md", "# not a rule")
    rs = load_rules([d])
    assert [r.id for r in rs.rules] == ["zero", "one", "two"]
    assert rs.files == [str(d / "a.yml"), str(d / "b" / "list.yaml")]
    # rules under 'rules:' are hashed by their canonical YAML: comments and layout do not count
    h1 = rs.rules[2].hash
    write(d / "b" / "list.yaml", """
        rules:
          - {id: one, match: {s: [alpha]}}
          - {match: {s: [beta]}, id: two}
        """)
    rs2 = load_rules([d])
    assert rs2.rules[2].hash == h1
    assert rs2.rules[1].hash != h1
    # the same file given twice (and inside a given directory) is loaded once
    assert [r.id for r in load_rules([d, d / "a.yml"]).rules] == ["zero", "one", "two"]


# (yaml, expected "F:line:col: message" problems)
ERROR_CASES = [
    pytest.param("id: a\nmatch: [unclosed\n", ["F:3:1: YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence)"], id="yaml-syntax"),
    pytest.param("id: a\nconditon: s\nmatch:\n  s: [a]\n", ["F:2:1: unknown key 'conditon' (did you mean 'condition'?)"], id="unknown-key"),
    pytest.param("id: a\nfoo: 1\nmatch:\n  s: [a]\n", ["F:2:1: unknown key 'foo'"], id="unknown-key-no-suggestion"),
    pytest.param("title: x\nmatch:\n  s: [a]\n", ["F:1:1: missing required key 'id'"], id="missing-id"),
    pytest.param("id: a\nkind: claims\nmatch:\n  s: [a]\n",
                 ["F:2:7: unknown kind 'claims' (did you mean 'claim'?); use claim, statement, denial, report, watch"], id="bad-kind"),
    pytest.param("id: a\nkind: [claim]\nmatch:\n  s: [a]\n", ["F:2:7: 'kind' must be a string"], id="kind-not-string"),
    pytest.param("id: Bad Id\nmatch:\n  s: [a]\n", ["F:1:5: invalid id 'Bad Id': use lowercase letters, digits, '.', '_' and '-'"], id="bad-id"),
    pytest.param("id: [a]\nmatch:\n  s: [a]\n", ["F:1:5: 'id' must be a string"], id="id-not-string"),
    pytest.param("id: a\n", ["F:1:1: missing required key 'match' (named selections of terms)"], id="missing-match"),
    pytest.param("id: a\nmatch: [x]\n", ["F:2:8: 'match' must be a mapping of named selections"], id="match-not-mapping"),
    pytest.param("id: a\nmatch:\n  a: [x]\n  b: [y]\n", ["F:2:1: 'condition' is required when 'match' has more than one selection"], id="condition-required"),
    pytest.param("id: a\nmatch:\n  claim: [a]\n  group: [b]\ncondition: claim and gropu\n", ["F:5:22: condition: undefined selection 'gropu' (did you mean 'group'?)"], id="undefined-selection"),
    pytest.param("id: a\nmatch:\n  claim: [a]\n  group: [b]\ncondition: 'claim and and group'\n", ["F:5:23: condition: expected a selection name, 'not' or '(' but found 'and' after 'and'"], id="syntax-quoted"),
    pytest.param("id: a\nmatch:\n  claim: [a]\n  group: [b]\ncondition: claim group\n", ["F:5:18: condition: expected 'and', 'or' or ')' but found 'group'"], id="missing-operator"),
    pytest.param("id: a\nmatch:\n  claim: [a]\n  group: [b]\ncondition: (claim or group\n", ["F:5:12: condition: '(' is never closed"], id="unclosed-paren"),
    pytest.param("id: a\nmatch:\n  claim: [a]\n  group: [b]\ncondition: claim) or group\n", ["F:5:17: condition: unbalanced ')': no '(' before it"], id="unbalanced-paren"),
    pytest.param("id: a\nmatch:\n  claim: [a]\n  group: [b]\ncondition: claim &&\n  group\n", ["F:5:18: condition: unexpected '&&' (write 'and')"], id="c-operator"),
    pytest.param("id: a\nmatch:\n  claim: [a]\n  group: [b]\ncondition: |\n  claim and\n    (group or\n", ["F:7:14: condition: unexpected end after 'or'"], id="block-scalar-position"),
    pytest.param("id: a\nmatch:\n  claim: [a]\n  group: [b]\ncondition: ''\n", ["F:5:13: condition: is empty"], id="empty-condition"),
    pytest.param("id: a\nmatch:\n  claim: [a]\n  group: [b]\ncondition: 1 of x_*\n", ["F:5:12: condition: '1 of x_*' matches no selection"], id="quantifier-no-match"),
    pytest.param("id: a\nmatch:\n  claim: [a]\n  group: [b]\ncondition: 3 of them\n", ["F:5:12: condition: '3 of them' needs 3 selections but only 2 match"], id="quantifier-too-many"),
    pytest.param("id: a\nmatch:\n  claim: [a]\n  group: [b]\ncondition: claim of group\n", ["F:5:18: condition: unexpected 'of' (write e.g. '1 of claim_*' or 'all of them')"], id="stray-of"),
    pytest.param("id: a\nmatch:\n  s:\n    regex: ['(abc']\n", ["F:4:13: selection 's': invalid regex '(abc': missing ): (abc"], id="invalid-regex"),
    pytest.param("id: a\nmatch:\n  s:\n    regex: ['x{2000}{2000}']\n", ["F:4:13: selection 's': invalid regex 'x{2000}{2000}': invalid repetition size: {2000}"], id="regex-too-big"),
    pytest.param("id: a\nmatch:\n  s: ['']\n", ["F:3:7: selection 's': empty term"], id="empty-term"),
    pytest.param("id: a\nmatch:\n  s: ['  -- ']\n", ["F:3:7: selection 's': empty term: '  -- ' has no words (only punctuation or spaces)"], id="punctuation-term"),
    pytest.param("id: a\nmatch:\n  s: ['cl*im']\n", ["F:3:7: selection 's': term 'cl*im': '*' is only allowed at the start or end of a word"], id="inner-wildcard"),
    pytest.param("id: a\nmatch:\n  s: ['*']\n", ["F:3:7: selection 's': term '*': '*' needs a word"], id="bare-wildcard"),
    pytest.param("id: a\nmatch:\n  s: []\n", ["F:3:6: selection 's': 'any' is empty"], id="empty-list"),
    pytest.param("id: a\nmatch:\n  s:\n", ["F:3:3: selection 's' is empty"], id="empty-selection"),
    pytest.param("id: a\nlevel: hgih\nmatch:\n  s: [a]\n", ["F:2:8: unknown level 'hgih' (did you mean 'high'?); use info, low, medium, high, critical"], id="unknown-level"),
    pytest.param("id: a\nmatch:\n  s:\n    any: [a]\n    all: [b]\n", ["F:3:3: selection 's' needs exactly one of any, all, near, regex (found any, all)"], id="two-ops"),
    pytest.param("id: a\nmatch:\n  s:\n    field: text\n", ["F:3:3: selection 's' needs exactly one of any, all, near, regex"], id="no-op"),
    pytest.param("id: a\nmatch:\n  s:\n    anyy: [a]\n    any: [b]\n", ["F:4:5: selection 's': unknown key 'anyy' (did you mean 'any'?)"], id="unknown-selection-key"),
    pytest.param("id: a\nmatch:\n  s:\n    field: channle\n    any: [b]\n", ["F:4:12: selection 's': unknown field 'channle' (did you mean 'channel'?); use text, channel, author, forwarded_from, url"], id="unknown-field"),
    pytest.param("id: a\nmatch:\n  s:\n    near: {terms: [a, b]}\n", ["F:4:11: selection 's': 'near' needs 'within' (a number of words)"], id="near-no-within"),
    pytest.param("id: a\nmatch:\n  s:\n    near: {terms: [a, b], within: -2}\n", ["F:4:35: selection 's': 'within' must be a whole number of words from 1 to 1000"], id="near-bad-within"),
    pytest.param("id: a\nmatch:\n  s:\n    near: {terms: [a], within: 2}\n", ["F:4:19: selection 's': 'near' needs at least two terms"], id="near-one-term"),
    pytest.param("id: a\nmatch:\n  s:\n    near: {term: [a, b], within: 2}\n", ["F:4:11: selection 's': 'near' needs 'terms'", "F:4:12: selection 's': unknown key 'term' in 'near' (did you mean 'terms'?)"], id="near-unknown-key"),
    pytest.param("id: a\nmatch:\n  s:\n    near: {terms: [a, {b: c}], within: 2}\n", ["F:4:23: selection 's': each entry of 'near.terms' must be a term or a list of alternative terms"], id="near-bad-entry"),
    pytest.param("id: a\nmatch:\n  s:\n    near: {terms: [a, [b, '']], within: 2}\n", ["F:4:27: selection 's': empty term"], id="near-empty-alternative"),
    pytest.param("id: a\nmatch:\n  and: [x]\n", ["F:3:3: selection name 'and' is a reserved word of conditions"], id="reserved-name"),
    pytest.param("id: a\nmatch:\n  my-sel: [x]\n", ["F:3:3: invalid selection name 'my-sel': use letters, digits and '_' (not starting with a digit)"], id="bad-selection-name"),
    pytest.param("id: a\nthrottle: soon\nmatch:\n  s: [a]\n", ["F:2:11: throttle: not a duration: 'soon' (use e.g. 90s, 10m, 2h, 3d)"], id="bad-throttle"),
    pytest.param("id: a\nsources: [telegarm]\nmatch:\n  s: [a]\n", ["F:2:11: unknown platform 'telegarm' in source 'telegarm' (did you mean 'telegram'?); use telegram, x"], id="bad-platform"),
    pytest.param("id: a\nsources: ['x:']\nmatch:\n  s: [a]\n", ["F:2:11: source 'x:': nothing after ':' (write 'x' for the whole platform)"], id="empty-glob"),
    pytest.param("id: a\nlanguages: [arabic]\nmatch:\n  s: [a]\n", ["F:2:13: languages: 'arabic' is not a language code (use e.g. en, ar, fa)"], id="bad-language"),
    pytest.param("id: a\nenabled: maybe\nmatch:\n  s: [a]\n", ["F:2:10: 'enabled' must be true or false"], id="bad-enabled"),
    pytest.param("id: a\ntags: [[x]]\nmatch:\n  s: [a]\n", ["F:2:8: 'tags': each entry must be a string"], id="bad-tags"),
    pytest.param("id: a\nid: b\nmatch:\n  s: [a]\n", ["F:2:1: duplicate key 'id' (first at line 1)"], id="duplicate-key"),
    pytest.param("", ["F:1:1: empty rule file (expected a rule mapping with 'id', or 'rules:' with a list of rules)"], id="empty-file"),
    pytest.param("# only a comment\n", ["F:1:1: empty rule file (expected a rule mapping with 'id', or 'rules:' with a list of rules)"], id="comment-only"),
    pytest.param("- id: a\n", ["F:1:1: a rule file must be a mapping (one rule with 'id'), or have 'rules:' with a list of rules"], id="top-level-list"),
    pytest.param("id: a\nmatch:\n  s: [a]\n---\nid: b\nmatch:\n  s: [a]\n", ["F:5:1: several YAML documents in one file; list several rules under 'rules:' instead"], id="two-documents"),
    pytest.param("rules:\n  - id: a\n    match:\n      s: [a]\n  - just text\nlevel: high\n", ["F:5:5: each entry under 'rules' must be a rule mapping", "F:6:1: unknown key 'level' next to 'rules:' (put it inside each rule)"], id="rules-list-problems"),
    pytest.param("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n", ["F:7:8: document expands to more than 2,000,000 nodes (alias expansion)"], id="billion-laughs"),
    pytest.param("id: a\nmatch:\n  s: " + "[" * 70 + "]" * 70 + "\n", ["F:3:68: nesting deeper than 64 levels"], id="deep-yaml"),
    pytest.param("id: a\nmatch:\n  s: *nope\n", ["F:3:6: undefined alias '*nope'"], id="undefined-alias"),
]


@pytest.mark.parametrize(("text", "expected"), ERROR_CASES)
def test_problem_messages(tmp_path, text: str, expected: list[str]) -> None:
    assert problems_of(tmp_path, text) == expected


def test_unknown_alert_destination_only_with_config(tmp_path) -> None:
    text = "id: a\nalert: [slak, console]\nmatch:\n  s: [a]\n"
    assert problems_of(tmp_path, text, known={"slack", "console"}) == [
        "F:2:9: unknown alert destination 'slak' (did you mean 'slack'?); known: console, slack"
    ]
    assert load_rules([tmp_path / "rule.yml"]).rules[0].alert == ("slak", "console")


def test_non_utf8_file(tmp_path) -> None:
    assert problems_of(tmp_path, b"id: a\ntitle: caf\xe9\nmatch:\n  s: [a]\n") == [
        "F:2:11: not valid UTF-8 (byte 0xe9 at offset 16); save the file as UTF-8"
    ]


def test_utf16_file_is_rejected_clearly(tmp_path) -> None:
    data = "id: a\nmatch:\n  s: [a]\n".encode("utf-16")
    (problem,) = problems_of(tmp_path, data)
    assert problem.startswith("F:1:1: not valid UTF-8 (byte 0xff at offset 0)")


def test_utf8_bom_is_accepted(tmp_path) -> None:
    path = tmp_path / "bom.yml"
    path.write_bytes("id: a\nmatch:\n  s: [الدولة]\n".encode("utf-8-sig"))
    assert load_rules([path]).rules[0].id == "a"


def test_control_character_is_a_yaml_error(tmp_path) -> None:
    (problem,) = problems_of(tmp_path, "id: a\ntitle: x\x00y\nmatch:\n  s: [a]\n")
    assert problem == "F:2:9: YAML syntax error: unacceptable character #x0000"


def test_duplicate_id_names_both_files(tmp_path) -> None:
    d = tmp_path / "rules"
    write(d / "a.yml", "id: same\nmatch:\n  s: [a]\n")
    write(d / "b.yml", "title: t\nid: same\nmatch:\n  s: [b]\n")
    with pytest.raises(RuleSetError) as info:
        load_rules([d])
    assert [str(p) for p in info.value.problems] == [f"{d / 'b.yml'}:2:5: duplicate id 'same' (also defined at {d / 'a.yml'}:1:5)"]


def test_every_problem_of_every_file_is_reported(tmp_path) -> None:
    d = tmp_path / "rules"
    write(d / "a.yml", "id: a\nlevel: hgih\nmatch:\n  s: ['']\n")
    write(d / "b.yml", "id: b\nmatch:\n  s: [x]\n  t: [y]\ncondition: s and u\n")
    with pytest.raises(RuleSetError) as info:
        load_rules([d])
    assert [(Path(p.file).name, p.line) for p in info.value.problems] == [("a.yml", 2), ("a.yml", 4), ("b.yml", 5)]


def test_missing_path_and_empty_directory(tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(RuleSetError) as info:
        load_rules([tmp_path / "nope.yml", tmp_path / "empty"])
    assert sorted(str(p) for p in info.value.problems) == sorted([
        f"{tmp_path / 'nope.yml'}:1:1: no such file or directory",
        f"{tmp_path / 'empty'}:1:1: no rule files (*.yml, *.yaml) in this directory",
    ])


# -- hostile rule files: clear errors, bounded work --------------------------------------------
def test_ten_megabyte_term_list_is_refused_quickly(tmp_path) -> None:
    path = tmp_path / "huge.yml"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("id: huge\nmatch:\n  names:\n    any:\n")
        i = 0
        while fh.tell() < 10 * 1024 * 1024:
            fh.write(f"      - name{i} word{i}\n")
            i += 1
    (problem,) = problems_of(tmp_path, path.read_bytes(), name="huge.yml")
    assert problem == "F:1:1: rule file is 10.0 MiB; the limit is 5 MiB (split it, or keep long watch lists smaller)"


def test_pattern_budget_is_enforced_with_the_largest_selection_named(tmp_path) -> None:
    # one pattern per distinct term word (affixed forms are found on the message side): 32,000
    # terms of 16 distinct words are over the 500,000 budget
    words = ",".join(" ".join(f"w{i}{c}" for c in "abcdefghijklmnop") for i in range(32_000))
    text = f"id: big\nmatch:\n  names:\n    any: [{words}]\n"
    assert len(text.encode()) < MAX_FILE_BYTES
    (problem,) = problems_of(tmp_path, text)
    assert problem.startswith("F:3:3: the rule set needs 512,000 match patterns (at most 500,000; one per distinct term word)")
    assert "the largest is selection 'names' of rule 'big' with 512,000" in problem


def test_arabic_words_count_once_each_in_the_pattern_budget(tmp_path) -> None:
    # 25,000 Arabic words used to need ~23 patterns each (one per proclitic form): now one
    letters = "بتثجحخدذرزسشصضطظعغقمن"
    words = sorted({a + b + c + d for a in letters for b in letters for c in letters for d in "ثجح"})[:25_000]
    path = write(tmp_path / "big.yml", "id: big\nmatch:\n  names:\n    any:\n" + "".join(f"      - {w}\n" for w in words))
    rs = load_rules([path])
    assert rs.rules[0].selection("names").pattern_count == 25_000
    assert Matcher(rs).stats()["patterns"] == 25_000


def test_deeply_nested_condition_is_parsed_without_recursion(tmp_path) -> None:
    cond = "(" * 9000 + "a" + ")" * 9000
    path = write(tmp_path / "deep.yml", f"id: deep\nmatch:\n  a: [x]\ncondition: {cond}\n")
    assert load_rules([path]).rules[0].condition.names == frozenset({"a"})
    cond = "(" * 20_000 + "a" + ")" * 20_000
    (problem,) = problems_of(tmp_path, f"id: deep\nmatch:\n  a: [x]\ncondition: {cond}\n")
    assert problem == "F:4:12: condition: is 40,001 characters long (at most 20,000)"


def test_catastrophic_regex_compiles(tmp_path) -> None:
    path = write(tmp_path / "rx.yml", "id: rx\nmatch:\n  s:\n    regex: ['(a+)+$', '(x|x|x)*y']\n")
    assert load_rules([path]).rules[0].selection("s").regexes == ("(a+)+$", "(x|x|x)*y")


# -- warnings (rules check) ---------------------------------------------------------------------
from monitor.rules.lint import lint  # noqa: E402


def warnings_of(tmp_path, text: str) -> list[str]:
    path = write(tmp_path / "w.yml", text)
    return [str(w).replace(str(path), "F") for w in lint(load_rules([path]))]


def test_warns_on_a_very_common_word_that_decides_a_rule(tmp_path) -> None:
    assert warnings_of(tmp_path, "id: w\nmatch:\n  s: [attack, kerman]\n") == [
        "F:3:3: warning: rule 'w': selection 's' alone makes the rule true and its term 'attack' is a very common "
        "word: expect hits on a large share of all messages (combine it with another selection)"
    ]
    assert len(warnings_of(tmp_path, "id: w\nmatch:\n  s: [The]\n  t: [x]\ncondition: s or t\n")) == 1
    # combined with another selection, or inside a phrase: no warning
    assert warnings_of(tmp_path, "id: w\nmatch:\n  s: [attack]\n  t: [kerman]\ncondition: s and t\n") == []
    assert warnings_of(tmp_path, "id: w\nmatch:\n  s: [attack on the shrine, attack*]\n") == []


def test_warns_on_short_arabic_script_terms(tmp_path) -> None:
    assert warnings_of(tmp_path, "id: w\nmatch:\n  s: [لي, مسؤولية, لم يعلن]\n") == [
        "F:3:3: warning: selection 's': term 'لي' is an Arabic-script word of 2 letter(s): such words are "
        "frequent and match only as written (no affixed forms); use a phrase or a longer word"
    ]


@pytest.mark.parametrize(
    ("pattern", "warned"),
    [
        (r"\bولاية\s+\pL+", True),
        (r"ولاية\b", True),
        (r"(?:\bولاية)", True),
        (r"\b\w+stan", True),  # \w matches Arabic letters too
        (r"[ا-ي]+\b", True),
        (r"\bwilayat\s+\w+", False),
        (r"wilayat\b", False),
        (r"\\bولاية", False),  # an escaped backslash, not \b
        (r"ولاية\s+\pL+", False),
    ],
)
def test_warns_on_ascii_boundaries_next_to_arabic(tmp_path, pattern: str, warned: bool) -> None:
    quoted = pattern.replace("'", "''")
    got = warnings_of(tmp_path, f"id: w\nmatch:\n  s:\n    regex: ['{quoted}']\n")
    if not warned:
        assert got == []
        return
    assert got == [
        f"F:3:3: warning: selection 's': regex {pattern!r} has \\b or \\B next to Arabic-script letters, but "
        "RE2's boundaries only know ASCII letters: there \\b never holds and \\B always does (use a term, or "
        "(?:^|[^\\pL\\pN_]) and (?:$|[^\\pL\\pN_]) around the word)"
    ]


def test_shipped_pack_has_no_warnings() -> None:
    pack = Path(__file__).resolve().parent.parent / "rules"
    assert lint(load_rules([pack])) == []


def test_equal_terms_in_rules_written_apart_are_one_tuple(tmp_path) -> None:
    """Selections with the same terms in different rules share one tuple of the same Term
    objects (the compiler handles it once); the rules and their hits are as before."""
    from monitor.rules import Matcher

    d = tmp_path / "rules"
    for i in range(3):
        write(d / f"r{i}.yml", f"id: r{i}\nmatch:\n  a: [blast{i}]\n  b: [the, 'Kerman*']\ncondition: a and b\n")
    rs = load_rules([d])
    bs = [r.selection("b").terms for r in rs.rules]
    assert bs[0] is bs[1] is bs[2] and [t.raw for t in bs[0]] == ["the", "Kerman*"]
    assert rs.rules[0].selection("a").terms[0].raw == "blast0"
    m = Matcher(rs)
    assert [h.rule_id for h in m.match(msg("the blast1 in Kermanshah"))] == ["r1"]
    assert m.match(msg("blast1 alone")) == []
