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
from itertools import accumulate, repeat
from typing import Iterator

import re

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
    without a look at the stack: watch). A document of the simple kind most rule files are
    (see :func:`parse_simple`) is read without libyaml's events: the same nodes.
    """
    got = parse_simple(text, max_nodes)
    if got is not None:
        return got
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


# -- simple documents without libyaml's events ------------------------------------------------
# Most rule files (and every file of a generated watch set) are one block mapping of
# ``key: value`` lines, values plain words, quoted strings, or one-line flow lists and
# mappings of those. parse_simple reads exactly that subset line by line (a regex a line, no
# event objects) and gives up (None) on anything else (comments, block lists, multi-line or
# escaped scalars, anchors, tags, blank lines, a duplicate key, a character outside the ones
# below...), so that libyaml reads it: the subset is chosen so that its nodes (kind, line,
# column, value, style, size) are the ones the event walk above gives
# (tests/test_yaml_simple.py compares the two on the generated sets, the pack and random
# documents). ~5x faster on 10,000 generated rule files (watch, eleventh session).
# a character outside "\n\x20-\x7e\u00a0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd" (written as
# what is left out: the negated class of those ranges takes ~10 ms to compile on import)
_SIMPLE_CHARS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff\U00010000-\U0010ffff]")
_KEY_LINE = re.compile(r"( *)([A-Za-z_][A-Za-z0-9_]*):(?: (.+))?\Z")
# a plain scalar after "key: " (block context): no indicator first, none of : # quotes
# brackets braces commas & * ! | > % @ ` \ anywhere, no space last
_PLAIN_BLOCK = re.compile("(?:[A-Za-z0-9_(]|[^\x00-\x7f])(?:[^:#'\"\\[\\]{},&*!|>%@`\\\\]*[^:#'\"\\[\\]{},&*!|>%@`\\\\ ])?\\Z")
# a flow item: a double-quoted string without escapes, a single-quoted one without quotes
# inside, or a plain word
_FLOW_ITEM = re.compile(r'"([^"\\]*)"|' + r"'([^']*)'|([A-Za-z0-9_][A-Za-z0-9_.\-]*)")
_FLOW_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*): ")
_DQ_LIST = re.compile(r'\["[^"\\]*"(?:, "[^"\\]*")*\]\Z').match


def _next_col(col: int, length: int) -> int:
    return col + length + 4  # '", "'


def _scalar_dq(line: int, col: int, value: str) -> Node:
    return Node("scalar", line, col, value, '"')


_MAX_KEY = 128  # libyaml's simple keys end at 1,024 characters: longer ones go to the event walk


def _flow_item(value: str, at: int, line: int, col0: int) -> "tuple[Node, int] | None":
    """The quoted string or plain word at ``value[at]`` and the position after it."""
    m = _FLOW_ITEM.match(value, at)
    if m is None:
        return None
    g = m.lastindex
    style = '"' if g == 1 else "'" if g == 2 else ""
    return Node("scalar", line, col0 + at + 1, m.group(g), style), m.end()


def _flow_seq(value: str, at: int, line: int, col0: int) -> "tuple[Node, int] | None":
    """``[item, item, ...]`` at ``value[at]`` (items as :func:`_flow_item`, one space after each comma)."""
    items: list = []
    seq = Node("seq", line, col0 + at + 1, items)
    at += 1
    n = len(value)
    while True:
        got = _flow_item(value, at, line, col0)
        if got is None:
            return None
        items.append(got[0])
        at = got[1]
        if at < n and value[at] == "]":
            seq.size = 1 + len(items)
            return seq, at + 1
        if not value.startswith(", ", at):
            return None
        at += 2


def _flow_map(value: str, at: int, line: int, col0: int) -> "tuple[Node, int] | None":
    """``{key: value, ...}`` at ``value[at]`` (plain word keys, each value a flow item or list)."""
    pairs: list = []
    node = Node("map", line, col0 + at + 1, pairs)
    seen: set = set()
    size = 1
    at += 1
    n = len(value)
    while True:
        m = _FLOW_KEY.match(value, at)
        if m is None or m.group(1) in seen or len(m.group(1)) > _MAX_KEY:
            return None
        seen.add(m.group(1))
        key = Node("scalar", line, col0 + at + 1, m.group(1), "")
        at = m.end()
        got = _flow_seq(value, at, line, col0) if value.startswith("[", at) else _flow_item(value, at, line, col0)
        if got is None:
            return None
        pairs.append((key, got[0]))
        size += 1 + got[0].size
        at = got[1]
        if at < n and value[at] == "}":
            node.size = size
            return node, at + 1
        if not value.startswith(", ", at):
            return None
        at += 2


def parse_simple(text: str, max_nodes: int = MAX_NODES) -> "ParsedYaml | None":
    """:func:`parse_yaml` of a document of the simple kind (see above), or None when ``text``
    is not one (then parse it with :func:`parse_yaml`'s event walk)."""
    if not text or _SIMPLE_CHARS.search(text) is not None:
        return None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if not lines:
        return None
    root = Node("map", 1, 1, [])
    # the open block mappings: (indent, node, its pairs, its keys); a key without a value
    # opens the next one, at the next line's (deeper) indent
    stack: list = [(0, root, root.value, set())]
    indent, node, pairs, seen = stack[-1]
    opening: "Node | None" = None  # the key whose mapping starts on the next line
    match = _KEY_LINE.match
    plain = _PLAIN_BLOCK.match
    for i, line in enumerate(lines, 1):
        m = match(line)
        if m is None:
            return None
        ind = len(m.group(1))
        if opening is not None:  # the first key of the mapping the previous line opened
            if ind <= indent or len(stack) >= MAX_DEPTH:
                return None
            child = Node("map", i, ind + 1, [])
            pairs.append((opening, child))
            stack.append((ind, child, child.value, set()))
            indent, node, pairs, seen = stack[-1]
            opening = None
        elif ind != indent:
            if ind > indent:
                return None
            while stack and stack[-1][0] > ind:
                _close(stack.pop())
            if not stack or stack[-1][0] != ind:
                return None
            indent, node, pairs, seen = stack[-1]
        name = m.group(2)
        if name in seen or len(name) > _MAX_KEY:
            return None  # a duplicate key: the event walk reports it
        seen.add(name)
        key = Node("scalar", i, ind + 1, name, "")
        value = m.group(3)
        if value is None:
            opening = key
            continue
        col0 = ind + len(name) + 2  # the value's offset in the line
        first = value[0]
        if first == "[" and _DQ_LIST(value) is not None:  # the common list: double-quoted strings
            texts = value[2:-2].split('", "')
            # each item's column: its quote, after the items before it and their '", "'
            items = list(map(_scalar_dq, repeat(i), accumulate(map(len, texts), _next_col, initial=col0 + 2), texts))
            pairs.append((key, Node("seq", i, col0 + 1, items, "", 1 + len(items))))
            continue
        if first == "[":
            got = _flow_seq(value, 0, i, col0)
        elif first == "{":
            got = _flow_map(value, 0, i, col0)
        elif first == '"' or first == "'":
            got = _flow_item(value, 0, i, col0)
        elif plain(value) is not None:
            got = Node("scalar", i, col0 + 1, value, ""), len(value)
        else:
            return None
        if got is None or got[1] != len(value):
            return None
        pairs.append((key, got[0]))
    if opening is not None:  # a key without a value on the last line
        return None
    while stack:  # sizes: every mapping counts itself, its keys and its values' sizes
        _close(stack.pop())
    if root.size > max_nodes:
        return None
    return ParsedYaml([root], [])


def _close(entry: tuple) -> None:
    """A block mapping's size once its last pair is in (its nested ones are closed first)."""
    entry[1].size = 1 + len(entry[2]) + sum([v.size for _k, v in entry[2]])
