"""``claimwatch rules check`` and ``claimwatch rules test``, and the rule loading other commands share.

* ``rules check PATH…``: validate; every problem printed as ``file:line:col: message``.
  Exit 0 when clean, 1 when there are problems, 2 for usage errors (bad config).
* ``rules test RULES [INPUT…] [--db DB] [--json]``: backtest the rules over import files
  and/or the archive (opened read-only: nothing is written) and print the hits.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

import typer

from ..cli_common import (
    ConfigOpt,
    DbOpt,
    JsonOpt,
    LogLevelOpt,
    console,
    db_path,
    err_console,
    fail,
    open_archive,
    print_json_lines,
    setup,
    shown,
)
from ..bidi import trim_span
from ..config import Config
from ..model import Hit, Message, iso, make_url
from .loader import load_rules
from .matcher import Matcher
from .problems import Problem, RuleSetError, format_problems

__all__ = ["register", "matcher_for_cli", "format_problems", "hit_record"]

rules_app = typer.Typer(
    name="rules",
    help="Check rule files, test them against messages and evaluate them on a labelled corpus.",
    no_args_is_help=True,
    add_completion=False,
)


def register(app: typer.Typer) -> None:
    """Add the ``rules`` command group to the main app."""
    from .classifier_cli import classifier_app

    rules_app.add_typer(classifier_app, name="classifier")
    app.add_typer(rules_app, name="rules")


def _known_destinations(cfg: Config) -> set[str] | None:
    return cfg.destination_names() if cfg.source_path else None


def _print_problems(problems: list[Problem]) -> None:
    for p in problems:
        err_console.print(str(p), highlight=False, markup=False, soft_wrap=True)


def matcher_for_cli(path: str | Path, cfg: Config, required: bool = False) -> Matcher | None:
    """Load and compile the rules at ``path`` for a CLI command.

    Problems are printed as ``file:line:col: message`` on stderr and the command exits 2.
    A missing ``path`` gives None (no matching) unless ``required``, which exits 2.
    """
    p = Path(path)
    if not p.exists():
        if required:
            fail(f"{path}: rules not found (no such file or directory)")
        return None
    from .cache import load_matcher

    try:  # from the on-disk cache of compiled sets when the rule files are unchanged
        return load_matcher([p], known_destinations=_known_destinations(cfg), default_destinations=tuple(cfg.alerts.default))
    except RuleSetError as exc:
        _print_problems(exc.problems)
        fail(f"{len(exc.problems)} problem(s) in the rules at {path}")


@rules_app.command("check")
def check_cmd(
    paths: Annotated[
        Optional[list[Path]], typer.Argument(help="Rule files or folders (default: config 'rules').", show_default=False)
    ] = None,
    config: ConfigOpt = None,
    log_level: LogLevelOpt = "WARNING",
    json_out: JsonOpt = False,
) -> None:
    """Validate rules: each problem as file:line:col: message. Exit 0 only when clean."""
    cfg = setup(config, log_level)
    targets = [str(p) for p in paths] if paths else [cfg.rules]
    try:
        ruleset = load_rules(targets, known_destinations=_known_destinations(cfg))
    except RuleSetError as exc:
        if json_out:
            print_json_lines(p.to_dict() for p in exc.problems)
        else:
            for p in exc.problems:
                console.print(str(p), highlight=False, markup=False, soft_wrap=True)
        files = len({p.file for p in exc.problems})
        err_console.print(f"{len(exc.problems)} problem(s) in {files} file(s)", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    from .lint import lint

    stats = Matcher(ruleset).stats()
    warnings = lint(ruleset)
    clf = ruleset.classifier
    summary = (
        f"ok: {len(ruleset.rules)} rule(s)" + (f" and {len(ruleset.actors)} actor(s)" if ruleset.actors else "")
        + (f", the learned classifier '{clf.id}' ({clf.model.size():,} features, {', '.join(clf.kinds)})" if clf is not None else "")
        + f" in {len(ruleset.files)} file(s); "
        f"{stats['terms']:,} distinct term(s), {stats['patterns']:,} match patterns, {stats['regexes']} regex(es), "
        f"{stats['unanchored_rules']} rule(s) evaluated on every message; "
        f"matcher ~{stats['memory_bytes'] / 2**20:,.1f} MB; {len(warnings)} warning(s)"
    )
    if json_out:
        print_json_lines({**w.to_dict(), "level": "warning"} for w in warnings)
        err_console.print(summary, highlight=False, soft_wrap=True)
    else:
        console.print(summary, highlight=False, soft_wrap=True)
        for w in warnings:
            console.print(str(w), highlight=False, markup=False, soft_wrap=True)


def hit_record(msg: Message, hit: Hit) -> dict[str, Any]:
    """The JSON object ``rules test --json`` prints for one hit."""
    return {
        "rule": hit.rule_id,
        "level": hit.level,
        "kind": hit.kind,
        "actors": list(hit.actors),
        "platform": msg.platform,
        "channel_id": msg.channel_id,
        "channel": msg.channel,
        "message_id": msg.message_id,
        "date": iso(msg.date),
        "url": msg.url or make_url(msg.platform, msg.channel, msg.channel_id, msg.message_id),
        "matches": [
            {"selection": m.selection, "term": m.term, "start": m.start, "end": m.end, "field": m.field}
            for m in hit.matches
        ],
    }


def _snippet(msg: Message, hit: Hit, width: int = 90) -> str:
    spans = [m for m in hit.matches if m.field == "text"]
    text = msg.text or ""
    if not spans:
        return " ".join(text.split())[:width]
    start = max(0, spans[0].start - 20)
    end = min(len(text), start + width)
    parts, pos = [], start
    for m in spans:
        if m.start < pos or m.end > end:
            continue
        # a bidi control or mark at a match's edge stays outside the brackets
        s, e = trim_span(text, m.start, m.end)
        if s == e:
            continue
        parts.append(text[pos:s])
        parts.append("[" + text[s:e] + "]")
        pos = e
    parts.append(text[pos:end])
    body = " ".join("".join(parts).split())
    return ("…" if start > 0 else "") + body + ("…" if end < len(text) else "")


def _archive_messages(path: str, progress: Any) -> Iterator[Message]:
    with open_archive(path) as archive:
        total = archive.conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        task = progress.add_task(f"archive {Path(path).name}", total=total)
        for i, msg in enumerate(archive.iter_messages(), 1):
            yield msg
            if i % 500 == 0:
                progress.update(task, completed=i)
        progress.update(task, completed=total)


def _file_messages(path: Path, fmt: str, skip_bad: bool, progress: Any) -> Iterator[Message]:
    from ..sources.files import InputError, read_messages

    if not path.exists():
        fail(f"{path}: no such file")
    if path.is_dir():
        fail(f"{path}: is a directory (give the files)")
    task = progress.add_task(path.name, total=path.stat().st_size)
    try:
        yield from read_messages(path, fmt=fmt, skip_bad=skip_bad, progress=lambda n: progress.update(task, completed=n))
    except InputError as exc:
        fail(str(exc))


@rules_app.command("test")
def test_cmd(
    rules: Annotated[Path, typer.Argument(help="Rule file or folder.")],
    inputs: Annotated[
        Optional[list[Path]],
        typer.Argument(help="Telegram export JSON, X API v2 JSONL or canonical JSONL files.", show_default=False),
    ] = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="Input format: auto | telegram | x | canonical")] = "auto",
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip malformed records instead of failing.")] = False,
    log_level: LogLevelOpt = "WARNING",
    json_out: JsonOpt = False,
) -> None:
    """Backtest rules over files or the archive (nothing is written) and print the hits.

    Without INPUT files the archive is scanned (--db, or the config's database).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    cfg = setup(config, log_level)
    matcher = matcher_for_cli(rules, cfg, required=True)
    assert matcher is not None
    per_rule: Counter[str] = Counter()
    scanned = 0
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err_console,
        transient=True,
        disable=json_out or not err_console.is_terminal,
    ) as progress:

        def messages() -> Iterator[Message]:
            for p in inputs or []:
                yield from _file_messages(p, fmt, skip_bad, progress)
            if db is not None or not inputs:
                yield from _archive_messages(db_path(db, cfg), progress)

        out = sys.stdout
        for msg in messages():
            scanned += 1
            for hit in matcher.match(msg):
                per_rule[hit.rule_id] += 1
                if json_out:
                    print_json_lines([hit_record(msg, hit)])
                else:
                    where = f"{msg.platform}/{msg.channel or msg.channel_id}/{msg.message_id}"
                    actors = f" [{','.join(hit.actors)}]" if hit.actors else ""
                    # channel, message id and text come from the post: escaped for the terminal
                    out.write(f"{iso(msg.date)}  {hit.level:<8} {hit.kind:<9} {hit.rule_id}{actors}  {shown(where)}"
                              f"  {shown(_snippet(msg, hit))}\n")
        out.flush()
    total = sum(per_rule.values())
    by_rule = ", ".join(f"{r} {n}" for r, n in per_rule.most_common())
    err_console.print(
        f"{scanned} message(s) scanned, {total} hit(s)" + (f": {by_rule}" if by_rule else ""), highlight=False, markup=False
    )


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _figures_table(title: str, first: str, rows: dict[str, Any], counts: tuple[str, str, str]) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column(first)
    for name in (*counts, "precision", "recall", "F1"):
        table.add_column(name, justify="right")
    for key, f in rows.items():
        table.add_row(key, str(f.relevant), str(f.predicted), str(f.true), _pct(f.precision), _pct(f.recall), _pct(f.f1))
    return table


