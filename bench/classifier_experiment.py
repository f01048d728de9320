"""A learned text classifier beside the hand-written rules: an experiment (docs/rules.md, "A learned
classifier beside the rules").

Trains a classifier (TF-IDF over character and word n-grams of ``monitor.text.normalize``d text,
then a linear model) on labelled corpus items and predicts a label (claim / statement / denial /
report / none) with a probability for each item. Figures use the definitions of
``claimwatch rules eval``:

* classifier alone: an item is alerted when its predicted label is claim or statement with
  probability >= T (T chosen on dev-B); recall of claim/statement = items of that label alerted
  with that label; denial/report: items predicted as that label (any probability);
* rules alone: ``monitor.rules.evaluate.evaluate`` with ``load_matcher([rules])`` and ``classifier=False``
  (the pack's shipped classifier, monitor/rules/classifier.py, left out);
* rules OR classifier: the rules' alerts plus the classifier's claim/statement at probability >= H;
* rules OR classifier, precision kept: H the lowest threshold whose dev-B alert precision is at
  most 0.01 below the rules' own;
* rules AND NOT classifier-none: the rules' alerts, dropped where the classifier says ``none`` with
  probability >= N (a precision filter).

Protocol: every variant is trained on dev-A (sha256(item id) even) and measured on dev-B (odd);
T, H and N are chosen on dev-B (best alert F1; ties: the median tied threshold); dev-B's items
whose actor no dev-A item has get a table of their own. The ``--final`` variant (logistic
regression) is then trained on all of dev and measured, with its dev-B thresholds, on ``--eval``
paths (every split of them) and on the corpus's ``test`` split with ``--test`` (run it at most
twice a round, figures only). Never tune on test.

    .venv/bin/python bench/classifier_experiment.py                      # dev-A -> dev-B, all variants
    .venv/bin/python bench/classifier_experiment.py --eval /path/heldout/  # + a corpus folder
    .venv/bin/python bench/classifier_experiment.py --test --speed        # + test split, speed
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from monitor.rules.evaluate import BELOW_ALERT, LABELS, POSITIVE, CorpusError, Item, read_corpus  # noqa: E402
from monitor.text import normalize  # noqa: E402

GRID = [round(x, 2) for x in np.arange(0.20, 1.0001, 0.025)]
NEVER = 1.01  # a threshold no probability reaches (the combination changes nothing)


def half(item_id: str) -> str:
    """dev-A (sha256 of the item id even) or dev-B (odd), as the rule rounds split dev."""
    return "A" if int(hashlib.sha256(item_id.encode("utf-8")).hexdigest(), 16) % 2 == 0 else "B"


# -- models ---------------------------------------------------------------------------------
def _prep(item_or_text: Any) -> str:
    return normalize(item_or_text if isinstance(item_or_text, str) else item_or_text.text)


def _features(min_df: int = 1):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    return FeatureUnion([
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=min_df,
                                 max_features=300_000, dtype=np.float32)),
        ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, min_df=min_df,
                                 token_pattern=r"(?u)\b\w+\b", dtype=np.float32)),
    ])


class TextModel:
    """One pipeline over normalised text; ``predict_proba(texts) -> (n, len(LABELS))``."""

    def __init__(self, kind: str, min_df: int = 1):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline

        if kind == "logreg":
            clf = LogisticRegression(C=10.0, class_weight="balanced", max_iter=3000)
        elif kind == "svm":
            from sklearn.calibration import CalibratedClassifierCV
            from sklearn.svm import LinearSVC

            clf = CalibratedClassifierCV(LinearSVC(C=0.5, class_weight="balanced"), cv=3, method="sigmoid")
        else:
            raise ValueError(kind)
        self.pipe = Pipeline([("tfidf", _features(min_df)), ("clf", clf)])

    def fit(self, texts: list[str], labels: list[str]) -> "TextModel":
        self.pipe.fit(texts, labels)
        return self

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        p = self.pipe.predict_proba(texts)
        out = np.zeros((len(texts), len(LABELS)))
        for j, c in enumerate(self.pipe.classes_):
            out[:, LABELS.index(c)] = p[:, j]
        return out


class Model:
    """A variant: ``logreg``, ``svm`` (linear SVM, sigmoid-calibrated) or ``logreg-lang`` (one
    logistic regression per language, the all-language one for a language it has not seen)."""

    def __init__(self, variant: str):
        self.variant = variant
        self.base = TextModel("svm" if variant == "svm" else "logreg")
        self.per_lang: dict[str, TextModel] = {}

    def fit(self, items: Sequence[Item]) -> "Model":
        texts = [_prep(it) for it in items]
        labels = [it.label for it in items]
        self.base.fit(texts, labels)
        if self.variant == "logreg-lang":
            groups: dict[str, list[int]] = defaultdict(list)
            for i, it in enumerate(items):
                groups[it.lang].append(i)
            for lang, idx in groups.items():
                ls = [labels[i] for i in idx]
                if len(idx) >= 50 and len(set(ls)) >= 3:
                    self.per_lang[lang] = TextModel("logreg").fit([texts[i] for i in idx], ls)
        return self

    def predict_proba(self, texts: Sequence[str], langs: Sequence[str]) -> np.ndarray:
        norm = [_prep(t) for t in texts]
        out = self.base.predict_proba(norm)
        for lang, model in self.per_lang.items():
            idx = [i for i, lg in enumerate(langs) if lg == lang]
            if idx:
                out[idx] = model.predict_proba([norm[i] for i in idx])
        return out


# -- predictions and figures ----------------------------------------------------------------
@dataclass
class Pred:
    """What a system says of one item: its alert kinds (claim/statement) and below-alert kinds."""

    alerts: set[str] = field(default_factory=set)
    others: set[str] = field(default_factory=set)  # denial / report (any level)


def clf_preds(proba: np.ndarray, t: float) -> list[Pred]:
    out = []
    for row in proba:
        j = int(row.argmax())
        lab = LABELS[j]
        p = Pred()
        if lab in POSITIVE and row[j] >= t:
            p.alerts.add(lab)
        elif lab in BELOW_ALERT:
            p.others.add(lab)
        out.append(p)
    return out


def rules_preds(rules_path: Path, items: Sequence[Item], progress: Callable[[int], None] | None = None) -> list[Pred]:
    from monitor.rules.cache import load_matcher
    from monitor.rules.evaluate import evaluate

    # the rules alone: the pack's own learned classifier (rules/classifier.yml) left out
    ev = evaluate(load_matcher([rules_path]), items, progress=progress, classifier=False)
    out = []
    for r in ev.results:
        p = Pred({h.kind for h in r.alert_hits if h.kind in POSITIVE}
                 | ({"_watch"} if any(h.kind not in POSITIVE for h in r.alert_hits) else set()),
                 {h.kind for h in r.hits if h.kind in BELOW_ALERT})
        out.append(p)
    return out


def combine_or(rules: list[Pred], proba: np.ndarray, h: float) -> list[Pred]:
    clf = clf_preds(proba, h)
    return [Pred(r.alerts | c.alerts, set(r.others)) for r, c in zip(rules, clf)]


def combine_and_not(rules: list[Pred], proba: np.ndarray, n: float) -> list[Pred]:
    none = LABELS.index("none")
    return [Pred(set() if row[none] >= n else set(r.alerts), set(r.others)) for r, row in zip(rules, proba)]


def _rate(a: int, b: int) -> float | None:
    return a / b if b else None


def figures(items: Sequence[Item], preds: Sequence[Pred]) -> dict[str, Any]:
    """The ``rules eval`` figures of ``preds`` (an alert = any alert kind, ``_watch`` included)."""
    out: dict[str, Any] = {"n": len(items)}
    for label in LABELS[:-1]:
        pool = (lambda p: p.alerts) if label in POSITIVE else (lambda p: p.others)  # noqa: E731
        rel = sum(it.label == label for it in items)
        pred = sum(label in pool(p) for p in preds)
        true = sum(it.label == label and label in pool(p) for it, p in zip(items, preds))
        out[label] = {"relevant": rel, "predicted": pred, "true": true,
                      "recall": _rate(true, rel), "precision": _rate(true, pred)}

    def alerts(sel: Sequence[int]) -> dict[str, Any]:
        rel = sum(items[i].positive for i in sel)
        pred = sum(bool(preds[i].alerts) for i in sel)
        true = sum(items[i].positive and bool(preds[i].alerts) for i in sel)
        p, r = _rate(true, pred), _rate(true, rel)
        f1 = 2 * p * r / (p + r) if p is not None and r is not None and p + r else None
        return {"n": len(sel), "relevant": rel, "predicted": pred, "true": true, "precision": p, "recall": r, "f1": f1}

    out["alerts"] = alerts(range(len(items)))
    langs: dict[str, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        langs[it.lang].append(i)
    out["languages"] = {lang: alerts(sel) for lang, sel in sorted(langs.items())}
    return out


def best(items: Sequence[Item], make: Callable[[float], list[Pred]], grid: Sequence[float]) -> tuple[float, float]:
    """The threshold of ``grid`` with the best alert F1 (ties: the median of the tied thresholds)."""
    scores = [(figures(items, make(t))["alerts"]["f1"] or 0.0, t) for t in grid]
    top = max(f1 for f1, _ in scores)
    tied = [t for f1, t in scores if f1 >= top - 1e-12]
    return tied[len(tied) // 2], top


# -- printing -------------------------------------------------------------------------------
def _fmt(x: dict[str, Any], key: str = "recall") -> str:
    v = x[key]
    if v is None:
        return "-"
    num = x["true"]
    den = x["relevant"] if key == "recall" else x["predicted"]
    return f"{v:.3f} ({num}/{den})"


def _num(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def print_table(console: Console, title: str, rows: list[tuple[str, dict[str, Any]]]) -> None:
    table = Table(title=title, title_justify="left")
    for col in ("system", "claim R", "statement R", "alert P", "alert R", "F1", "claim/stmt P", "denial R", "report R"):
        table.add_column(col)
    for name, f in rows:
        a = f["alerts"]
        cp, sp = f["claim"]["precision"], f["statement"]["precision"]
        table.add_row(
            name, _fmt(f["claim"]), _fmt(f["statement"]), _fmt(a, "precision"), _fmt(a), f"{a['f1'] or 0:.3f}",
            f"{_num(cp, 2)} / {_num(sp, 2)}",
            _fmt(f["denial"]), _fmt(f["report"]),
        )
    console.print(table)
    langs = sorted({lg for _, f in rows for lg in f["languages"]})
    lt = Table(title=f"{title}: alert precision / recall by language", title_justify="left")
    lt.add_column("system")
    for lg in langs:
        lt.add_column(lg)
    for name, f in rows:
        cells = []
        for lg in langs:
            a = f["languages"].get(lg)
            cells.append("-" if a is None else f"{_num(a['precision'])} / {_num(a['recall'])} (n {a['n']})")
        lt.add_row(name, *cells)
    console.print(lt)


# -- the experiment -------------------------------------------------------------------------
def systems(items: Sequence[Item], proba: np.ndarray, rules: list[Pred], th: dict[str, float]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"classifier (T={th['alone']:.3g})", figures(items, clf_preds(proba, th["alone"]))),
        ("rules", figures(items, rules)),
        (f"rules OR classifier (H={th['or']:.3g})", figures(items, combine_or(rules, proba, th["or"]))),
        (f"rules OR classifier, precision kept (H={th['or_kept']:.3g})", figures(items, combine_or(rules, proba, th["or_kept"]))),
        (f"rules AND NOT none (N={th['and_not']:.3g})", figures(items, combine_and_not(rules, proba, th["and_not"]))),
    ]


def speed(model: Model, items: Sequence[Item], console: Console) -> dict[str, Any]:
    texts = [it.text for it in items]
    langs = [it.lang for it in items]
    model.predict_proba(texts[:50], langs[:50])  # warm
    t0 = time.perf_counter()
    model.predict_proba(texts, langs)
    batch = time.perf_counter() - t0
    k = min(300, len(texts))
    t0 = time.perf_counter()
    for i in range(k):
        model.predict_proba([texts[i]], [langs[i]])
    single = time.perf_counter() - t0
    size = len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    n_feat = len(model.base.pipe.named_steps["tfidf"].get_feature_names_out())
    out = {"batch_msgs_per_s": len(texts) / batch, "single_msgs_per_s": k / single,
           "single_us_per_msg": single / k * 1e6, "model_bytes": size, "features": n_feat}
    console.print(f"speed ({model.variant}, {len(texts)} items): batch {out['batch_msgs_per_s']:,.0f} msgs/s, "
                  f"one at a time {out['single_msgs_per_s']:,.0f} msgs/s ({out['single_us_per_msg']:,.0f} µs/msg); "
                  f"model {size / 1e6:.1f} MB pickled, {n_feat:,} features")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", nargs="+", default=[str(REPO / "corpus")], help="training corpus paths (default: corpus/)")
    ap.add_argument("--split", default="dev", choices=("dev", "test", "all"), help="training split (default dev)")
    ap.add_argument("--rules", default=str(REPO / "rules"), help="rules folder for the rules figures (default rules/)")
    ap.add_argument("--variants", nargs="+", default=["logreg", "svm", "logreg-lang"],
                    choices=("logreg", "svm", "logreg-lang"), help="variants tried on dev-A -> dev-B")
    ap.add_argument("--final", default="logreg", choices=("logreg", "svm", "logreg-lang"),
                    help="the variant trained on all of the split for --eval/--test (default logreg: the variants tie on dev-B)")
    ap.add_argument("--eval", nargs="+", default=[], metavar="PATH", help="corpus files or folders to measure (every split)")
    ap.add_argument("--test", action="store_true", help="also measure the corpus's test split (at most twice a round)")
    ap.add_argument("--speed", action="store_true", help="measure predict speed and model size")
    ap.add_argument("--json", dest="json_out", default=None, metavar="FILE", help="write every figure as JSON to FILE")
    args = ap.parse_args(argv)
    console = Console(width=200)

    try:
        train_all = read_corpus(args.corpus, split=args.split)
        evals = {str(p): read_corpus([p], split="all") for p in args.eval}
        test_items = read_corpus(args.corpus, split="test") if args.test else []
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rules_path = Path(args.rules)
    if not rules_path.exists():
        print(f"error: {rules_path}: no such rules path", file=sys.stderr)
        return 2
    dev_a = [it for it in train_all if half(it.id) == "A"]
    dev_b = [it for it in train_all if half(it.id) == "B"]
    if not dev_a or not dev_b or len({it.label for it in dev_a}) < 2:
        print(f"error: {args.corpus}: too few items to train on (dev-A {len(dev_a)}, dev-B {len(dev_b)})", file=sys.stderr)
        return 2
    console.print(f"training items: {len(train_all)} (split {args.split}); dev-A {len(dev_a)}, dev-B {len(dev_b)}")
    result: dict[str, Any] = {"dev_b": {}, "thresholds": {}, "eval": {}}

    rules_b = rules_preds(rules_path, dev_b)
    for variant in args.variants:
        with console.status(f"training {variant} on dev-A ({len(dev_a)} items)"):
            t0 = time.perf_counter()
            model = Model(variant).fit(dev_a)
            fit_s = time.perf_counter() - t0
            proba = model.predict_proba([it.text for it in dev_b], [it.lang for it in dev_b])
        th = {
            "alone": best(dev_b, lambda t: clf_preds(proba, t), GRID)[0],
            "or": best(dev_b, lambda t: combine_or(rules_b, proba, t), GRID + [NEVER])[0],
            "and_not": best(dev_b, lambda t: combine_and_not(rules_b, proba, t), GRID + [NEVER])[0],
        }
        floor = (figures(dev_b, rules_b)["alerts"]["precision"] or 0.0) - 0.01
        th["or_kept"] = next((t for t in GRID if (figures(dev_b, combine_or(rules_b, proba, t))["alerts"]["precision"] or 0.0)
                              >= floor), NEVER)
        rows = systems(dev_b, proba, rules_b, th)
        print_table(console, f"dev-B ({len(dev_b)} items), {variant} trained on dev-A in {fit_s:.1f} s", rows)
        result["dev_b"][variant] = {name: f for name, f in rows}
        # the nearest the dev split comes to "the next group": dev-B items whose actor no dev-A item has
        seen = {it.actor for it in dev_a}
        idx = [i for i, it in enumerate(dev_b) if it.actor is not None and it.actor not in seen]
        if idx:
            sub = systems([dev_b[i] for i in idx], proba[idx], [rules_b[i] for i in idx], th)
            print_table(console, f"dev-B items whose actor no dev-A item has ({len(idx)} items), {variant}", sub)
            result.setdefault("dev_b_new_actors", {})[variant] = {name: f for name, f in sub}
        result["thresholds"][variant] = th

    final = args.final
    if final not in result["thresholds"]:
        print(f"error: --final {final} is not among --variants", file=sys.stderr)
        return 2
    th = result["thresholds"][final]
    result["final"] = final
    if evals or test_items or args.speed:
        with console.status(f"training {final} on all of {args.split} ({len(train_all)} items)"):
            model = Model(final).fit(train_all)
        targets = ([("test", test_items)] if test_items else []) + list(evals.items())
        for name, items in targets:
            if not items:
                console.print(f"{name}: no items")
                continue
            proba = model.predict_proba([it.text for it in items], [it.lang for it in items])
            rules = rules_preds(rules_path, items)
            rows = systems(items, proba, rules, th)
            print_table(console, f"{name} ({len(items)} items), {final} trained on all {args.split}", rows)
            result["eval"][name] = {n: f for n, f in rows}
        if args.speed:
            result["speed"] = speed(model, dev_b if len(dev_b) >= 200 else train_all, console)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
