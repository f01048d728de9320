"""The line-by-line parse of plain rule files (``yaml_nodes._parse_simple``) against libyaml's
events: the same nodes (kind, line, column, value, style, size), the same duplicate-key issues;
every other text is left to libyaml (None)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from monitor.rules import yaml_nodes
from monitor.rules.yaml_nodes import Node, YamlSyntaxError, _parse_simple, parse_yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))


def _dump(n: Node) -> tuple:
    if n.kind == "scalar":
        return ("s", n.line, n.col, n.value, n.style, n.size)
    if n.kind == "seq":
        return ("q", n.line, n.col, n.style, n.size, [_dump(c) for c in n.value])  # type: ignore[union-attr]
    return ("m", n.line, n.col, n.style, n.size, [(_dump(k), _dump(v)) for k, v in n.value])  # type: ignore[union-attr]


def _libyaml(text: str, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN202
    with monkeypatch.context() as m:
        m.setattr(yaml_nodes, "_parse_simple", lambda t: None)
        return parse_yaml(text)


def _same(text: str, monkeypatch: pytest.MonkeyPatch) -> bool:
    """True when the simple parse took ``text`` (and then equals libyaml's), False when it left
    it to libyaml."""
    fast = _parse_simple(text)
    if fast is None:
        return False
    try:
        ref = _libyaml(text, monkeypatch)
    except YamlSyntaxError as exc:  # pragma: no cover - the failure this test looks for
        raise AssertionError(f"the simple parse took a text libyaml refuses ({exc}): {text!r}") from None
    got = ([_dump(d) for d in fast.documents], [(i.line, i.col, i.message) for i in fast.issues])
    want = ([_dump(d) for d in ref.documents], [(i.line, i.col, i.message) for i in ref.issues])
    assert got == want, text
    assert parse_yaml(text).documents and _dump(parse_yaml(text).documents[0]) == want[0][0]
    return True


def test_generated_rule_files_take_the_simple_parse_alike(tmp_path, monkeypatch) -> None:
    import match_bench as mb

    rng = random.Random(1)
    vocab = {lang: mb.make_vocab(rng, lang, 6000) for lang in ("en", "ar", "fa")}
    names = mb.make_names(random.Random(3), 20 * 300)
    mb.make_rules(random.Random(2), vocab, 300, tmp_path, names)
    files = sorted(tmp_path.glob("*.yml"))
    took = sum(_same(f.read_text(encoding="utf-8"), monkeypatch) for f in files)
    assert took >= 0.9 * len(files)  # the single-quoted regexes go through libyaml


SIMPLE = [
    "id: a\n",
    "id: a",
    "\n\nid: a  b\nx: [ a  b , \"c\" ]\n\n",
    "a: {k: [ ], j: v w }\n",
    'a:  "q"\nb:\n    c: d\n    e: [x]\nf: g\n',
    "a: b\u00a0\n",
    "id: x\nid: y\nmatch:\n  a: [\"1\"]\n  a: [\"2\"]\n  b: {t: 1, t: 2}\n",  # duplicate keys: issues
    'a: ["", "x, y", "#h", "[b]", "ق ب"]\nb: []\nc: {}\nd: [[a], {k: [b, "c"]}]\n',
    "title: a, b [c] {d} it's \"q\"\ncondition: (a and b) or not c\n",
    "a:\n  b:\n    c: d\n  e: f\ng: h\n",
    "a: ~\nb: null\nc: 12\nd: true\n",
]

NOT_SIMPLE = [
    "",
    "\n",
    "# comment\nid: a\n",
    "id: a # comment\n",
    "a:\nb: c\n",  # an empty value (null)
    "a:\n",
    "a:\tb\n",
    "a: 'q'\n",
    'a: "x\\"y"\n',
    "a:\n  - b\n",
    "a: b\n  c\n",  # a multi-line plain scalar
    "a:\n    b: c\n  d: e\n",  # a dedent to no open mapping
    "a: b\n  c: d\n",  # deeper after a value
    " a: b\n",
    "---\na: b\n",
    "a: b\n...\n",
    "a: &x b\nc: *x\n",
    "a: !!str b\n",
    "a: |\n  b\n",
    "a: -b\n",
    "a: b:c\n",
    "a: [b\n",
    'a: ["b", ]\n',
    "a: [b,, c]\n",
    "a: [b] c\n",
    "a: {k: }\n",
    "a: {k:v}\n",
    "a: [k: v]\n",
    "a: b \n",
    "a: b\r\n",
    "a: b\x85c\n",
    "a: b\u2028c\n",
    "a: \U0001f600\n",
    "k" * 200 + ": v\n",
    "a-b: c\n",
    "a: [" * 9 + "]" * 9 + "\n",
]


@pytest.mark.parametrize("text", SIMPLE)
def test_simple_texts(text: str, monkeypatch) -> None:
    assert _same(text, monkeypatch)


@pytest.mark.parametrize("text", NOT_SIMPLE)
def test_other_texts_go_through_libyaml(text: str, monkeypatch) -> None:
    assert _parse_simple(text) is None
    try:  # and parse_yaml answers as libyaml does
        want = _libyaml(text, monkeypatch)
    except YamlSyntaxError as exc:
        with pytest.raises(YamlSyntaxError) as got:
            parse_yaml(text)
        assert (got.value.line, got.value.col, got.value.message) == (exc.line, exc.col, exc.message)
    else:
        got = parse_yaml(text)
        assert [_dump(d) for d in got.documents] == [_dump(d) for d in want.documents]


_PIECES = ["a", "k", "id", "x_y", " ", "  ", ":", ": ", ",", ", ", "[", "]", "{", "}", '"', "'", "#", " #", "-", "?",
           "\\", "é", "ب", "ی", "\u00a0", "\u200c", "*", "&", "!", "|", ">", "%", "@", "`", "\t", "0", "~", "null", "."]


def _rand_scalar(rng: random.Random) -> str:
    return "".join(rng.choice(_PIECES[:4] + ["ab", "ق", " "]) for _ in range(rng.randint(1, 4))).strip(" ") or "x"


def _rand_value(rng: random.Random, depth: int = 0) -> str:
    r = rng.random()
    if r < 0.3:
        return _rand_scalar(rng)
    if r < 0.5:
        return '"' + _rand_scalar(rng) + '"'
    if r < 0.8 and depth < 3:
        sep = rng.choice([", ", ", ", ",", " , "])
        return "[" + sep.join(_rand_value(rng, depth + 1) for _ in range(rng.randint(0, 3))) + "]"
    if depth < 3:
        keys = [rng.choice(["k", "a", "terms", "within"]) for _ in range(rng.randint(0, 3))]
        return "{" + ", ".join(f"{k}: {_rand_value(rng, depth + 1)}" for k in keys) + "}"
    return _rand_scalar(rng)


def _rand_doc(rng: random.Random) -> str:
    lines: list[str] = []
    indents = [0]
    for _ in range(rng.randint(1, 8)):
        key = rng.choice(["id", "a", "b", "match", "k", "x_y", "title"])
        if rng.random() < 0.25:
            lines.append(" " * indents[-1] + key + ":")
            indents.append(indents[-1] + rng.choice([2, 2, 4, 1]))
        else:
            lines.append(" " * indents[-1] + key + rng.choice([": ", ":  "]) + _rand_value(rng))
            if len(indents) > 1 and rng.random() < 0.3:
                indents.pop()
        if rng.random() < 0.05:
            lines.append("")
    text = rng.choice(["", "\n"]) + "\n".join(lines) + rng.choice(["\n", "", "\n\n"])
    for _ in range(rng.choice([0, 0, 1, 2])):  # a random edit, often one the simple parse must refuse
        at = rng.randrange(len(text) + 1)
        text = text[:at] + rng.choice(_PIECES + ["\n", "\n  "]) + text[at + rng.choice([0, 0, 1]):]
    return text


def test_random_texts(monkeypatch) -> None:
    rng = random.Random(14)
    took = sum(_same(_rand_doc(rng), monkeypatch) for _ in range(4000))
    assert took >= 800  # a good share of them take the simple parse
