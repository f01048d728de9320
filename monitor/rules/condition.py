"""Rule conditions: ``claim and (group or place) and not denial``, ``1 of claim_*``, ``all of them``.

Grammar (``not`` binds tighter than ``and``, ``and`` tighter than ``or``)::

    expr  := term ("or" term)*
    term  := factor ("and" factor)*
    factor:= "not" factor | "(" expr ")" | NAME | QUANT "of" (PATTERN | "them")
    QUANT := "all" | "any" | a positive integer (at least that many)

Everything here is iterative: a shunting-yard parser, an explicit-stack tree builder and a
short-circuit bytecode evaluator, so a condition nested 100,000 levels deep is an error
message or a result, never a RecursionError.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

MAX_CONDITION_CHARS = 20_000

# AST nodes are tuples: ("sel", name) | ("not", node) | ("and", nodes) | ("or", nodes) |
# ("atleast", n, names)
Node = tuple

# bytecode
SEL, NOT, JUMP_IF_FALSE, JUMP_IF_TRUE, AT_LEAST = range(5)

_TOKEN = re.compile(r"\s*(?:(\()|(\))|([A-Za-z0-9_*?\[\]]+)|(\S+?))")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_KEYWORDS = {"and", "or", "not", "of", "them", "all", "any"}
RESERVED = frozenset(_KEYWORDS)
_PREC = {"or": 1, "and": 2, "not": 3}
_HINTS = {"&&": "and", "&": "and", "||": "or", "|": "or", "!": "not"}


class ConditionError(ValueError):
    """A problem in a condition; ``pos`` is the 0-based character offset in the condition."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


