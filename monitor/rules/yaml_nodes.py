"""YAML parsed into nodes that remember their line and column, built without recursion.

Rule files are hostile input: this composer walks libyaml's event stream iteratively (no
recursion, whatever the nesting), caps the nesting depth and the size that aliases expand
to (no "billion laughs"), reports duplicate keys, and never constructs Python objects from
tags. Scalars stay the strings written in the file; the rule loader decides their type
(so a term written ``no`` or ``1991`` stays the word ``no`` or ``1991``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import yaml

MAX_DEPTH = 64
MAX_NODES = 2_000_000  # nodes after alias expansion, per document

_NULLS = frozenset({"", "~", "null", "Null", "NULL"})


@dataclass(eq=False, slots=True)
class Node:
    kind: str  # "scalar" | "seq" | "map"
    line: int  # 1-based
    col: int  # 1-based
    value: object = None  # str | list[Node] | list[tuple[Node, Node]]
    style: str = ""  # scalar style: "" plain, "'" or '"' quoted, "|" or ">" block
    size: int = 1  # nodes in this subtree, aliases expanded

    @property
    def is_null(self) -> bool:
        return self.kind == "scalar" and self.style == "" and self.value in _NULLS

    def items(self) -> Iterator[tuple["Node", "Node"]]:
        assert self.kind == "map"
        return iter(self.value)  # type: ignore[arg-type]

    def to_plain(self) -> object:
        """Plain Python data (scalars as written); iterative, so deep trees are fine."""
        results: dict[int, object] = {}
        stack: list[tuple[Node, bool]] = [(self, False)]
        while stack:
            node, done = stack.pop()
            if node.kind == "scalar":
                results[id(node)] = None if node.is_null else node.value
                continue
            if not done:
                stack.append((node, True))
                children = node.value if node.kind == "seq" else [n for kv in node.value for n in kv]  # type: ignore[union-attr]
                stack.extend((c, False) for c in children if id(c) not in results)  # type: ignore[union-attr]
                continue
            if node.kind == "seq":
                results[id(node)] = [results[id(c)] for c in node.value]  # type: ignore[union-attr]
            else:
                out = {}
                for k, v in node.value:  # type: ignore[union-attr]
                    key = results[id(k)]
                    out[key if isinstance(key, (str, int, type(None))) else str(key)] = results[id(v)]
                results[id(node)] = out
        return results[id(self)]


@dataclass
class YamlIssue:
    line: int
    col: int
    message: str


@dataclass
class ParsedYaml:
    documents: list[Node] = field(default_factory=list)
    issues: list[YamlIssue] = field(default_factory=list)  # non-fatal (duplicate keys)


class YamlSyntaxError(Exception):
    def __init__(self, line: int, col: int, message: str) -> None:
        super().__init__(message)
        self.line, self.col, self.message = line, col, message


def _mark(ev: yaml.Event) -> tuple[int, int]:
    m = ev.start_mark
    return (m.line + 1, m.column + 1) if m is not None else (1, 1)


def parse_yaml(text: str, *, max_nodes: int = MAX_NODES) -> ParsedYaml:
    """Parse ``text`` into positioned node trees (one per document).

    Raises :class:`YamlSyntaxError` with a 1-based line and column for syntax errors,
    nesting deeper than :data:`MAX_DEPTH` and alias expansion beyond ``max_nodes``.
    """
    out = ParsedYaml()
    stack: list[tuple[Node, list]] = []  # (collection node, [pending key node or None, seen keys])
    anchors: dict[str, Node] = {}
    open_anchors: set[int] = set()
    doc_size = 0
    try:
        loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        for ev in yaml.parse(text, Loader=loader_cls):
            if isinstance(ev, (yaml.StreamStartEvent, yaml.StreamEndEvent, yaml.DocumentEndEvent)):
                continue
            if isinstance(ev, yaml.DocumentStartEvent):
                anchors.clear()
                doc_size = 0
                continue
            node: Node | None = None
            if isinstance(ev, yaml.ScalarEvent):
                line, col = _mark(ev)
                node = Node("scalar", line, col, ev.value, ev.style or "")
            elif isinstance(ev, yaml.AliasEvent):
                line, col = _mark(ev)
                target = anchors.get(ev.anchor)
                if target is None:
                    raise YamlSyntaxError(line, col, f"undefined alias '*{ev.anchor}'")
                if id(target) in open_anchors:
                    raise YamlSyntaxError(line, col, f"alias '*{ev.anchor}' refers to a collection that contains it")
                node = target
            elif isinstance(ev, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                line, col = _mark(ev)
                if len(stack) >= MAX_DEPTH:
                    raise YamlSyntaxError(line, col, f"nesting deeper than {MAX_DEPTH} levels")
                coll = Node("seq" if isinstance(ev, yaml.SequenceStartEvent) else "map", line, col, [])
                coll.size = 1
                if ev.anchor:
                    anchors[ev.anchor] = coll
                    open_anchors.add(id(coll))
                stack.append((coll, [None, {}]))
                continue
            elif isinstance(ev, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                coll, _state = stack.pop()
                open_anchors.discard(id(coll))
                node = coll
                if not stack:  # a finished document root
                    out.documents.append(node)
                    continue
                _attach(stack[-1], node, out)
                continue
            if node is None:  # pragma: no cover - no other event types exist
                continue
            if isinstance(ev, yaml.ScalarEvent) and ev.anchor:
                anchors[ev.anchor] = node
            doc_size += node.size
            if doc_size > max_nodes:
                line, col = _mark(ev)
                raise YamlSyntaxError(line, col, f"document expands to more than {max_nodes:,} nodes (alias expansion)")
            if not stack:
                out.documents.append(node)
            else:
                _attach(stack[-1], node, out)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        raise YamlSyntaxError(line, col, f"YAML syntax error: {problem}{context}") from None
    except yaml.reader.ReaderError as exc:
        pos = exc.position
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        raise YamlSyntaxError(line, col, f"YAML syntax error: unacceptable character #x{exc.character:04x}") from None
    except yaml.YAMLError as exc:  # pragma: no cover - other libyaml errors carry no mark
        raise YamlSyntaxError(1, 1, f"YAML syntax error: {exc}") from None
    return out


def _attach(parent: tuple[Node, list], node: Node, out: ParsedYaml) -> None:
    coll, state = parent
    coll.size += node.size
    if coll.kind == "seq":
        coll.value.append(node)  # type: ignore[union-attr]
        return
    if state[0] is None:
        state[0] = node
        if node.kind == "scalar":
            first = state[1].get(node.value)
            if first is not None:
                out.issues.append(YamlIssue(node.line, node.col, f"duplicate key '{node.value}' (first at line {first})"))
            else:
                state[1][node.value] = node.line
        return
    coll.value.append((state[0], node))  # type: ignore[union-attr]
    state[0] = None
