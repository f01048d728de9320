"""The canonical YAML a rule under ``rules:`` is hashed by: libyaml's emitter where it writes
exactly what PyYAML's own writes, PyYAML's otherwise, so a rule's hash never changes."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import yaml

from monitor.rules import load_rules
from monitor.rules.loader import _c_emitter_safe, canonical_yaml
from monitor.rules.yaml_nodes import parse_yaml

ROOT = Path(__file__).resolve().parent.parent


def _reference(plain: object) -> str:
    return yaml.safe_dump(plain, sort_keys=True, allow_unicode=True, default_flow_style=False)


def _pack_items() -> list[object]:
    items = []
    for f in sorted((ROOT / "rules").rglob("*.yml")):
        root = parse_yaml(f.read_text(encoding="utf-8")).documents[0]
        for k, v in root.items():
            if k.value == "rules":
                items += [i.to_plain() for i in v.value]
    return items


def test_shipped_pack_same_text_as_pyyaml() -> None:
    items = _pack_items()
    assert len(items) > 20
    assert sum(map(_c_emitter_safe, items)) == len(items)  # all take the libyaml path ...
    for item in items:
        assert canonical_yaml(item) == _reference(item)  # ... and give PyYAML's text


PIECES = [
    "abcxyz", "ABC", "0129", " ", "  ", "\n", "\n\n", "\t", ":", ": ", "#", " #", "'", '"', "-", "- ", "?", ",", "[]{}",
    "&*!|>%@`", "\\", "ولاية الإسلامية تبنى", "بیانیه\u200cای می\u200cشود", "\u200c", "\u00a0", "\u0085", "\u2028",
    "\u2029", "\ufeff", "\x00\x1b\x7f", "é", "😀", "\ufffe", "\ue000", "\r", "~", "...", "---", "yes", "no", "null",
    "true", "1.5", "0x1f", "\u064e", "١٢٣", "\u202b",
]


def _text(rng: random.Random) -> str:
    n = rng.choice([0, 1, 3, 10, 40, 90, 200])
    out: list[str] = []
    while sum(map(len, out)) < n:
        out.append(rng.choice(PIECES) if rng.random() < 0.5 else rng.choice(PIECES[:4] + PIECES[20:22]))
    return "".join(out)


def _value(rng: random.Random, depth: int = 0) -> object:
    r = rng.random()
    if depth < 4 and r < 0.2:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if depth < 4 and r < 0.35:
        return {_text(rng) or "k": _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    return None if r < 0.4 else _text(rng)


def test_random_items_same_text_as_pyyaml() -> None:
    rng = random.Random(7)
    fast = 0
    for _ in range(1500):
        item = {_text(rng) or "id": _value(rng) for _ in range(rng.randint(1, 5))}
        fast += _c_emitter_safe(item)
        assert canonical_yaml(item) == _reference(item), item
    assert 50 < fast < 1450  # both paths exercised


def test_long_keys_and_breaks_next_to_spaces_take_pyyaml() -> None:
    assert not _c_emitter_safe({"k" * 120: "v"})
    assert not _c_emitter_safe({"ك" * 60: "v"})  # 120 bytes
    assert not _c_emitter_safe({"a": "x \ny"})
    assert not _c_emitter_safe({"a": ["x\n y"]})
    assert not _c_emitter_safe({"a\nb": "x"})
    assert _c_emitter_safe({"a": "x\ny\n\nz\n", "b": [None, "بیانیه\u200cای"]})


def test_rule_hash_is_sha256_of_pyyaml_text(tmp_path: Path) -> None:
    rule = {"id": "r1", "title": "A title long enough to be folded by the emitter at eighty columns, in two lines",
            "description": "One line.\nAnother line.\n", "match": {"a": ["claimed responsibility", "تبنى"]}}
    (tmp_path / "r.yml").write_text(yaml.safe_dump({"rules": [rule]}, allow_unicode=True), encoding="utf-8")
    got = load_rules([tmp_path]).rules[0].hash
    assert got == hashlib.sha256(_reference(rule).encode("utf-8")).hexdigest()