class ConditionErrors(ValueError):
    def __init__(self, errors: list[ConditionError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class _Tok:
    kind: str  # name | and | or | not | ( | ) | quant
    text: str
    pos: int
    quant: tuple[str, int, str] | None = None  # (word, n, pattern)


def _tokens(text: str) -> list[_Tok]:
    raw: list[tuple[str, str, int]] = []
    pos = 0
    n = len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if m is None:  # only trailing whitespace left
            break
        if m.end() == pos:  # pragma: no cover - the pattern always consumes
            break
        pos = m.end()
        if m.group(1):
            raw.append(("(", "(", m.start(1)))
        elif m.group(2):
            raw.append((")", ")", m.start(2)))
        elif m.group(3):
            word = m.group(3)
            low = word.lower()
            raw.append((low if low in _KEYWORDS else "name", word, m.start(3)))
        elif m.group(4):
            bad = m.group(4)
            start = m.start(4)
            for sym, hint in sorted(_HINTS.items(), key=lambda kv: -len(kv[0])):
                if text.startswith(sym, start):
                    raise ConditionError(f"unexpected '{sym}' (write '{hint}')", start)
            raise ConditionError(f"unexpected character '{bad[0]}'", start)
    # fold "<quant> of <pattern>" into one token
    out: list[_Tok] = []
    i = 0
    while i < len(raw):
        kind, word, p = raw[i]
        is_quant = kind in ("all", "any") or (kind == "name" and word.isdigit())
        if is_quant and i + 1 < len(raw) and raw[i + 1][0] == "of":
            if i + 2 >= len(raw) or raw[i + 2][0] not in ("name", "them"):
                where = raw[i + 2][2] if i + 2 < len(raw) else len(text)
                raise ConditionError(f"'{word} of' needs a selection pattern or 'them'", where)
            pattern = raw[i + 2][1]
            count = 0 if kind in ("all", "any") else int(word)
            if kind == "name" and count < 1:
                raise ConditionError(f"'{word} of': the count must be at least 1", p)
            out.append(_Tok("quant", f"{word} of {pattern}", p, (kind if kind != "name" else "n", count, pattern)))
            i += 3
            continue
        if kind in ("of", "them", "all", "any"):
            raise ConditionError(f"unexpected '{word}' (write e.g. '1 of claim_*' or 'all of them')", p)
        out.append(_Tok(kind, word, p))
        i += 1
    return out


def _describe(tok: _Tok | None) -> str:
    return "the end of the condition" if tok is None else f"'{tok.text}'"


def _to_rpn(tokens: list[_Tok], text: str) -> list[_Tok]:
    """Shunting-yard with position-aware syntax errors."""
    output: list[_Tok] = []
    ops: list[_Tok] = []
    expect_operand = True
    last: _Tok | None = None
    for tok in tokens:
        if expect_operand:
            if tok.kind in ("name", "quant"):
                output.append(tok)
                expect_operand = False
            elif tok.kind in ("not", "("):
                ops.append(tok)
            else:
                after = f" after '{last.text}'" if last is not None else " at the start"
                raise ConditionError(f"expected a selection name, 'not' or '(' but found {_describe(tok)}{after}", tok.pos)
        else:
            if tok.kind in ("and", "or"):
                while ops and ops[-1].kind != "(" and _PREC[ops[-1].kind] >= _PREC[tok.kind]:
                    output.append(ops.pop())
                ops.append(tok)
                expect_operand = True
            elif tok.kind == ")":
                while ops and ops[-1].kind != "(":
                    output.append(ops.pop())
                if not ops:
                    raise ConditionError("unbalanced ')': no '(' before it", tok.pos)
                ops.pop()
            else:
                raise ConditionError(f"expected 'and', 'or' or ')' but found {_describe(tok)}", tok.pos)
        last = tok
    if expect_operand:
        if last is None:
            raise ConditionError("is empty", 0)
        raise ConditionError(f"unexpected end after '{last.text}'", len(text.rstrip()))
    while ops:
        op = ops.pop()
        if op.kind == "(":
            raise ConditionError("'(' is never closed", op.pos)
        output.append(op)
    return output


@dataclass(frozen=True, eq=False)
class Condition:
    source: str
    tree: Node = field(repr=False)  # may be nested thousands deep: never compared, hashed or printed
    names: frozenset[str] = frozenset()  # selections referenced
    positive: frozenset[str] = frozenset()  # selections referenced outside any 'not' (their matches are reported)

    def program(self, index: Mapping[str, int]) -> tuple[tuple[int, object], ...]:
        return compile_program(self.tree, index)

    def evaluate(self, truth: Callable[[str], bool]) -> bool:
        """Evaluate with ``truth(selection_name)`` (used by tests and the reference matcher)."""
        names = sorted(self.names)
        idx = {n: i for i, n in enumerate(names)}
        return run_program(self.program(idx), lambda i: truth(names[i]))

    def necessary(self, cost: Callable[[str], float]) -> frozenset[str] | None:
        return necessary_selections(self.tree, cost)


def parse_condition(text: str, selections: Sequence[str]) -> Condition:
    """Parse ``text`` against the defined selection names; raises :class:`ConditionErrors`."""
    if len(text) > MAX_CONDITION_CHARS:
        raise ConditionErrors([ConditionError(f"is {len(text):,} characters long (at most {MAX_CONDITION_CHARS:,})", 0)])
    try:
        rpn = _to_rpn(_tokens(text), text)
    except ConditionError as exc:
        raise ConditionErrors([exc]) from None
    defined = list(selections)
    errors: list[ConditionError] = []
    stack: list[Node] = []
    for tok in rpn:
        if tok.kind == "name":
            if tok.text not in defined:
                close = difflib.get_close_matches(tok.text, defined, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                errors.append(ConditionError(f"undefined selection '{tok.text}'{hint}", tok.pos))
            stack.append(("sel", tok.text))
        elif tok.kind == "quant":
            word, count, pattern = tok.quant  # type: ignore[misc]
            names = defined if pattern.lower() == "them" else [s for s in defined if fnmatch.fnmatchcase(s, pattern)]
            names = sorted(set(names))
            if not names:
                errors.append(ConditionError(f"'{tok.text}' matches no selection", tok.pos))
                stack.append(("atleast", 1, ()))
                continue
            if word == "all":
                count = len(names)
            elif word == "any":
                count = 1
            elif count > len(names):
                errors.append(ConditionError(f"'{tok.text}' needs {count} selections but only {len(names)} match", tok.pos))
            stack.append(("atleast", count, tuple(names)))
        elif tok.kind == "not":
            stack.append(("not", stack.pop()))
        else:  # and / or: flatten chains into one n-ary node
            b = stack.pop()
            a = stack.pop()
            kind = tok.kind
            children: list[Node] = []
            for part in (a, b):
                if part[0] == kind:
                    children.extend(part[1])
                else:
                    children.append(part)
            stack.append((kind, tuple(children)))
    if errors:
        raise ConditionErrors(errors)
    tree = stack[0]
    names, positive = _names(tree)
    return Condition(text, tree, names, positive)


def _names(tree: Node) -> tuple[frozenset[str], frozenset[str]]:
    names: set[str] = set()
    positive: set[str] = set()
    stack: list[tuple[Node, bool]] = [(tree, True)]
    while stack:
        node, pos = stack.pop()
        kind = node[0]
        if kind == "sel":
            names.add(node[1])
            if pos:
                positive.add(node[1])
        elif kind == "atleast":
            names.update(node[2])
            if pos:
                positive.update(node[2])
        elif kind == "not":
            stack.append((node[1], not pos))
        else:
            stack.extend((c, pos) for c in node[1])
    return frozenset(names), frozenset(positive)


def single_condition(name: str) -> Condition:
    return Condition(name, ("sel", name), frozenset({name}), frozenset({name}))


# -- compilation and evaluation -------------------------------------------------------------
def compile_program(tree: Node, index: Mapping[str, int]) -> tuple[tuple[int, object], ...]:
    """Bytecode with short-circuit jumps; built with an explicit stack."""
    program: list[list] = []
    pending: dict[int, list[int]] = {}
    tasks: list[tuple[str, object]] = [("node", tree)]
    group = 0
    while tasks:
        what, arg = tasks.pop()
        if what == "emit":
            program.append(list(arg))  # type: ignore[arg-type]
        elif what == "jump":
            gid, op = arg  # type: ignore[misc]
            pending[gid].append(len(program))
            program.append([op, -1])
        elif what == "patch":
            for at in pending.pop(arg):  # type: ignore[arg-type]
                program[at][1] = len(program)
        else:
            node = arg
            kind = node[0]  # type: ignore[index]
            if kind == "sel":
                program.append([SEL, index[node[1]]])  # type: ignore[index]
            elif kind == "atleast":
                program.append([AT_LEAST, (node[1], tuple(index[n] for n in node[2]))])  # type: ignore[index]
            elif kind == "not":
                tasks.append(("emit", (NOT, None)))
                tasks.append(("node", node[1]))  # type: ignore[index]
            else:
                group += 1
                pending[group] = []
                op = JUMP_IF_FALSE if kind == "and" else JUMP_IF_TRUE
                children = node[1]  # type: ignore[index]
                tasks.append(("patch", group))
                for i, child in enumerate(reversed(children)):
                    if i:
                        tasks.append(("jump", (group, op)))
                    tasks.append(("node", child))
    return tuple((op, arg) for op, arg in program)


def run_program(program: Sequence[tuple[int, object]], truth: Callable[[int], bool]) -> bool:
    """Evaluate bytecode; ``truth(i)`` gives selection ``i``'s value (called lazily)."""
    if len(program) == 1 and program[0][0] == SEL:
        return bool(truth(program[0][1]))  # type: ignore[arg-type]
    stack: list[bool] = []
    pc = 0
    end = len(program)
    while pc < end:
        op, arg = program[pc]
        if op == SEL:
            stack.append(bool(truth(arg)))  # type: ignore[arg-type]
        elif op == JUMP_IF_FALSE:
            if not stack[-1]:
                pc = arg  # type: ignore[assignment]
                continue
            stack.pop()
        elif op == JUMP_IF_TRUE:
            if stack[-1]:
                pc = arg  # type: ignore[assignment]
                continue
            stack.pop()
        elif op == NOT:
            stack[-1] = not stack[-1]
        else:
            need, idxs = arg  # type: ignore[misc]
            got = 0
            left = len(idxs)
            for i in idxs:
                if truth(i):
                    got += 1
                    if got >= need:
                        break
                left -= 1
                if got + left < need:
                    break
            stack.append(got >= need)
        pc += 1
    return stack[-1]


def necessary_selections(tree: Node, cost: Callable[[str], float]) -> frozenset[str] | None:
    """A cheap set of selections at least one of which must match for the condition to be true.

    ``None`` when there is none (e.g. ``not denial`` is true with nothing matched). For each
    node both "necessary for true" and "necessary for false" sets are tracked, so negations
    (``not (not a)``, De Morgan) keep their anchors.
    """

    def set_cost(s: frozenset[str]) -> float:
        return sum(map(cost, s))  # (the same additions, in the same order, as a generator's)

    def best(sets: list[frozenset[str] | None]) -> frozenset[str] | None:
        cands = [s for s in sets if s is not None]
        if len(cands) == 1:  # nothing to compare
            return cands[0]
        return min(cands, key=lambda s: (set_cost(s), sorted(s))) if cands else None

    def union(sets: list[frozenset[str] | None]) -> frozenset[str] | None:
        if any(s is None for s in sets):
            return None
        return frozenset().union(*sets)  # type: ignore[arg-type]

    return fold_necessary(tree, cost, leaf=lambda names: names, empty=None, best=best, union=union)


def fold_necessary(tree: Node, cost: Callable[[str], float], *, leaf: Callable[[frozenset[str]], Any],
                   empty: Any, best: Callable[[list[Any]], Any], union: Callable[[list[Any]], Any]) -> Any:
    """The walk behind :func:`necessary_selections` and the matcher's gates: for each node, what
    is necessary for it to be true and what for it to be false, bottom-up without recursion.
    ``leaf`` wraps a set of selection names, ``empty`` stands for "nothing known", ``best``
    picks among alternatives (and: for true; or: for false) and ``union`` combines what each
    child needs (or: for true; and: for false). The nodes are visited in an order made once per
    tree (:func:`_fold_plan`; 10,000 rules share a few condition trees: watch); every node's
    result is a pure function of its children's, so the order changes nothing."""
    results: list[tuple[Any, Any]] = []
    append = results.append
    for kind, arg, kids in _fold_plan(tree):
        if kind == "sel":
            append((leaf(arg), empty))
        elif kind == "atleast":
            need, names = arg
            if not names or need < 1:
                append((empty, empty))
            else:
                chosen = sorted(names, key=lambda n: (cost(n), n))[: len(names) - need + 1]
                append((leaf(frozenset(chosen)), empty))
        elif kind == "not":
            t, f = results[kids[0]]
            append((f, t))
        else:
            sub = [results[k] for k in kids]
            if kind == "and":
                append((best([t for t, _ in sub]), union([f for _, f in sub])))
            else:
                append((union([t for t, _ in sub]), best([f for _, f in sub])))
    return results[-1][0]


_PLANS: dict[int, tuple[Node, list]] = {}  # id(tree) -> (the tree, kept alive so its id stays its own; its plan)


def _fold_plan(tree: Node) -> list[tuple[str, Any, tuple[int, ...]]]:
    """``tree``'s nodes in post-order (children before their parent, the root last), each as
    ``(kind, arg, indexes of its children in this list)``: ``arg`` is a selection's name as a
    frozenset, an ``atleast``'s (need, names), else None. Made once per tree (bounded cache)."""
    got = _PLANS.get(id(tree))
    if got is not None and got[0] is tree:
        return got[1]
    plan: list[tuple[str, Any, tuple[int, ...]]] = []
    index: dict[int, int] = {}
    stack: list[tuple[Node, bool]] = [(tree, False)]
    while stack:
        node, done = stack.pop()
        kind = node[0]
        if kind == "sel":
            index[id(node)] = len(plan)
            plan.append((kind, frozenset({node[1]}), ()))
            continue
        if kind == "atleast":
            index[id(node)] = len(plan)
            plan.append((kind, (node[1], node[2]), ()))
            continue
        children = [node[1]] if kind == "not" else list(node[1])
        if not done:
            stack.append((node, True))
            stack.extend((c, False) for c in children)
            continue
        index[id(node)] = len(plan)
        plan.append((kind, None, tuple(index[id(c)] for c in children)))
    if len(_PLANS) >= 20_000:
        _PLANS.clear()
    _PLANS[id(tree)] = (tree, plan)
    return plan


def cost_free(tree: Node) -> bool:
    """Whether :func:`necessary_selections` and the matcher's ``required_sets`` of ``tree`` are
    the same whatever the selections' costs: no node of the walk ever chooses between two
    different sets (an ``or`` of selections, ``1 of them``), so a rule's anchor and gates can
    be shared by every rule of its shape, not only by those with equal costs (watch). Walks
    the candidate sets as ``required_sets`` does, without costs, and stops at the first
    choice (so each node has at most one set: no products grow). May say False without need
    (a choice on a side the result does not use): that only shares less."""

    class _Choice(Exception):
        pass

    def one(sets: list) -> list:
        out = list(dict.fromkeys(sets))
        if len(out) > 1:
            raise _Choice
        return out

    def union(subs: list) -> list:
        if not subs or any(not x for x in subs):
            return []
        out: list = [frozenset()]
        for x in subs:
            out = one([o | s for o in out for s in x])
        return out

    stack = [tree]
    while stack:  # an ``atleast`` needing more than one of several: its choice is by cost
        node = stack.pop()
        if node[0] == "atleast" and node[1] > 1 and len(node[2]) > 1:
            return False
        if node[0] == "not":
            stack.append(node[1])
        elif node[0] in ("and", "or"):
            stack.extend(node[1])
    try:  # an ``atleast`` of one: all its names whatever their order (the cost below)
        fold_necessary(tree, lambda _name: 0.0, leaf=lambda names: [names], empty=[],
                       best=lambda parts: one([s for p in parts for s in p]), union=union)
    except _Choice:
        return False
    return True
