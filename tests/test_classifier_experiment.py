"""bench/classifier_experiment.py on a tiny, clearly separable corpus (docs/rules.md, "A learned
classifier beside the rules"): the output's shape, and that the toy corpus is learned."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import sklearn  # noqa: E402,F401  (the test extra installs it: a missing install fails here, not skips)

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "bench" / "classifier_experiment.py"

# per label: templates whose words no other label uses (the toy corpus is clearly separable)
TEMPLATES = {
    "claim": ["The {g} brigade claimed responsibility for the ambush on {p}",
              "{g} fighters claimed responsibility and said they detonated a bomb in {p}"],
    "statement": ["The ministry of defence condemned the cowardly attack in {p} and vowed retaliation",
                  "The government spokesman condemned the assault on {p} and vowed to punish"],
    "denial": ["The {g} movement denied any involvement in the incident near {p}",
               "{g} officials denied involvement and rejected the allegations about {p}"],
    "report": ["Although {g} had previously claimed a bombing years ago, the trial about {p} continues",
               "The anniversary of the {g} bombing, which it had claimed years ago, was marked in {p}"],
    "none": ["Sunny weather and a football match drew crowds to the market of {p}",
             "A new bakery opened in {p} and sold bread and cakes to happy shoppers"],
}
GROUPS = ["Alpha", "Beta", "Gamma", "Delta", "Omega", "Sigma", "Kappa", "Lambda"]
PLACES = ["Northtown", "Southville", "Easton", "Westford", "Riverside", "Hilltop", "Lakeside", "Bayview"]


def toy_corpus(folder: Path, per_label: int = 24) -> Path:
    """``corpus.jsonl`` with ``per_label`` dev items of each label, and 4 test items each."""
    lines = []
    n = 0
    for label, templates in TEMPLATES.items():
        for i in range(per_label + 4):
            n += 1
            text = templates[i % 2].format(g=GROUPS[i % len(GROUPS)], p=PLACES[(i * 3) % len(PLACES)])
            lines.append(json.dumps({
                "id": f"toy-{n:04d}", "text": text, "lang": "en", "label": label, "actor": None,
                "source": f"https://example.org/{n}", "split": "dev" if i < per_label else "test",
            }))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "corpus.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load_script():
    spec = importlib.util.spec_from_file_location("classifier_experiment", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("classifier_experiment", module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


RULES = REPO / "tests" / "eval_corpus" / "rules.yml"


def test_runs_and_prints_tables(tmp_path):
    corpus = toy_corpus(tmp_path / "corpus")
    held = toy_corpus(tmp_path / "held", per_label=2)
    out_json = tmp_path / "out.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--corpus", str(corpus), "--rules", str(RULES), "--variants", "logreg",
         "--eval", str(held.parent), "--test", "--json", str(out_json)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "CLAIMWATCH_CACHE_DIR": "off"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "dev-B" in proc.stdout and "by language" in proc.stdout
    for system in ("classifier", "rules", "rules OR classifier", "precision kept", "rules AND NOT none"):
        assert system in proc.stdout
    result = json.loads(out_json.read_text(encoding="utf-8"))
    assert result["final"] == "logreg"
    assert set(result["thresholds"]["logreg"]) == {"alone", "or", "or_kept", "and_not"}
    assert set(result["eval"]) == {"test", str(held.parent)}
    for figures in [*result["dev_b"]["logreg"].values(), *result["eval"]["test"].values()]:
        assert set(figures) >= {"n", "claim", "statement", "denial", "report", "alerts", "languages"}
        assert set(figures["alerts"]) >= {"precision", "recall", "f1", "true", "predicted", "relevant"}
        assert list(figures["languages"]) == ["en"]
    # the toy corpus is clearly separable: the classifier alone gets every test item right
    alone = next(f for name, f in result["eval"]["test"].items() if name.startswith("classifier"))
    assert alone["claim"]["recall"] == 1.0 and alone["statement"]["recall"] == 1.0
    assert alone["alerts"]["precision"] == 1.0 and alone["alerts"]["recall"] == 1.0
    assert alone["denial"]["recall"] == 1.0 and alone["report"]["recall"] == 1.0


def test_model_learns_toy_corpus(tmp_path):
    mod = load_script()
    from monitor.rules.evaluate import LABELS, read_corpus

    items = read_corpus([toy_corpus(tmp_path)], split="all")
    train = [it for it in items if it.split == "dev"]
    test = [it for it in items if it.split == "test"]
    model = mod.Model("logreg").fit(train)
    proba = model.predict_proba([it.text for it in test], [it.lang for it in test])
    assert proba.shape == (len(test), len(LABELS))
    assert [LABELS[j] for j in proba.argmax(axis=1)] == [it.label for it in test]
    assert all(abs(row.sum() - 1.0) < 1e-6 for row in proba)
    # alerts from the figures helper follow the rules-eval definitions
    figs = mod.figures(test, mod.clf_preds(proba, 0.0))
    assert figs["alerts"]["relevant"] == 8 and figs["alerts"]["true"] == 8 and figs["alerts"]["predicted"] == 8


def test_bad_corpus_line_exits_2(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\n', encoding="utf-8")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--corpus", str(bad), "--rules", str(RULES)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "CLAIMWATCH_CACHE_DIR": "off"})
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
