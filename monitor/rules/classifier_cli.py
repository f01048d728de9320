"""``claimwatch rules classifier train|score``: the rule pack's learned classifier
(monitor/rules/classifier.py, classifier_train.py; docs/rules.md, "The learned classifier in the
pack"). The commands only call those modules."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..cli_common import ConfigOpt, JsonOpt, LogLevelOpt, console, err_console, fail, setup

classifier_app = typer.Typer(
    name="classifier",
    help="Train the rule pack's learned classifier on a labelled corpus, or score a text with it.",
    no_args_is_help=True,
    add_completion=False,
)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


@classifier_app.command("train")
def train_cmd(
    corpus: Annotated[list[Path], typer.Argument(help="Labelled corpus JSONL files or folders (docs/rules.md).")],
    split: Annotated[str, typer.Option("--split", help="The split to train on: dev, test or all.")] = "dev",
    rules: Annotated[Path, typer.Option("--rules", help="The rule pack (its rules choose the thresholds on dev-B).")] = Path("rules"),
    out: Annotated[Optional[Path], typer.Option("--out", help="Model file to write (default: the pack's, RULES/classifier.npz).",
                                                show_default=False)] = None,
    config: ConfigOpt = None,
    log_level: LogLevelOpt = "WARNING",
    json_out: JsonOpt = False,
) -> None:
    """Train the classifier on the corpus's SPLIT and write the model file.

    The thresholds are chosen on dev-B (a model trained on dev-A beside the pack's rules: the
    highest alert recall with alert precision within 0.01 of the rules' own); the model written
    is trained on all of SPLIT. The same corpus gives the same file.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from .classifier_train import TrainError, train
    from .loader import load_rules
    from .matcher import Matcher
    from .evaluate import CorpusError, corpus_files, read_corpus
    from .problems import RuleSetError

    setup(config, log_level)
    if split not in ("dev", "test", "all"):
        fail(f"--split: unknown split '{split}' (one of dev, test, all)")
    for path in corpus:
        if not path.exists():
            fail(f"{path}: no such file or folder")
        if path.is_dir() and not corpus_files([path]):
            fail(f"{path}: a folder with no *.jsonl file")
    if not rules.exists():
        fail(f"{rules}: rules not found (no such file or directory)")
    target = out if out is not None else (rules if rules.is_dir() else rules.parent) / "classifier.npz"
    if target.is_dir():
        fail(f"--out {target}: is a directory")
    if not target.parent.is_dir():
        fail(f"--out {target}: no such folder {target.parent}")
    try:
        items = read_corpus(corpus, split)
    except CorpusError as exc:
        fail(str(exc))
    try:  # the rules without their classifier (whose model is being made)
        matcher = Matcher(load_rules([rules], classifier=False))
    except RuleSetError as exc:
        for p in exc.problems:
            err_console.print(str(p), highlight=False, markup=False, soft_wrap=True)
        fail(f"{len(exc.problems)} problem(s) in the rules at {rules}")
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), console=err_console,
                  transient=True, disable=json_out or not err_console.is_terminal) as progress:
        task = progress.add_task("training", total=None)

        def status(text: str) -> None:
            progress.update(task, description=text, completed=0, total=None)

        def step(phase: str, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            got = train(items, target, rules_matcher=matcher, split=split, status=status, progress=step)
        except TrainError as exc:
            fail(str(exc))
    ch = got.choice
    summary: dict[str, Any] = {
        "model": str(target), "sha256": got.digest, "items": got.items, "dev_a": got.dev_a, "dev_b": got.dev_b,
        "features": int(len(got.arrays["index"])), "bytes": target.stat().st_size, "thresholds": ch.thresholds,
        "criterion": ch.criterion, "dev_b_rules": ch.rules, "dev_b_combined": ch.combined,
        "corpus_digest": str(got.arrays["corpus_digest"]),
    }
    if json_out:
        sys.stdout.write(json.dumps(summary, ensure_ascii=False) + "\n")
        return
    console.print(f"wrote {target} ({summary['bytes'] / 2**20:.1f} MiB, {summary['features']:,} features, sha256 "
                  f"{got.digest[:16]}…): trained on {got.items} {split} items", highlight=False, soft_wrap=True)
    th = ", ".join(f"{k} {v:g}" for k, v in ch.thresholds.items())
    console.print(f"thresholds ({ch.criterion}; chosen on dev-B, {got.dev_b} items): {th}", highlight=False, soft_wrap=True)
    for name, f in (("rules alone", ch.rules), ("rules + classifier", ch.combined)):
        if f:
            console.print(f"  dev-B {name}: alert precision {_pct(f['precision'])}, recall {_pct(f['recall'])}; "
                          f"claim recall {_pct(f['claim']['recall'])}, statement recall {_pct(f['statement']['recall'])}",
                          highlight=False, soft_wrap=True)


@classifier_app.command("score")
def score_cmd(
    text: Annotated[Optional[str], typer.Argument(help="The text to score (or --file).", show_default=False)] = None,
    file: Annotated[Optional[Path], typer.Option("--file", help="Score the text of this file (- for standard input).",
                                                 show_default=False)] = None,
    rules: Annotated[Path, typer.Option("--rules", help="The rule pack whose classifier scores.")] = Path("rules"),
    config: ConfigOpt = None,
    log_level: LogLevelOpt = "WARNING",
    json_out: JsonOpt = False,
) -> None:
    """Print the classifier's probability per class for TEXT, and the hit it would raise."""
    from .classifier import ModelError, load_model
    from .classifier_file import build_classifier, is_classifier_file
    from .loader import _parse_file, rule_files
    from .problems import Problem

    setup(config, log_level)
    if (text is None) == (file is None):
        fail("give a TEXT or --file (one of them)")
    if file is not None:
        if str(file) == "-":
            text = sys.stdin.read()
        else:
            try:
                text = file.read_text(encoding="utf-8")
            except FileNotFoundError:
                fail(f"{file}: no such file")
            except (OSError, UnicodeDecodeError) as exc:
                fail(f"{file}: cannot read: {getattr(exc, 'strerror', None) or exc}")
    if not rules.exists():
        fail(f"{rules}: rules not found (no such file or directory)")
    problems: list[Problem] = []
    spec = None
    for f in rule_files([rules], problems):
        got = _parse_file(f, problems)
        if got is not None and is_classifier_file(got[2]):
            spec = build_classifier(got[0], got[2], None)
            if spec is None:
                for p in problems:
                    err_console.print(str(p), highlight=False, markup=False, soft_wrap=True)
                fail(f"{len(problems)} problem(s) in the classifier file {f}")
            break
    if spec is None:
        model_path = (rules if rules.is_dir() else rules.parent) / "classifier.npz"
        try:
            model = load_model(model_path)
        except ModelError as exc:
            fail(f"no classifier file in {rules}, and {exc}")
        from .classifier import ClassifierSpec

        spec = ClassifierSpec(id="classifier", title="Learned classifier", level="medium", model=model,
                              model_file=str(model_path), kinds=("claim", "statement"),
                              thresholds={k: model.thresholds.get(k, 2.0) for k in ("claim", "statement")}, file="")
    from .classifier import Classifier

    clf = Classifier(spec)
    proba = clf.proba(text or "")
    decision = clf.decide(proba, [])
    order = sorted(range(len(proba)), key=lambda j: -proba[j])
    record = {
        "probabilities": {clf.classes[j]: round(float(proba[j]), 6) for j in order},
        "hit": None if decision is None else {"kind": decision[0], "score": round(decision[1], 6),
                                              "level": clf.level_of(decision[0])},
        "thresholds": {k: v for k, v in spec.thresholds.items()},
        "model": spec.model.path, "sha256": spec.model.digest,
    }
    if json_out:
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    for j in order:
        t = spec.thresholds.get(clf.classes[j])
        console.print(f"{clf.classes[j]:<10} {float(proba[j]):.4f}" + (f"  (threshold {t:g})" if t is not None else ""),
                      highlight=False)
    if decision is None:
        console.print("no hit (with no rule hit beside it)", highlight=False)
    else:
        console.print(f"hit: {decision[0]} at {clf.level_of(decision[0])}, score {decision[1]:.4f}", highlight=False)
