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
import re
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


# -- the common case without libyaml: a plain rule file ---------------------------------------
# Most rule files of a large set are written by tools or from one template: block mappings of
# plain keys whose values are plain or double-quoted scalars and one-line flow sequences and
# mappings of them. Such a file is parsed here line by line (a regular expression per line
# and per flow item) into the same nodes, positions and duplicate-key issues that libyaml's
# events give (tests/test_yaml_nodes.py compares both on generated and random texts); any
# other text (comments, block sequences, anchors, tags, single quotes, escapes, multi-line
# scalars, tabs, characters outside the printable BMP, empty values...) returns None and goes
# through libyaml as before, which also reports every error.
SIMPLE_MAX_CHARS = 65_536
_SIMPLE_TEXT = re.compile("[\n\x20-\x7e\u00a0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd]*\\Z")
_SIMPLE_LINE = re.compile(r"( *)([A-Za-z_][A-Za-z0-9_]{0,127}):(?:( +)(.*))?\Z")
# a plain scalar in block context: no indicator first, no ':' or '#' (nor a '"' or "'" after a
# space, where YAML would not take it for a plain character anyway), not ending in a space
_SIMPLE_PLAIN = re.compile(r"""[^-?:,\[\]{}#&*!|>'"%@` ][^:#]*\Z""")
# one flow item (after spaces): a double-quoted scalar without escapes, a flow plain scalar
# (no flow indicators, quotes, ':' or '#'), '[' or '{' (a nested collection), or the end
_SIMPLE_FLOW = re.compile(r"""( *)(?:"([^"\\]*)"|([^-?:,\[\]{}#&*!|>'"%@` ][^,\[\]{}#:"']*)|([\[{]))""")
_SIMPLE_KEY = re.compile(r"( *)([A-Za-z_][A-Za-z0-9_]{0,127}):( +)")
_SIMPLE_SEP = re.compile(r" *([,\]}])")
_SIMPLE_DQ_SEQ = re.compile(r'\[(?:"[^"\\]*"(?:, "[^"\\]*")*)?\]\Z')


def _parse_simple(text: str) -> "ParsedYaml | None":
    """:func:`parse_yaml` of a plain rule file (see above), or None for any other text."""
    if len(text) > SIMPLE_MAX_CHARS or not _SIMPLE_TEXT.match(text) or " \n" in text or text.endswith(" "):
        return None
    issues: list[YamlIssue] = []
    stack: list[tuple[int, Node, dict]] = []  # open block mappings: (indent, node, seen keys)
    pending: Node | None = None  # a key whose block mapping starts on the next line
    line_match = _SIMPLE_LINE.match
    dq_seq = _SIMPLE_DQ_SEQ.match
    node = Node
    root = None
    top: "tuple[int, Node, dict]" = (0, None, {})  # type: ignore[assignment]
    line_no = 0
    for line in text.split("\n"):
        line_no += 1
        if not line:
            continue
        m = line_match(line)
        if m is None:
            return None
        spaces, key, gap, raw = m.groups()
        indent = len(spaces)
        if pending is not None:
            if indent <= top[0]:
                return None  # an empty value: libyaml's null and its position
            coll = node("map", line_no, indent + 1, [])
            top[1].value.append((pending, coll))  # type: ignore[union-attr]
            top = (indent, coll, {})
            stack.append(top)
            pending = None
        elif root is None:
            if indent:
                return None
            root = node("map", line_no, 1, [])
            top = (0, root, {})
            stack.append(top)
        elif indent != top[0]:
            while indent < top[0]:
                stack.pop()
                top = stack[-1]
            if indent != top[0]:
                return None
        key_node = node("scalar", line_no, indent + 1, key, "")
        seen = top[2]
        if key in seen:
            issues.append(YamlIssue(line_no, indent + 1, f"duplicate key '{key}' (first at line {seen[key]})"))
        else:
            seen[key] = line_no
        if gap is None:
            pending = key_node
            continue
        col = indent + len(key) + 2 + len(gap)
        first_char = raw[0]
        if first_char == "[":
            if dq_seq(raw):  # ["a", "b", ...]: the common case, split at once
                if len(raw) == 2:
                    value = node("seq", line_no, col, [])
                else:
                    items = []
                    at = col + 1
                    for item in raw[2:-2].split('", "'):
                        items.append(node("scalar", line_no, at, item, '"'))
                        at += len(item) + 4
                    value = node("seq", line_no, col, items, "", len(items) + 1)
                top[1].value.append((key_node, value))  # type: ignore[union-attr]
                continue
            got = _simple_flow(raw, 0, line_no, col, issues)
            if got is None or got[1] != len(raw):
                return None
            value = got[0]
        elif first_char == "{":
            got = _simple_flow(raw, 0, line_no, col, issues)
            if got is None or got[1] != len(raw):
                return None
            value = got[0]
        elif first_char == '"':
            if raw.find('"', 1) != len(raw) - 1 or "\\" in raw:
                return None
            value = node("scalar", line_no, col, raw[1:-1], '"')
        elif _SIMPLE_PLAIN.match(raw):
            value = node("scalar", line_no, col, raw, "")
        else:
            return None
        top[1].value.append((key_node, value))  # type: ignore[union-attr]
    if pending is not None or root is None:
        return None
    _set_sizes(root)
    return ParsedYaml([root], issues)


