"""The condition walk by a plan made once per tree (condition._fold_plan) gives what the walk
by a stack gave: the anchor sets and the gate sets of random conditions and costs."""

from __future__ import annotations

import random
from typing import Any, Callable

from monitor.rules import condition
from monitor.rules.condition import necessary_selections, parse_condition
from monitor.rules.matcher import by_name_cost, required_sets


def _stack_fold(tree: Any, cost: Callable[[str], float], *, leaf: Callable, empty: Any, best: Callable, union: Callable) -> Any:
    """The walk as it was before the plan (a stack with "done" flags, results by id)."""
    results: dict[int, tuple[Any, Any]] = {}
    stack: list[tuple[Any, bool]] = [(tree, False)]
    while stack:
        node, done = stack.pop()
        kind = node[0]
        if kind == "sel":
            results[id(node)] = (leaf(frozenset({node[1]})), empty)
            continue
        if kind == "atleast":
            need, names = node[1], node[2]
            if not names or need < 1:
                results[id(node)] = (empty, empty)
            else:
                chosen = sorted(names, key=lambda n: (cost(n), n))[: len(names) - need + 1]
                results[id(node)] = (leaf(frozenset(chosen)), empty)
            continue
        children = [node[1]] if kind == "not" else list(node[1])
        if not done:
            stack.append((node, True))
            stack.extend((c, False) for c in children)
            continue
        sub = [results[id(c)] for c in children]
        if kind == "not":
            results[id(node)] = (sub[0][1], sub[0][0])
        elif kind == "and":
            results[id(node)] = (best([t for t, _ in sub]), union([f for _, f in sub]))
        else:
            results[id(node)] = (union([t for t, _ in sub]), best([f for _, f in sub]))
    return results[id(tree)][0]


def _random_condition(rng: random.Random, names: list[str], depth: int = 0) -> str:
    r = rng.random()
    if depth >= 3 or r < 0.3:
        return rng.choice(names)
    if r < 0.4:
        return f"not {_random_condition(rng, names, depth + 1)}"
    if r < 0.5:
        return f"{rng.randint(1, 3)} of them"
    op = rng.choice(["and", "or"])
    parts = [_random_condition(rng, names, depth + 1) for _ in range(rng.randint(2, 3))]
    return "(" + f" {op} ".join(parts) + ")"


def test_the_walk_by_a_plan_gives_the_stack_walks_sets(monkeypatch) -> None:  # noqa: ANN001
    rng = random.Random(11)
    names = list("abcde")
    conds = [_random_condition(rng, names) for _ in range(300)] + ["(a and b) or c", "a", "not (a and b)", "2 of them"]
    cases = []
    for text in conds:
        tree = parse_condition(text, names).tree
        for _ in range(5):
            costs = {n: rng.choice([0.5, 1.0, 2.0, 3.0, 7.5, 0.1 + 0.2]) for n in names}
            cases.append((tree, costs))
    got = [(necessary_selections(t, c.__getitem__), required_sets(t, c.__getitem__)) for t, c in cases]
    # the same tree asked again: its plan is read back, not made again
    assert [(necessary_selections(t, c.__getitem__), required_sets(t, c.__getitem__)) for t, c in cases] == got
    monkeypatch.setattr(condition, "fold_necessary", _stack_fold)
    monkeypatch.setattr("monitor.rules.matcher.fold_necessary", _stack_fold)
    want = [(necessary_selections(t, c.__getitem__), required_sets(t, c.__getitem__)) for t, c in cases]
    assert got == want


def test_a_plan_is_made_once_per_tree_and_kept_with_it() -> None:
    tree = parse_condition("(a and b) or c", ["a", "b", "c"]).tree
    plan = condition._fold_plan(tree)
    assert condition._fold_plan(tree) is plan
    assert [kind for kind, _arg, _kids in plan][-1] == "or"  # the root last
    assert sorted(kind for kind, _arg, _kids in plan) == ["and", "or", "sel", "sel", "sel"]
    # an equal tree that is another object gets a plan of its own
    other = parse_condition("(a and b) or c ", ["a", "b", "c"]).tree
    assert condition._fold_plan(other) == plan


def test_the_cost_by_name_reads_each_selections_cost() -> None:
    class Sel:
        def __init__(self, cost: float) -> None:
            self.cost = cost

    cost = by_name_cost({"a": Sel(1.5), "who": Sel(0.25)})
    assert cost("a") == 1.5 and cost("who") == 0.25
