"""Training the pack's learned classifier (``claimwatch rules classifier train``): needs
scikit-learn (the ``train`` extra); scoring does not (monitor/rules/classifier.py).

Protocol (docs/rules.md, "The learned classifier in the pack"):

1. the training split (``dev``) is halved by the sha256 of the item id (dev-A even, dev-B odd,
   the halves the rule rounds use);
2. a model is trained on dev-A and scores dev-B; the rules (the pack without its classifier)
   match dev-B;
3. the per-kind thresholds are chosen on dev-B for the rules beside the classifier
   (:func:`choose_thresholds`: the highest alert recall whose alert precision is within
   ``margin`` of the rules' own; see there);
4. the final model is trained on all of the split and written with those thresholds.

Deterministic: the same corpus gives the same arrays, and :func:`~monitor.rules.classifier.save_model`
the same bytes (one BLAS thread while fitting; no random state).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .classifier import (
    CHAR_BITS,
    CLASSES,
    FEATURES_VERSION,
    FORMAT_VERSION,
    NEVER,
    WORD_BITS,
    corpus_digest,
    extract,
    save_model,
)
from ..text import normalize

C_PARAM = 10.0  # inverse regularisation (the experiment's)
MAX_ITER = 3000
GRID = tuple(round(0.30 + 0.025 * i, 3) for i in range(27)) + (NEVER,)  # 0.30 .. 0.95, never
MARGIN = 0.01  # alert precision may fall this much below the rules' own on dev-B
ALERT_KINDS = ("claim", "statement")


class TrainError(ValueError):
    """Training cannot go on (too few items, scikit-learn missing): one line."""


def half(item_id: str) -> str:
    """dev-A (sha256 of the item id even) or dev-B (odd), as the rule rounds split dev."""
    return "A" if int(hashlib.sha256(item_id.encode("utf-8")).hexdigest(), 16) % 2 == 0 else "B"


def _sklearn() -> Any:
    try:
        import sklearn  # noqa: F401
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise TrainError("training needs scikit-learn: pip install 'claimwatch[train]'") from None
    return threadpool_limits


# -- features and fitting --------------------------------------------------------------------
def count_matrix(texts: Sequence[str], char_bits: int = CHAR_BITS, word_bits: int = WORD_BITS) -> Any:
    """The hashed n-gram counts of ``texts`` (raw; normalised here) as a SciPy CSR matrix over
    the whole feature space (``2**char_bits + 2**word_bits`` columns)."""
    from scipy.sparse import csr_matrix

    indptr = [0]
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    for t in texts:
        idx, cnt, _ = extract(normalize(t or ""), char_bits, word_bits)
        a = np.frombuffer(idx, dtype=np.uint32)
        cols.append(a)
        vals.append(np.frombuffer(cnt, dtype=np.uint32))
        indptr.append(indptr[-1] + len(a))
    ncols = (1 << char_bits) + (1 << word_bits)
    col = np.concatenate(cols).astype(np.int64) if cols else np.zeros(0, dtype=np.int64)
    val = np.concatenate(vals).astype(np.float64) if vals else np.zeros(0)
    m = csr_matrix((val, col, np.array(indptr, dtype=np.int64)), shape=(len(texts), ncols))
    m.sort_indices()
    return m


def tfidf_blocks(counts: Any, index: np.ndarray, wbase: int, idf: np.ndarray | None = None) -> tuple[Any, np.ndarray]:
    """(TF-IDF matrix over the columns ``index``, the idf): sublinear tf, smooth idf, each block
    (character columns below ``wbase``, word columns) L2-normalised: scikit-learn's
    ``TfidfTransformer`` per block, as the scorer computes it. ``idf``: given (scoring), else
    fitted on ``counts``."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfTransformer

    sub = counts[:, index]
    nchar = int(np.searchsorted(index, wbase))
    blocks = []
    idfs = []
    for a, b in ((0, nchar), (nchar, len(index))):
        part = sub[:, a:b]
        tr = TfidfTransformer(sublinear_tf=True, smooth_idf=True, norm="l2")
        if idf is None:
            tr.fit(part)
        else:
            tr.fit(part[:0] if part.shape[0] else part)  # sets the shape; the idf is replaced below
            tr.idf_ = idf[a:b].astype(np.float64)
        blocks.append(tr.transform(part))
        idfs.append(tr.idf_)
    return hstack(blocks, format="csr"), np.concatenate(idfs)


