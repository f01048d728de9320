"""The classifier file of a rule pack (``rules/classifier.yml``): a YAML mapping with
``classifier:``, read by the loader beside the rule and actor files (docs/rules.md, "The
learned classifier in the pack")::

    classifier:
      id: classifier
      title: Learned classifier
      level: medium
      model: classifier.npz        # a file beside this one
      kinds: [claim, statement]    # what it may raise
      thresholds:                  # optional: per kind; default the model file's
        claim: 0.8
      when: always                 # or no-rule-alert
      alert: [slack]               # optional, as a rule's
      throttle: 10m
      tags: [classifier]

Every problem is reported as ``file:line:col: message`` like a rule's; a model file that cannot
be used is reported on the ``model`` key with the model file and the field named.
"""

from __future__ import annotations

import os
from typing import Any

from ..model import LEVELS
from .classifier import RAISABLE, WHEN, ClassifierSpec, ModelError, load_model, NEVER
from .problems import Problem

CLASSIFIER_KEYS = (
    "id", "title", "description", "level", "levels", "model", "kinds", "thresholds", "when", "alert",
    "throttle", "tags", "enabled",
)


def is_classifier_file(root: Any) -> bool:
    return root.kind == "map" and any(k.kind == "scalar" and k.value == "classifier" for k, _v in root.items())


