"""YAML parsed into nodes that remember their line and column, built without recursion.

Rule files are hostile input: this composer walks libyaml's event stream iteratively (no
recursion, whatever the nesting), caps the nesting depth and the size that aliases expand
to (no "billion laughs"), reports duplicate keys, and never constructs Python objects from
tags. Scalars stay the strings written in the file; the rule loader decides their type
(so a term written ``no`` or ``1991`` stays the word ``no`` or ``1991``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
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


try:  # libyaml's parser alone (no constructor or resolver: the events are all we read)
    from yaml._yaml import CParser as _CParser
except ImportError:  # pragma: no cover - PyYAML without libyaml
    _CParser = None


def _events(text: str) -> Iterator[yaml.Event]:
    if _CParser is None:  # pragma: no cover
        yield from yaml.parse(text, Loader=yaml.SafeLoader)
        return
    get = _CParser(text).get_event
    while True:
        ev = get()
        if ev is None:
            return
        yield ev


def _note_key(node: Node, seen: dict, issues: list) -> None:
    """Record a mapping's scalar key; a key seen before in the same mapping is a duplicate."""
    first = seen.get(node.value)
    if first is not None:
        issues.append(YamlIssue(node.line, node.col, f"duplicate key '{node.value}' (first at line {first})"))
    else:
        seen[node.value] = node.line


def parse_yaml(text: str, *, max_nodes: int = MAX_NODES) -> ParsedYaml:
    """Parse ``text`` into positioned node trees (one per document).

    Raises :class:`YamlSyntaxError` with a 1-based line and column for syntax errors,
    nesting deeper than :data:`MAX_DEPTH` and alias expansion beyond ``max_nodes``.
    The innermost open collection is kept in locals (a scalar, most events, is attached
    without a look at the stack: watch).
    """
    out = ParsedYaml()
    documents, issues = out.documents, out.issues
    # the open collections: the innermost in locals (top, its kind, its values, a map's
    # pending key and seen keys), the ones around it saved on ``outer``
    outer: list[tuple] = []
    top = None
    top_seq = False
    vals: list = []
    key = None
    seen: dict = {}
    anchors: dict[str, Node] = {}
    open_anchors: set[int] = set()
    doc_size = 0
    scalar_ev, alias_ev = yaml.ScalarEvent, yaml.AliasEvent
    seq_start, map_start = yaml.SequenceStartEvent, yaml.MappingStartEvent
    seq_end, map_end, doc_start = yaml.SequenceEndEvent, yaml.MappingEndEvent, yaml.DocumentStartEvent
    # libyaml's events asked for one by one (no generator in between), else PyYAML's
    get = _CParser(text).get_event if _CParser is not None else partial(next, _events(text), None)
    try:
        while True:
            ev = get()
            if ev is None:
                break
            kind = type(ev)
            if kind is scalar_ev:
                m = ev.start_mark
                node = Node("scalar", m.line + 1, m.column + 1, ev.value, ev.style or "")
                if ev.anchor:
                    anchors[ev.anchor] = node
                doc_size += 1
                if doc_size > max_nodes:
                    line, col = _mark(ev)
                    raise YamlSyntaxError(line, col, f"document expands to more than {max_nodes:,} nodes (alias expansion)")
                if top is None:
                    documents.append(node)
                    continue
                top.size += 1
                if top_seq:
                    vals.append(node)
                elif key is None:
                    key = node
                    _note_key(node, seen, issues)
                else:
                    vals.append((key, node))
                    key = None
                continue
            if kind is seq_end or kind is map_end:
                node = top
                open_anchors.discard(id(node))
                if outer:
                    top, top_seq, vals, key, seen = outer.pop()
                else:
                    top = None
            elif kind is seq_start or kind is map_start:
                m = ev.start_mark
                line, col = (m.line + 1, m.column + 1) if m is not None else (1, 1)
                if len(outer) + (top is not None) >= MAX_DEPTH:
                    raise YamlSyntaxError(line, col, f"nesting deeper than {MAX_DEPTH} levels")
                is_seq = kind is seq_start
                coll = Node("seq" if is_seq else "map", line, col, [])
                if ev.anchor:
                    anchors[ev.anchor] = coll
                    open_anchors.add(id(coll))
                if top is not None:
                    outer.append((top, top_seq, vals, key, seen))
                top, top_seq, vals, key, seen = coll, is_seq, coll.value, None, {}
                continue
            elif kind is alias_ev:
                line, col = _mark(ev)
                target = anchors.get(ev.anchor)
                if target is None:
                    raise YamlSyntaxError(line, col, f"undefined alias '*{ev.anchor}'")
                if id(target) in open_anchors:
                    raise YamlSyntaxError(line, col, f"alias '*{ev.anchor}' refers to a collection that contains it")
                node = target
                doc_size += node.size
                if doc_size > max_nodes:
                    raise YamlSyntaxError(line, col, f"document expands to more than {max_nodes:,} nodes (alias expansion)")
            elif kind is doc_start:
                anchors.clear()
                doc_size = 0
                continue
            else:  # stream and document ends
                continue
            # attach a finished collection or an alias's target to its parent
            if top is None:
                documents.append(node)
                continue
            top.size += node.size
            if top_seq:
                vals.append(node)
            elif key is None:
                key = node
                if node.kind == "scalar":  # an alias of a scalar
                    _note_key(node, seen, issues)
            else:
                vals.append((key, node))
                key = None
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
