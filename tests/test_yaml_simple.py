"""parse_yaml's line-by-line path for simple documents (yaml_nodes.parse_simple) gives exactly
the nodes of libyaml's event walk: kind, line, column, value, style and size of every node, and
no issues; anything outside its subset is left to the event walk (None)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from monitor.rules import yaml_nodes
from monitor.rules.yaml_nodes import YamlSyntaxError, parse_simple, parse_yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))


def _walk(text: str, monkeypatch: pytest.MonkeyPatch) -> object:
    """The event walk's answer (nodes, or the syntax error) for ``text``."""
    with monkeypatch.context() as m:
        m.setattr(yaml_nodes, "parse_simple", lambda _t, _n=0: None)
        try:
            got = parse_yaml(text)
        except YamlSyntaxError as exc:
            return ("error", exc.line, exc.col, exc.message)
    return _dump_all(got)


def _dump(n: yaml_nodes.Node) -> tuple:
    if n.kind == "scalar":
        return ("s", n.line, n.col, n.value, n.style, n.size)
    if n.kind == "seq":
        return ("q", n.line, n.col, n.style, n.size, [_dump(c) for c in n.value])  # type: ignore[union-attr]
    return ("m", n.line, n.col, n.style, n.size, [(_dump(k), _dump(v)) for k, v in n.value])  # type: ignore[union-attr]


def _dump_all(parsed: yaml_nodes.ParsedYaml) -> tuple:
    return ([_dump(d) for d in parsed.documents], [(i.line, i.col, i.message) for i in parsed.issues])


def _same(text: str, monkeypatch: pytest.MonkeyPatch) -> bool | None:
    """None when the simple path declines ``text``; else asserts it agrees with the walk."""
    fast = parse_simple(text)
    if fast is None:
        return None
    assert _dump_all(fast) == _walk(text, monkeypatch), text
    assert _dump_all(parse_yaml(text)) == _dump_all(fast)
    return True


def test_generated_rule_files_take_the_simple_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import match_bench as mb

    rng = random.Random(1)
    vocab = {lang: mb.make_vocab(rng, lang, 6000) for lang in ("en", "ar", "fa")}
    names = mb.make_names(random.Random(3), 20 * 300)
    mb.make_rules(random.Random(2), vocab, 300, tmp_path, names)
    files = sorted(tmp_path.glob("*.yml"))
    assert len(files) == 300
    for f in files:  # every shape the generator writes (near maps, regexes, sources, languages)
        assert _same(f.read_text(encoding="utf-8"), monkeypatch) is True, f.name


def test_shipped_yaml_agrees_where_it_is_simple(monkeypatch: pytest.MonkeyPatch) -> None:
    for f in [*sorted((ROOT / "rules").rglob("*.yml")), *sorted((ROOT / "config").rglob("*.yaml"))]:
        _same(f.read_text(encoding="utf-8-sig"), monkeypatch)


