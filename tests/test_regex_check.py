"""``check_regex`` (the loader's validation: parse only when the program cannot be too large)
refuses exactly what ``compile_regex`` refuses, with the same message."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import re2

from monitor.rules import load_rules
from monitor.rules.regexes import (
    _PARSE_ONLY_BOUND, RegexError, _program_bound, check_regex, compile_regex, options, prepare,
)

ROOT = Path(__file__).resolve().parent.parent


def _outcome(fn, pattern: str) -> str | None:
    try:
        fn(pattern)
    except RegexError as exc:
        return str(exc)
    return None


BAD = [
    "", "x" * 2001, "(abc", "abc)", "a{1001}", r"\pX", "[z-a]", "(?P<n>a", "*a", "a**", r"\8", "(?<", "[[:foo:]]",
    r"\pL{1000}\pL{1000}", r"(?:\w{1000}){2}", r"(?:a{100}){100}", "(?i", r"\x{110000}",
    "ولاية(", r"\z", r"a\\", "\\",
]
GOOD = [r"\pL{1000}", r"\C{1000}[\pL\pN]{1000}", r"\bclaim(?:ed|s)?\W+(?:\w+\W+){0,3}attacks?", r"ولاية\s+\w+", r"(?i)hamas|qassam", "a{2,5}b{3}"]


@pytest.mark.parametrize("pattern", BAD + GOOD)
def test_same_outcome_as_compiling(pattern: str) -> None:
    assert _outcome(check_regex, pattern) == _outcome(compile_regex, pattern)
    if pattern in GOOD:
        assert _outcome(check_regex, pattern) is None


def test_refusals_include_too_large_and_syntax() -> None:
    refused = [p for p in BAD if _outcome(check_regex, p) is not None]
    assert len(refused) >= len(BAD) - 3
    assert "too large" in _outcome(check_regex, r"\pL{1000}\pL{1000}")
    assert "missing )" in _outcome(check_regex, "(abc")


def test_shipped_patterns_pass_without_compiling() -> None:
    patterns = {p for r in load_rules([ROOT / "rules"]).rules for s in r.selections for p in s.regexes}
    assert len(patterns) > 30
    parse_only = 0
    for p in patterns:
        check_regex(p)
        prog = compile_regex(p)._regexp.ProgramSize()
        bound = _program_bound(prepare(p))
        assert prog <= bound, p  # the bound holds
        parse_only += bound <= _PARSE_ONLY_BOUND
    assert parse_only == len(patterns)


TOKENS = [
    "a", "b", "ولاية", "\\s", "\\w", "\\W", "\\pL", "\\PL", "\\p{Arabic}", "\\pN", ".", "[a-z]", "[\\pL\\pN\\pM]", "[^\\pS\\pP]",
    "(", ")", "(?:", "(?i)", "|", "*", "+", "?", "{2}", "{0,3}", "{1,}", "{1001}", "^", "$", "\\b", "\\d", "[", "]", "\\",
    "\\Q", "\\E", "{", "}", "(?P<x>", "[[:alpha:]]", "\\x{41}", "-",
]


def test_random_patterns_same_outcome() -> None:
    rng = random.Random(3)
    refused = 0
    for _ in range(1500):
        p = "".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 12)))
        got = _outcome(check_regex, p)
        assert got == _outcome(compile_regex, p), p
        refused += got is not None
        if got is None:
            assert re2.compile(prepare(p), options())._regexp.ProgramSize() <= _program_bound(prepare(p)), p
    assert 200 < refused < 1300
