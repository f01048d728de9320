"""A loaded rule set: rules, their selections and conditions (validated, ready to compile)."""

from __future__ import annotations

from dataclasses import dataclass, field

from typing import TYPE_CHECKING

from ..model import LEVELS
from .condition import Condition
from .source_filter import SourcePattern
from .terms import Term

if TYPE_CHECKING:
    from .actors import Actor
    from .classifier import ClassifierSpec
    from .lists import WatchList

FIELDS = ("text", "channel", "author", "forwarded_from", "url")
OPS = ("any", "all", "near", "regex")


@dataclass(frozen=True, eq=False)
class Selection:
    name: str
    op: str  # any | all | near | regex
    field: str = "text"
    terms: tuple[Term, ...] = ()  # any / all / near
    regexes: tuple[str, ...] = ()  # regex, as written
    within: int = 0  # near: all terms within this many words
    line: int = 1
    col: int = 1
    groups: tuple[tuple[int, ...], ...] = ()  # near: indexes into terms, one group per position

    @property
    def pattern_count(self) -> int:
        return sum(len(w.keys()) for t in self.terms for w in t.words)


@dataclass(frozen=True, eq=False)
class Rule:
    id: str
    title: str
    level: str
    selections: tuple[Selection, ...]
    condition: Condition
    file: str
    line: int = 1
    hash: str = ""  # sha256 of the rule file (or of the rule's canonical YAML under rules:)
    description: str = ""
    tags: tuple[str, ...] = ()
    sources: tuple[SourcePattern, ...] = ()
    languages: frozenset[str] | None = None
    alert: tuple[str, ...] = ()
    throttle: int | None = None  # seconds
    enabled: bool = True
    author: str | None = None
    references: tuple[str, ...] = ()
    id_pos: tuple[int, int] = (1, 1)  # line, col of the id in the file
    kind: str = "watch"  # one of monitor.model.KINDS

    @property
    def throttle_seconds(self) -> int | None:
        return self.throttle

    def selection(self, name: str) -> Selection:
        for s in self.selections:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class RuleSet:
    rules: list[Rule] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    actors: list["Actor"] = field(default_factory=list)  # from the actor files (rules/actors.yml)
    lists: list["WatchList"] = field(default_factory=list)  # from the list files (rules/lists/*.csv)
    classifier: "ClassifierSpec | None" = None  # the learned classifier (rules/classifier.yml), if any

    def __len__(self) -> int:
        return len(self.rules)

    def get(self, rule_id: str) -> Rule | None:
        for r in self.rules:
            if r.id == rule_id:
                return r
        return None