def _print_listing(title: str, rows: list[dict[str, Any]]) -> None:
    from rich.table import Table
    from rich.text import Text

    if not rows:
        console.print(f"[bold]{title}:[/] none")
        return
    table = Table(title=f"{title} ({len(rows)})", title_justify="left", show_lines=False)
    for col in ("id", "lang", "label", "actor", "rules", "text"):
        table.add_column(col, overflow="fold" if col != "text" else "ellipsis")
    for r in rows:
        rules = ", ".join(f"{h['rule']}({h['kind']},{h['level']})" for h in r["rules"]) or "-"
        table.add_row(Text(shown(r["id"])), r["lang"], r["label"], Text(shown(r["actor"] or "-")), Text(rules),
                      Text(shown(r["text"])))
    console.print(table)


@rules_app.command("eval")
def eval_cmd(
    rules: Annotated[Path, typer.Argument(help="Rule file or folder (with its actors.yml).")],
    corpus: Annotated[list[Path], typer.Argument(help="Labelled corpus JSONL files (docs/rules.md).")],
    split: Annotated[str, typer.Option("--split", help="dev, test or all.")] = "all",
    min_recall: Annotated[
        Optional[float], typer.Option("--min-recall", help="Exit 1 when claim or statement recall is below this.", min=0, max=1)
    ] = None,
    min_precision: Annotated[
        Optional[float], typer.Option("--min-precision", help="Exit 1 when the alert precision is below this.", min=0, max=1)
    ] = None,
    alert_level: Annotated[str, typer.Option("--alert-level", help="Lowest level that alerts.")] = "medium",
    show_misses: Annotated[
        bool, typer.Option("--show-misses/--no-show-misses", help="List the misses and false alerts with their text.")
    ] = True,
    use_classifier: Annotated[
        bool, typer.Option("--classifier/--no-classifier",
                           help="With the pack's learned classifier (rules/classifier.yml), if it has one, or the rules alone.")
    ] = True,
    config: ConfigOpt = None,
    log_level: LogLevelOpt = "WARNING",
    json_out: JsonOpt = False,
) -> None:
    """Precision and recall of RULES on a labelled corpus; exit 1 below the thresholds.

    Alerts are hits at --alert-level or above; claims and statements count with their kind,
    denials and reports at any level. The pack's learned classifier counts like a rule
    (--no-classifier: the rules alone); a model trained on another version of the corpus is
    warned of. Definitions in docs/rules.md.
    """
    import json

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from .evaluate import LEVELS, CorpusError, corpus_files, evaluate, read_corpus

    cfg = setup(config, log_level)
    if split not in ("dev", "test", "all"):
        fail(f"--split: unknown split '{split}' (one of dev, test, all)")
    level = alert_level.strip().lower()
    if level not in LEVELS:
        fail(f"--alert-level: unknown level '{alert_level}' (one of {', '.join(LEVELS)})")
    for path in corpus:
        if not path.exists():
            fail(f"{path}: no such file or folder")
        if path.is_dir() and not corpus_files([path]):
            fail(f"{path}: a folder with no *.jsonl file")
    matcher = matcher_for_cli(rules, cfg, required=True)
    assert matcher is not None
    try:
        items = read_corpus(corpus, split)
    except CorpusError as exc:
        fail(str(exc))
    if not items:
        fail(f"no corpus items in split '{split}'")
    clf = getattr(matcher, "classifier", None) if use_classifier else None
    stale = None
    if clf is not None:
        from .classifier import stale_reason

        stale = stale_reason(clf.model, corpus)
        if stale:
            err_console.print(f"warning: {stale}", highlight=False, markup=False, soft_wrap=True)
    with Progress(
        TextColumn("[bold]matching"), BarColumn(), MofNCompleteColumn(), console=err_console, transient=True,
        disable=json_out or not err_console.is_terminal or len(items) < 500,
    ) as progress:
        task = progress.add_task("corpus", total=len(items))
        ev = evaluate(matcher, items, alert_level=level, split=split, progress=lambda n: progress.update(task, completed=n),
                      classifier=use_classifier)
    failed = ev.gate(min_recall, min_precision)
    if json_out:
        data = ev.to_dict()
        data["thresholds"] = {"min_recall": min_recall, "min_precision": min_precision, "failed": failed}
        data["classifier"] = None if clf is None else {
            "id": clf.spec.id, "model": clf.model.path, "sha256": clf.model.digest, "thresholds": clf.spec.thresholds,
            "when": clf.spec.when, "stale": stale,
        }
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    else:
        overall = ev.overall()
        console.print(
            f"[bold]{len(items)} item(s)[/] (split {split}), alerts at {level} and above: "
            f"precision {_pct(overall.precision)}, recall {_pct(overall.recall)}, F1 {_pct(overall.f1)} "
            f"({overall.predicted} alerted, {overall.true} of {overall.relevant} claims/statements)"
            + (f"; with the learned classifier '{clf.spec.id}'" if clf is not None else "")
            + ("; rules alone (--no-classifier)" if not use_classifier and getattr(matcher, "classifier", None) is not None else ""),
            highlight=False,
            soft_wrap=True,
        )
        labels = ev.by_label()
        console.print(_figures_table("By label (claim/statement at alert level; denial/report at any level)", "label",
                                     {k: v for k, v in labels.items() if k != "none"}, ("items", "found", "true")))
        console.print(f"label none: {labels['none'].n} item(s), {labels['none'].predicted} alerted", highlight=False)
        console.print(_figures_table("By language (alerts)", "lang", ev.by_language(), ("positives", "alerted", "true")))
        console.print(_figures_table("By actor (positives alerted with their kind)", "actor", ev.by_actor(),
                                     ("positives", "found", "true")))
        from rich.table import Table

        table = Table(title="By rule", title_justify="left")
        for col in ("rule", "kind", "level", "hits", "alerts", "true", "false"):
            table.add_column(col, justify="right" if col in ("hits", "alerts", "true", "false") else "left")
        for rule_id, row in ev.by_rule().items():
            table.add_row(rule_id, row["kind"], row["level"], *(str(row[c]) for c in ("hits", "alerts", "true", "false")))
        console.print(table)
        if show_misses:
            _print_listing("Misses", ev.misses())
            _print_listing("False alerts", ev.false_alerts())
    if failed:
        err_console.print("below the thresholds: " + "; ".join(failed), highlight=False, markup=False)
        raise typer.Exit(1)