@dataclass
class Fitted:
    """A trained model's arrays (before thresholds) and what it needs to score more texts."""

    classes: tuple[str, ...]
    index: np.ndarray
    idf: np.ndarray
    coef: np.ndarray  # (len(index), classes) float32
    intercept: np.ndarray  # float32
    char_bits: int
    word_bits: int
    items: int
    lr: Any = field(default=None, repr=False)  # the scikit-learn model (reference, tests)

    def proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities (n, classes) by the NumPy scorer of the written model."""
        from .classifier import Model

        m = Model(path="", digest="", classes=self.classes, char_bits=self.char_bits, word_bits=self.word_bits,
                  index=self.index, idf=self.idf.astype(np.float64), coef=self.coef,
                  intercept=self.intercept.astype(np.float64), thresholds={}, corpus_digest="0" * 64,
                  corpus_split="", trained_items=self.items)
        return m.proba_many(texts)


def fit(texts: Sequence[str], labels: Sequence[str], *, char_bits: int = CHAR_BITS, word_bits: int = WORD_BITS,
        c: float = C_PARAM) -> Fitted:
    """Train on ``texts`` and their ``labels`` (two classes at least)."""
    limits = _sklearn()
    from sklearn.linear_model import LogisticRegression

    if len(set(labels)) < 2:
        raise TrainError(f"too few classes to train on ({len(set(labels))}: {', '.join(sorted(set(labels)))})")
    counts = count_matrix(texts, char_bits, word_bits)
    df = np.diff(counts.tocsc().indptr)
    index = np.flatnonzero(df).astype(np.uint32)
    x, idf = tfidf_blocks(counts, index, 1 << char_bits)
    lr = LogisticRegression(C=c, class_weight="balanced", max_iter=MAX_ITER)
    with limits(limits=1):  # one BLAS thread: the same sums in the same order every run
        lr.fit(x, list(labels))
    classes = tuple(str(k) for k in lr.classes_)
    coef = np.ascontiguousarray(lr.coef_.T, dtype=np.float32)
    intercept = lr.intercept_.astype(np.float32)
    if len(classes) == 2:  # binary: scikit-learn keeps one row; the softmax of (-z/2, z/2) is its sigmoid
        z = lr.coef_[0]
        coef = np.ascontiguousarray(np.stack([-z / 2, z / 2], axis=1), dtype=np.float32)
        intercept = np.array([-lr.intercept_[0] / 2, lr.intercept_[0] / 2], dtype=np.float32)
    return Fitted(classes, index, idf.astype(np.float32), coef, intercept, char_bits, word_bits, len(texts), lr)


# -- thresholds --------------------------------------------------------------------------------
@dataclass
class Choice:
    """The thresholds chosen on dev-B and the figures behind them."""

    thresholds: dict[str, float]
    rules: dict[str, Any]  # figures of the rules alone on dev-B
    combined: dict[str, Any]  # of the rules beside the classifier at the thresholds
    criterion: str


def _figures(positive: np.ndarray, labels: np.ndarray, alerted: np.ndarray, kinds: dict[str, np.ndarray]) -> dict[str, Any]:
    pred = int(alerted.sum())
    true = int((alerted & positive).sum())
    rel = int(positive.sum())
    p = true / pred if pred else None
    r = true / rel if rel else None
    f1 = 2 * p * r / (p + r) if p and r else 0.0
    out: dict[str, Any] = {"precision": p, "recall": r, "f1": f1, "alerted": pred, "true": true, "relevant": rel}
    for k, has in kinds.items():
        lab = labels == k
        kp, kt = int(has.sum()), int((has & lab).sum())
        out[k] = {"recall": kt / int(lab.sum()) if lab.any() else None, "precision": kt / kp if kp else None,
                  "found": kt, "of": int(lab.sum()), "predicted": kp}
    return out


def rule_outcomes(matcher: Any, items: Sequence[Any], alert_level: str = "medium",
                  progress: Callable[[int], None] | None = None) -> list[list[tuple[str, str]]]:
    """Per item, the (kind, level) of the rules' hits (the matcher's classifier left out)."""
    out = []
    for i, it in enumerate(items, 1):
        out.append([(h.kind, h.level) for h in matcher.match(it.message(), classifier=False)])
        if progress is not None and i % 100 == 0:
            progress(i)
    return out


def choose_thresholds(
    items: Sequence[Any], proba: np.ndarray, classes: Sequence[str], rules: Sequence[Sequence[tuple[str, str]]],
    *, margin: float = MARGIN, alert_level: str = "medium", when: str = "always", grid: Sequence[float] = GRID,
) -> Choice:
    """The claim and statement thresholds (a grid each, chosen together) for the rules beside
    the classifier on ``items`` (dev-B): the pair with the highest alert recall among those
    whose alert precision is at least the rules' own minus ``margin`` (ties: the higher F1,
    then the higher thresholds); :data:`NEVER` for both when none keeps the precision.
    ``when``: the classifier's ``when`` (``always`` or ``no-rule-alert``: the same alerts, since
    an item the rules alerted on is alerted either way)."""
    from ..model import LEVELS

    floor_rank = LEVELS.index(alert_level)
    rank = {lv: i for i, lv in enumerate(LEVELS)}
    labels = np.array([it.label for it in items])
    positive = np.isin(labels, ALERT_KINDS)
    rule_alert = np.array([any(rank.get(lv, 0) >= floor_rank for _k, lv in hs) for hs in rules], dtype=bool)
    rule_kind = {k: np.array([any(kk == k and rank.get(lv, 0) >= floor_rank for kk, lv in hs) for hs in rules], dtype=bool)
                 for k in ALERT_KINDS}
    top = proba.argmax(axis=1)
    ptop = proba[np.arange(len(proba)), top]
    cls = list(classes)
    base = _figures(positive, labels, rule_alert, rule_kind)
    floor = (base["precision"] or 0.0) - margin
    best: tuple | None = None
    for tc in grid:
        for ts in grid:
            fire = {k: (top == cls.index(k)) & (ptop >= t) for k, t in (("claim", tc), ("statement", ts)) if k in cls}
            if when == "no-rule-alert":
                fire = {k: v & ~rule_alert for k, v in fire.items()}
            clf_alert = np.zeros(len(items), dtype=bool)
            for v in fire.values():
                clf_alert |= v
            alerted = rule_alert | clf_alert
            kinds = {k: rule_kind[k] | fire.get(k, np.zeros(len(items), dtype=bool)) for k in ALERT_KINDS}
            f = _figures(positive, labels, alerted, kinds)
            if (f["precision"] or 0.0) < floor - 1e-12:
                continue
            key = (round(f["recall"] or 0.0, 9), round(f["f1"], 9), tc, ts)
            if best is None or key > best[0]:
                best = (key, {"claim": tc, "statement": ts}, f)
    if best is None:
        return Choice({"claim": NEVER, "statement": NEVER}, base, base, f"precision within {margin:g} of the rules'")
    return Choice(best[1], base, best[2], f"precision within {margin:g} of the rules'")


# -- the whole protocol ------------------------------------------------------------------------
@dataclass
class Trained:
    path: str
    digest: str
    arrays: dict[str, np.ndarray]
    choice: Choice
    items: int
    dev_a: int
    dev_b: int


def model_arrays(f: Fitted, thresholds: dict[str, float], digest: str, split: str, params: dict[str, Any]) -> dict[str, np.ndarray]:
    th = np.array([thresholds.get(c, np.nan) if c != "none" else np.nan for c in f.classes], dtype=np.float32)
    return {
        "format": np.array(FORMAT_VERSION, dtype=np.int32),
        "features": np.array(FEATURES_VERSION, dtype=np.int32),
        "char_bits": np.array(f.char_bits, dtype=np.int32),
        "word_bits": np.array(f.word_bits, dtype=np.int32),
        "classes": np.array(f.classes),
        "index": f.index.astype(np.uint32),
        "idf": f.idf.astype(np.float32),
        "coef": f.coef.astype(np.float32),
        "intercept": f.intercept.astype(np.float32),
        "thresholds": th,
        "corpus_digest": np.array(digest),
        "corpus_split": np.array(split),
        "trained_items": np.array(f.items, dtype=np.int64),
        "params": np.array(json.dumps(params, sort_keys=True)),
    }


def train(
    items: Sequence[Any],
    out: str | Path,
    *,
    rules_matcher: Any = None,
    split: str = "dev",
    margin: float = MARGIN,
    thresholds: dict[str, float] | None = None,
    status: Callable[[str], None] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Trained:
    """Train on ``items`` (the ``split`` of a corpus) and write the model to ``out``.

    Thresholds: ``thresholds`` when given; else chosen on dev-B (:func:`choose_thresholds`) for
    ``rules_matcher`` (the pack's rules) beside a model trained on dev-A. ``status(text)`` and ``progress(phase, done, total)`` report."""
    say = status or (lambda _t: None)
    items = list(items)
    if len(items) < 10 or len({it.label for it in items}) < 2:
        raise TrainError(f"too few items to train on ({len(items)} item(s), {len({it.label for it in items})} label(s))")
    digest = corpus_digest(items)
    params = {"C": C_PARAM, "class_weight": "balanced", "char_ngrams": [2, 5], "word_ngrams": [1, 2],
              "sublinear_tf": True, "solver": "lbfgs", "max_iter": MAX_ITER, "margin": margin}
    dev_a = [it for it in items if half(it.id) == "A"]
    dev_b = [it for it in items if half(it.id) == "B"]
    if thresholds is None:
        if rules_matcher is None:
            raise TrainError("choosing thresholds needs the rules (or give the thresholds)")
        if len(dev_a) < 5 or len(dev_b) < 5 or len({it.label for it in dev_a}) < 2:
            raise TrainError(f"too few items to choose thresholds (dev-A {len(dev_a)}, dev-B {len(dev_b)})")
        say(f"training on dev-A ({len(dev_a)} items)")
        fa = fit([it.text for it in dev_a], [it.label for it in dev_a])
        say(f"scoring dev-B ({len(dev_b)} items)")
        proba = fa.proba([it.text for it in dev_b])
        say(f"matching dev-B with the rules ({len(dev_b)} items)")
        rules = rule_outcomes(rules_matcher, dev_b,
                              progress=(lambda n: progress("rules", n, len(dev_b))) if progress else None)
        choice = choose_thresholds(dev_b, proba, fa.classes, rules, margin=margin)
        params["thresholds_from"] = "dev-B"
    else:
        choice = Choice(dict(thresholds), {}, {}, "given")
        params["thresholds_from"] = "given"
    say(f"training on all of {split} ({len(items)} items)")
    final = fit([it.text for it in items], [it.label for it in items])
    arrays = model_arrays(final, choice.thresholds, digest, split, params)
    sha = save_model(out, arrays)
    return Trained(str(out), sha, arrays, choice, len(items), len(dev_a), len(dev_b))