@pytest.mark.parametrize("text", [
    "id: a\n",
    "id: a",
    "id: bench-1\ntitle: bench rule 1\nmatch:\n  a: [\"x\", \"y z\"]\n  b:\n    all: ['p', 'q']\ncondition: a and b\n",
    "a:\n    b:\n      c: x\n    d: [en]\nz: 1\n",
    "id: [a, b]\n",
    "m:\n  n: {terms: [\"a\", \"b\"], within: 5}\n",
    "t: \"\"\n",
    "t: ''\n",
    "t: [\"\", \"a\"]\n",
    "k: \"ولاية سيناء\"\nl: بیانیه\u200cای\n",
    "k: 'a\\b'\n",
    "k: x\u00a0y\n",
    "k: true\nl: null\nm: x~\n",
])
def test_hand_made_simple_documents(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _same(text, monkeypatch) is True


@pytest.mark.parametrize("text", [
    "", "\n", "# a comment\nid: a\n", "id: a # comment\n", "id: a\n\ntitle: b\n", "id: a\nid: b\n",
    "- a\n", "id: [\"a\",\"b\"]\n", "id: []\n", "id: {}\n", "id: \"a\\\"b\"\n", "id: 'it''s'\n",
    "id: a: b\n", "id: &x a\n", "id: *x\n", "id: !tag a\n", "id: |\n  a\n", "id:\n  - a\n", "id:\nb: c\n",
    "id: a \n", "id:  a\n", "id:\ta\n", "id: a\r\n", "---\nid: a\n", "id: \"a\u2028b\"\n", "id: \"a\ufeffb\"\n",
    "id: \U0001f600\n", " id: a\n", "a:\n  b: 1\n c: 2\n", "a:\n  b: 1\n    c: 2\n", "a:\n", "k" * 200 + ": v\n",
    "id: -a\n", "id: %a\n", "id: @a\n", "id: `a\n", "id: ?a\n", "id: a,b\n", "m: {a: 1, a: 2}\n", "m: {a: [\"x\"] }\n",
])
def test_outside_the_subset_goes_to_the_event_walk(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_simple(text) is None
    _walk(text, monkeypatch)  # (whatever the walk says: nodes, issues or an error)


ALPHABET = list("abcxyz019 _-.()") + list(":#'\"[]{},&*!|>%@`\\?~=+/;<") + [
    "\t", "\u00a0", "\u2028", "ا", "ب", "ی", "\u200c", "  ", ", ", ": ", " #", "\ufeff", "😀", "\x85", "\r", "\n",
]


def _random_doc(rng: random.Random) -> str:
    clean = rng.random() < 0.7

    def word() -> str:
        return "".join(rng.choice("abcxyz019_-ابی ") for _ in range(rng.randint(1, 8)))

    def item() -> str:
        r = rng.random()
        if r < 0.4:
            return '"' + word() + '"'
        if r < 0.6:
            return "'" + word() + "'"
        return rng.choice(["en", "ar", "5", "a.b", "x-y", "1e3", "true", "null", "~"])

    def value() -> str:
        r = rng.random()
        if r < 0.3:
            return "[" + ", ".join(item() for _ in range(rng.randint(0, 4))) + "]"
        if r < 0.4:
            return "{" + ", ".join(f"{rng.choice(['terms', 'within', 'a'])}: " + item() for _ in range(rng.randint(0, 3))) + "}"
        if r < 0.6:
            return item()
        return word().strip() or "v"

    def block(depth: int, ind: int) -> list[str]:
        lines = []
        for _ in range(rng.randint(1, 5)):
            k = rng.choice(["id", "title", "match", "a", "b", "near_it", "x1", "_k"])
            if depth < 3 and rng.random() < 0.25:
                lines.append(" " * ind + k + ":")
                lines += block(depth + 1, ind + rng.choice([1, 2, 2, 4]))
            else:
                lines.append(" " * ind + k + (": " if clean else rng.choice([": ", ":", ":  "])) + value())
        return lines

    text = "\n".join(block(0, 0)) + rng.choice(["\n", ""])
    for _ in range(rng.choice([0, 0, 1, 1, 2])):  # a character inserted, deleted or replaced
        i = rng.randrange(len(text) + 1)
        c = rng.random()
        text = text[:i] + (rng.choice(ALPHABET) if c < 0.6 else "") + text[i + (1 if c > 0.3 else 0):]
    return text


def test_random_documents_agree_with_the_event_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(35)
    taken = 0
    for _ in range(6000):
        taken += bool(_same(_random_doc(rng), monkeypatch))
    assert taken > 500  # the simple path was really exercised, mutated documents included


def test_rule_problems_read_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule file on the simple path reports its problems at the same places as through the walk."""
    from monitor.rules import RuleSetError, load_rules

    (tmp_path / "r.yml").write_text(
        'id: Bad\nlevel: urgent\nmatch:\n  a: ["x"]\n  b:\n    near: {terms: ["p", "q"], within: 0}\ncondition: a and c\n',
        encoding="utf-8")
    assert parse_simple((tmp_path / "r.yml").read_text(encoding="utf-8")) is not None

    def problems() -> list[str]:
        with pytest.raises(RuleSetError) as exc:
            load_rules([tmp_path])
        return [str(p) for p in exc.value.problems]

    fast = problems()
    with monkeypatch.context() as m:
        m.setattr(yaml_nodes, "parse_simple", lambda _t, _n=0: None)
        assert problems() == fast
    assert len(fast) == 4 and ":6:39:" in fast[2]