def build_classifier(ctx: Any, root: Any, known_destinations: set[str] | None) -> ClassifierSpec | None:
    """The classifier of a parsed classifier file (``ctx``: the loader's file context), its
    model loaded and checked; None after a problem (added to ``ctx``)."""
    from .loader import _ID_RE, _str, _str_list, _suggest, alert_field, enabled_field, throttle_field

    n_before = len(ctx.problems)
    node = None
    for k, v in root.items():
        if k.kind == "scalar" and k.value == "classifier":
            node = v
        else:
            ctx.add(k, f"unknown key '{k.value}' next to 'classifier:' (put it inside)")
    if node is None or node.kind != "map":
        ctx.add(node if node is not None else root, "'classifier' must be a mapping (id, model, kinds, ...)")
        return None
    fields: dict[str, tuple[Any, Any]] = {}
    for k, v in node.items():
        if k.kind != "scalar":
            ctx.add(k, "keys must be strings")
            continue
        if k.value not in CLASSIFIER_KEYS:
            ctx.add(k, f"unknown key '{k.value}'{_suggest(k.value, CLASSIFIER_KEYS)}")
            continue
        fields[k.value] = (k, v)

    cid = "classifier"
    if "id" in fields:
        value = _str(ctx, fields["id"][1], "id")
        if value is not None:
            if not _ID_RE.match(value):
                ctx.add(fields["id"][1], f"invalid id '{value}': use lowercase letters, digits, '.', '_' and '-'")
            else:
                cid = value
    title = "Learned classifier"
    if "title" in fields:
        title = _str(ctx, fields["title"][1], "title") or title
    description = ""
    if "description" in fields and not fields["description"][1].is_null:
        description = _str(ctx, fields["description"][1], "description") or ""

    def level_value(n: Any, what: str) -> str | None:
        lv = _str(ctx, n, what)
        if lv is None:
            return None
        if lv.strip().lower() not in LEVELS:
            ctx.add(n, f"unknown level '{lv}'{_suggest(lv.strip().lower(), LEVELS)}; use {', '.join(LEVELS)}")
            return None
        return lv.strip().lower()

    level = "medium"
    if "level" in fields:
        level = level_value(fields["level"][1], "level") or level

    kinds: tuple[str, ...] = ("claim", "statement")
    if "kinds" in fields:
        got = []
        for k_node, k in _str_list(ctx, fields["kinds"][1], "kinds") or []:
            kv = k.strip().lower()
            if kv not in RAISABLE:
                ctx.add(k_node, f"kinds: unknown kind '{k}'{_suggest(kv, RAISABLE)}; use {', '.join(RAISABLE)}")
            elif kv not in got:
                got.append(kv)
        if not got and len(ctx.problems) == n_before:
            ctx.add(fields["kinds"][1], "'kinds' is empty (name what the classifier may raise: claim, statement, ...)")
        kinds = tuple(got)

    def per_kind(name: str, parse: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if name not in fields or fields[name][1].is_null:
            return out
        m = fields[name][1]
        if m.kind != "map":
            ctx.add(m, f"'{name}' must be a mapping of kind: value (e.g. claim: 0.8)")
            return out
        for k, v in m.items():
            kv = str(k.value).strip().lower() if k.kind == "scalar" else ""
            if kv not in RAISABLE:
                ctx.add(k, f"{name}: unknown kind '{k.value}'{_suggest(kv, RAISABLE)}; use {', '.join(RAISABLE)}")
                continue
            got = parse(v, f"{name}.{kv}")
            if got is not None:
                out[kv] = got
        return out

    def probability(v: Any, what: str) -> float | None:
        try:
            p = float(v.value) if v.kind == "scalar" and not v.is_null else None
        except (TypeError, ValueError):
            p = None
        if p is None or not 0.0 <= p <= 1.0:
            ctx.add(v, f"{what}: must be a probability from 0 to 1")
            return None
        return p

    thresholds = per_kind("thresholds", probability)
    levels = per_kind("levels", level_value)

    when = "always"
    if "when" in fields:
        w = _str(ctx, fields["when"][1], "when")
        if w is not None:
            if w.strip().lower() not in WHEN:
                ctx.add(fields["when"][1], f"unknown 'when' '{w}'{_suggest(w.strip().lower(), WHEN)}; use {', '.join(WHEN)}")
            else:
                when = w.strip().lower()

    alert = alert_field(ctx, fields, known_destinations)
    throttle = throttle_field(ctx, fields)
    tags: list[str] = ["classifier"]
    if "tags" in fields:
        tags = [v for _n, v in (_str_list(ctx, fields["tags"][1], "tags") or [])]
    enabled = enabled_field(ctx, fields)

    model = None
    model_file = ""
    if "model" not in fields:
        ctx.add(node, "missing required key 'model' (the model file beside this one, e.g. classifier.npz)")
    else:
        m_node = fields["model"][1]
        name = _str(ctx, m_node, "model")
        if name is not None:
            if not name or "/" in name or "\\" in name or name in (".", "..") or not name.lower().endswith(".npz"):
                ctx.add(m_node, f"model: '{name}' is not a file name ending in .npz beside the classifier file (no folders)")
            else:
                model_file = os.path.join(os.path.dirname(ctx.file), name)
                if len(ctx.problems) == n_before:  # a model is read only for an otherwise valid file
                    try:
                        model = load_model(model_file)
                    except ModelError as exc:
                        ctx.add(m_node, f"model: {exc}")
    if model is not None:
        for k in kinds:
            if k not in model.classes:
                ctx.add(fields["kinds"][1] if "kinds" in fields else fields["model"][1],
                        f"kinds: the model has no class '{k}' (its classes: {', '.join(model.classes)})")
        for k in thresholds:
            if k not in kinds:
                ctx.add(fields["thresholds"][1], f"thresholds: '{k}' is not among kinds ({', '.join(kinds)})")
    if len(ctx.problems) > n_before or model is None:
        return None
    merged = {k: thresholds.get(k, model.thresholds.get(k, NEVER)) for k in kinds}
    return ClassifierSpec(
        id=cid, title=title, level=level, model=model, model_file=model_file, kinds=kinds, thresholds=merged,
        file=ctx.file, line=node.line, description=description, tags=tuple(tags), alert=tuple(alert),
        throttle=throttle, enabled=enabled, when=when, levels={k: v for k, v in levels.items() if k in kinds},
    )


def one_classifier(specs: list[ClassifierSpec], problems: list[Problem]) -> ClassifierSpec | None:
    """The set's classifier: at most one (a second is a problem)."""
    for extra in specs[1:]:
        first = specs[0]
        problems.append(Problem(extra.file, extra.line, 1,
                                f"a second classifier (the first is at {first.file}:{first.line}); a rule set has one"))
    return specs[0] if specs else None
