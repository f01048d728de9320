"""Speed of the rule pack's learned classifier per message (docs/performance.md, "The learned
classifier in the pack"): feature extraction (C extension and the Python fallback), the NumPy
scoring, and the whole ``proba`` of a message, in µs per message over corpus texts.

    .venv/bin/python bench/classifier_bench.py [--model rules/classifier.npz] [--items 2000]

Run under the heavy-work lock (``flock /work/wt/heavy.lock ...``); wall time swings with load.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from monitor.rules import classifier as C  # noqa: E402
from monitor.rules.evaluate import read_corpus  # noqa: E402
from monitor.text import normalize  # noqa: E402


def per_message(fn, texts, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for t in texts:
            fn(t)
        best = min(best, time.process_time() - t0)
    return best / len(texts) * 1e6


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(REPO / "rules" / "classifier.npz"))
    ap.add_argument("--corpus", default=str(REPO / "corpus"))
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--python-items", type=int, default=300, help="texts for the (slow) Python fallback")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    model = C.load_model(args.model)
    texts = [it.text for it in read_corpus([args.corpus])][: args.items]
    norm = [normalize(t) for t in texts]
    cb, wb = model.char_bits, model.word_bits
    model.proba(texts[0])  # builds the row map
    out = {"messages": len(texts), "mean_chars": round(sum(map(len, norm)) / len(norm), 1), "features": model.size()}
    out["normalize_us"] = per_message(normalize, texts)
    if C._c_extract is not None:
        out["extract_c_us"] = per_message(lambda t: C._c_extract(t, cb, wb), norm)
    out["extract_python_us"] = per_message(lambda t: C.python_extract(t, cb, wb), norm[: args.python_items], repeat=1)
    feats = [C.features(t, cb, wb) for t in texts]
    out["numpy_score_us"] = per_message(lambda f: model.proba_features(*f), feats)
    out["proba_us"] = per_message(model.proba, texts)
    saved = C._c_extract
    C._c_extract = None
    try:
        out["proba_python_features_us"] = per_message(model.proba, texts[: args.python_items], repeat=1)
    finally:
        C._c_extract = saved
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:28} {v:,.1f}" if isinstance(v, float) else f"{k:28} {v:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