def _simple_flow(raw: str, pos: int, line_no: int, col: int, issues: list, depth: int = 0) -> "tuple[Node, int] | None":
    """The one-line flow collection starting at ``raw[pos]`` (``[`` or ``{``; ``col``: the
    column of ``raw[0]``) and the position after it, or None when it is not of the simple kind."""
    if depth >= 8:
        return None
    is_seq = raw[pos] == "["
    node = Node("seq" if is_seq else "map", line_no, col + pos, [])
    items = node.value
    seen: dict = {}
    close = "]" if is_seq else "}"
    m = _SIMPLE_SEP.match(raw, pos + 1)
    if m is not None and m[1] != ",":  # empty
        return (node, m.end()) if m[1] == close else None
    pos += 1
    while True:
        key_node = None
        if not is_seq:
            k = _SIMPLE_KEY.match(raw, pos)
            if k is None:
                return None
            key = k[2]
            key_node = Node("scalar", line_no, col + pos + len(k[1]), key, "")
            first = seen.get(key)
            if first is not None:
                issues.append(YamlIssue(line_no, key_node.col, f"duplicate key '{key}' (first at line {first})"))
            else:
                seen[key] = line_no
            pos = k.end()
        m = _SIMPLE_FLOW.match(raw, pos)
        if m is None:
            return None
        if m[4] is not None:  # a nested collection
            got = _simple_flow(raw, m.start(4), line_no, col, issues, depth + 1)
            if got is None:
                return None
            child, pos = got
        elif m[2] is not None:
            child = Node("scalar", line_no, col + m.start(2) - 1, m[2], '"')
            pos = m.end()
        else:
            value = m[3].rstrip(" ")
            child = Node("scalar", line_no, col + m.start(3), value, "")
            pos = m.end()
        items.append(child if key_node is None else (key_node, child))  # type: ignore[union-attr]
        m = _SIMPLE_SEP.match(raw, pos)
        if m is None:
            return None
        pos = m.end()
        if m[1] != ",":
            return (node, pos) if m[1] == close else None


def _set_sizes(root: Node) -> int:
    """Each collection's ``size`` (nodes in its subtree), as :func:`parse_yaml` counts them."""
    total = 1
    if root.kind == "map":
        for k, v in root.value:  # type: ignore[union-attr]
            total += 1 + (_set_sizes(v) if v.kind != "scalar" else 1)
    elif root.kind == "seq":
        for v in root.value:  # type: ignore[union-attr]
            total += _set_sizes(v) if v.kind != "scalar" else 1
    root.size = total
    return total


def parse_yaml(text: str, *, max_nodes: int = MAX_NODES) -> ParsedYaml:
    """Parse ``text`` into positioned node trees (one per document).

    Raises :class:`YamlSyntaxError` with a 1-based line and column for syntax errors,
    nesting deeper than :data:`MAX_DEPTH` and alias expansion beyond ``max_nodes``.
    """
    simple = _parse_simple(text) if max_nodes >= 1_000 else None
    if simple is not None:
        return simple
    out = ParsedYaml()
    documents, issues = out.documents, out.issues
    stack: list[tuple[Node, list]] = []  # (collection node, [pending key node or None, seen keys])
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
            elif kind is seq_end or kind is map_end:
                node, _state = stack.pop()
                open_anchors.discard(id(node))
            elif kind is seq_start or kind is map_start:
                line, col = _mark(ev)
                if len(stack) >= MAX_DEPTH:
                    raise YamlSyntaxError(line, col, f"nesting deeper than {MAX_DEPTH} levels")
                coll = Node("seq" if kind is seq_start else "map", line, col, [])
                if ev.anchor:
                    anchors[ev.anchor] = coll
                    open_anchors.add(id(coll))
                stack.append((coll, [None, {}]))
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
            # attach the node (a scalar, an alias's target or a finished collection) to its parent
            if not stack:  # a document's root
                documents.append(node)
                continue
            coll, state = stack[-1]
            coll.size += node.size
            if coll.kind == "seq":
                coll.value.append(node)  # type: ignore[union-attr]
            elif state[0] is None:
                state[0] = node
                if node.kind == "scalar":
                    seen = state[1]
                    first = seen.get(node.value)
                    if first is not None:
                        issues.append(YamlIssue(node.line, node.col, f"duplicate key '{node.value}' (first at line {first})"))
                    else:
                        seen[node.value] = node.line
            else:
                coll.value.append((state[0], node))  # type: ignore[union-attr]
                state[0] = None
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
