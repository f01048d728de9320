"""Load and validate rule files into a :class:`~monitor.rules.ruleset.RuleSet`.

A path is a rule file or a directory (loaded recursively: ``*.yml`` and ``*.yaml``, hidden
files and folders skipped). A file holds one rule (a mapping with ``id``) or several under
``rules:``. Every problem in every file is collected and reported as ``file:line:col:
message``; :func:`load_rules` raises :class:`RuleSetError` when there is any.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from ..durations import parse_duration
from ..model import KINDS
from .condition import RESERVED, ConditionErrors, parse_condition, single_condition
from .actors import ACTOR_KEYS, ACTOR_TYPES, Actor, descendants
from ..gcpause import paused_gc
from .lists import (
    LIST_DIR, LIST_EXTENSIONS, ListPending, ListTerms, WatchList, entry_prefix, fill_pending, list_files, load_lists,
    load_lists_in_background, walk_files,
)
from .problems import Problem, RuleSetError, format_problems
from .regexes import RegexError, check_regex
from .ruleset import FIELDS, LEVELS, OPS, Rule, RuleSet, Selection
from .source_filter import SourceError, parse_source
from .terms import Term, TermError, parse_term
from .yaml_nodes import Node, YamlSyntaxError, parse_yaml

__all__ = ["load_rules", "load_actor_titles", "format_problems", "RuleSetError", "Problem", "RULE_KEYS"]

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_PATTERNS = 500_000  # match patterns of the whole set: one per term word
MAX_REGEXES = 10_000
MAX_NEAR_WITHIN = 1_000

RULE_KEYS = (
    "id", "title", "description", "level", "kind", "tags", "sources", "languages", "match", "condition",
    "alert", "throttle", "enabled", "author", "references",
)
SELECTION_KEYS = ("any", "all", "regex", "near", "field")
NEAR_KEYS = ("terms", "within")
RULE_EXTENSIONS = (".yml", ".yaml")
MODEL_EXTENSIONS = (".npz",)  # the learned classifier's model files (monitor/rules/classifier.py)

_ID_RE = re.compile(r"[a-z0-9._-]+\Z")
_SELECTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ACTOR_ID_RE = re.compile(r"[a-z0-9-]+\Z")
_LANG_RE = re.compile(r"[a-z]{2,3}\Z")
_TERM_WORDS = itemgetter(1)  # Term.words
_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _FileContext:
    """Collects the problems of one file."""

    def __init__(self, file: str, text: str, problems: list[Problem]) -> None:
        self.file = file
        self.text = text
        self.problems = problems
        self._lines: list[str] | None = None
        self.actors: dict[str, Actor] = {}
        # an actor's terms and fingerprint, computed once per load (Actor computes them on
        # each access; the pack's rules reference its 80 actors thousands of times)
        self.actor_memo: dict[tuple[str, str], object] = {}
        # a term's raw text -> its Term, a tuple of terms -> the first equal one, shared by
        # every file of a load: rules written apart with the same terms (``b: [في]`` in
        # thousands of rules) share one tuple, which the compiler then handles once
        self.term_memo: dict = {}
        self.referenced: set[str] = set()  # actors the rule being built references
        self.lists: dict[str, WatchList] = {}
        self.referenced_lists: set[str] = set()  # lists the rule being built references
        self.failed_lists: set[str] = set()  # lists whose file has problems (already reported)

    def add(self, node_or_pos: Node | tuple[int, int], message: str) -> None:
        if isinstance(node_or_pos, Node):
            line, col = node_or_pos.line, node_or_pos.col
        else:
            line, col = node_or_pos
        self.problems.append(Problem(self.file, line, col, message))

    def actor_terms(self, actor: Actor) -> tuple:
        key = ("terms", actor.id)
        got = self.actor_memo.get(key)
        if got is None or got[0] is not actor:
            got = self.actor_memo[key] = (actor, actor.terms)
        return got[1]  # type: ignore[index]

    def actor_fingerprint(self, actor: Actor) -> str:
        key = ("print", actor.id)
        got = self.actor_memo.get(key)
        if got is None or got[0] is not actor:
            got = self.actor_memo[key] = (actor, actor.fingerprint())
        return got[1]  # type: ignore[index]

    def line_text(self, line: int) -> str:
        if self._lines is None:
            self._lines = self.text.splitlines()
        return self._lines[line - 1] if 0 < line <= len(self._lines) else ""


# -- discovery and reading ------------------------------------------------------------------
def _rule_dir(name: str) -> bool:
    return not name.startswith(".") and name != LIST_DIR


def _add_entries(root: str, files: Sequence[Any], stats: dict | None, found: list[tuple[str, str]],
                 extensions: tuple[str, ...] = RULE_EXTENSIONS) -> None:
    """The visible files among a folder's ``files`` (``os.DirEntry``) whose names end with one
    of ``extensions`` appended to ``found`` as (path, key) — entry_key inlined (10,000 files):
    the real path, and the stat for the cache key into ``stats`` where given."""
    prefix = None
    for entry in files:
        name = entry.name
        if not name.startswith(".") and name.lower().endswith(extensions):
            if prefix is None:
                prefix = entry_prefix(os.path.realpath(root))
            if stats is not None:
                try:
                    stats[entry.path] = entry.stat()
                except OSError:
                    pass
            found.append((entry.path, os.path.realpath(entry.path) if entry.is_symlink() else prefix + name))


def rule_files(paths: Sequence[str | Path], problems: list[Problem], stats: dict | None = None) -> list[str]:
    """Rule files under ``paths`` in a stable order (directories walked, sorted). ``stats``
    (optional) gets each file's ``os.stat`` result (symlinks followed) where the walk has it."""
    out: list[str] = []
    seen: set[str] = set()

    def add(p: str, key: str) -> None:
        if key not in seen:
            seen.add(key)
            out.append(p)

    for raw in paths:
        p = str(raw)
        if os.path.isdir(p):
            found = []
            for root, files in walk_files(p, _rule_dir):  # lists: see lists.py
                _add_entries(root, files, stats, found)
            if not found:
                problems.append(Problem(p, 1, 1, "no rule files (*.yml, *.yaml) in this directory"))
            for f, key in found:
                add(f, key)
        elif os.path.isfile(p):
            add(p, os.path.realpath(p))
        else:
            problems.append(Problem(p, 1, 1, "no such file or directory"))
    return out


def rule_and_list_files(
    paths: Sequence[str | Path], problems: list[Problem], stats: dict | None = None, models: list[str] | None = None,
) -> tuple[list[str], list[str]]:
    """``(rule_files(paths, problems, stats), list_files(paths, None, stats))`` from one walk of
    each directory (the two walks each listed the 10,000 files of a large rules folder).
    ``models`` (optional) gets the model files (``*.npz``) beside the rule files: the
    classifier's model, whose content the compiled-set cache key includes."""
    rules_out: list[str] = []
    lists_out: list[str] = []
    seen: set[str] = set()
    seen_lists: set[str] = set()
    for raw in paths:
        p = str(raw)
        if not os.path.isdir(p):
            if os.path.isfile(p):
                if (key := os.path.realpath(p)) not in seen:
                    seen.add(key)
                    rules_out.append(p)
                    if models is not None:  # a classifier file given alone: its model is beside it
                        _model_files(os.path.dirname(p) or ".", models, stats)
            else:
                problems.append(Problem(p, 1, 1, "no such file or directory"))
            continue
        # rule files come from the directories rule_files walks (none inside a 'lists' folder
        # below p), list files from every visible folder named 'lists' (as list_files)
        below_lists: set[str] = set()

        def wanted(root: str, p: str = p, below_lists: set[str] = below_lists) -> bool:
            if root != p and (os.path.basename(root) == LIST_DIR or os.path.dirname(root) in below_lists):
                below_lists.add(root)
            return root not in below_lists or os.path.basename(root) == LIST_DIR

        found = []
        for root, files in walk_files(p, _visible_dir, wanted):
            if not files:
                continue
            if root not in below_lists:
                _add_entries(root, files, stats, found)
                if models is not None:
                    _add_models(root, files, stats, models)
            if os.path.basename(root) == LIST_DIR:
                listed: list[tuple[str, str]] = []
                _add_entries(root, files, stats, listed, LIST_EXTENSIONS)
                for path, key in listed:
                    if key not in seen_lists:
                        seen_lists.add(key)
                        lists_out.append(path)
        if not found:
            problems.append(Problem(p, 1, 1, "no rule files (*.yml, *.yaml) in this directory"))
        for f, key in found:
            if key not in seen:
                seen.add(key)
                rules_out.append(f)
    return rules_out, lists_out


def _add_models(root: str, files: Sequence[Any], stats: dict | None, models: list[str]) -> None:
    found: list[tuple[str, str]] = []
    _add_entries(root, files, stats, found, MODEL_EXTENSIONS)
    for path, _key in found:
        if path not in models:
            models.append(path)


def _model_files(directory: str, models: list[str], stats: dict | None) -> None:
    try:
        with os.scandir(directory) as it:
            entries = sorted((e for e in it if e.is_file()), key=lambda e: e.name)
    except OSError:
        return
    _add_models(directory, entries, stats, models)


def _visible_dir(name: str) -> bool:
    return not name.startswith(".")


_O_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


def _read(file: str, problems: list[Problem]) -> tuple[bytes, str] | None:
    # one open, fstat, read and close per file (10,000 rule files): the read asks for one
    # byte more than the size, so a read of exactly the size is the whole file (no second
    # read for the end); a short read or a file that grew is read on, up to the limit
    try:
        fd = os.open(file, _O_READ)
        try:
            size = os.fstat(fd).st_size
            if size > MAX_FILE_BYTES:
                problems.append(
                    Problem(file, 1, 1, f"rule file is {size / 2**20:.1f} MiB; the limit is {MAX_FILE_BYTES / 2**20:.0f} MiB "
                            "(split it, or keep long watch lists smaller)")
                )
                return None
            data = os.read(fd, size + 1)
            if len(data) != size:
                parts = [data]
                total = len(data)
                while total <= MAX_FILE_BYTES:
                    part = os.read(fd, min(65_536, MAX_FILE_BYTES + 1 - total))
                    if not part:
                        break
                    parts.append(part)
                    total += len(part)
                data = b"".join(parts)
        finally:
            os.close(fd)
    except OSError as exc:
        problems.append(Problem(file, 1, 1, f"cannot read: {exc.strerror or exc}"))
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        pos = exc.start
        line = data.count(b"\n", 0, pos) + 1
        col = pos - (data.rfind(b"\n", 0, pos) + 1) + 1
        problems.append(
            Problem(file, line, col, f"not valid UTF-8 (byte 0x{data[pos]:02x} at offset {pos}); save the file as UTF-8")
        )
        return None
    return data, text


# -- the public entry point -----------------------------------------------------------------
def load_rules(
    paths: Sequence[str | Path], *, known_destinations: set[str] | None = None, classifier: bool = True,
) -> RuleSet:
    """Load, validate and return the rules under ``paths``; raises :class:`RuleSetError`.

    Actor files (a top-level mapping with ``actors:``) are read first, so rules of any file
    can reference any actor (``@actor:ID`` in terms and in ``sources:``). A classifier file
    (``classifier:``, rules/classifier.yml) gives the set its learned classifier and model;
    ``classifier=False`` leaves it out unread (training a new model).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    with paused_gc():
        return _load_rules(paths, known_destinations, classifier)


def _load_rules(paths: Sequence[str | Path], known_destinations: set[str] | None, with_classifier: bool = True) -> RuleSet:
    problems: list[Problem] = []
    files, found_lists = rule_and_list_files(paths, problems)
    lists_job = load_lists_in_background(found_lists)  # a second process, if it helps
    shells = getattr(lists_job, "shells", None)  # the lists' stand-ins (see lists.PendingListTerms)
    early = None
    term_memo: dict = {}
    actor_memo: dict[tuple[str, str], object] = {}
    try:
        parsed = [(file, _parse_file(file, problems)) for file in files]
        actors, actor_files = _build_all_actors(parsed, problems)
        classifier, skipped = _build_classifier(parsed, problems, known_destinations, with_classifier)  # rules/classifier.yml
        if skipped:
            actor_files = actor_files + skipped  # neither is a rule file
        if shells is not None:  # the rules built while the child parses the lists
            early = _build_files(parsed, actor_files, actors, actor_memo, term_memo, shells, set(), known_destinations, True)
    finally:
        loaded = lists_job() if lists_job is not None else None  # (lists, their problems, failed lists)
    failed_lists: set[str] = set()
    if loaded is None:
        lists = load_lists(found_lists, problems, failed_lists)
    else:
        lists, list_problems, failed_lists = loaded
        problems.extend(list_problems)
        if early is not None and (list_problems or failed_lists or not _fill_shells(shells, lists)):
            early = None  # a list with problems: the rules are built the usual way, below
        if early is not None:
            lists = {name: WatchList(wl.name, wl.file, shells[name].terms, wl.digest, wl.entries) for name, wl in lists.items()}
    if early is None:
        early = _build_files(parsed, actor_files, actors, actor_memo, term_memo, lists, failed_lists, known_destinations, False)
    rules: list[Rule] = []
    for i, got in enumerate(early):
        if got is None:  # it asked for a list's terms before the child's answer: built now
            got = _build_files([parsed[i]], actor_files, actors, actor_memo, term_memo, lists, failed_lists,
                               known_destinations, True)[0]
        built, file_problems = got  # type: ignore[misc]
        rules.extend(built)
        problems.extend(file_problems)
    first: dict[str, Rule] = {}
    for rule in rules:
        other = first.get(rule.id)
        if other is None:
            first[rule.id] = rule
        else:
            problems.append(
                Problem(rule.file, *rule.id_pos, f"duplicate id '{rule.id}' (also defined at {other.file}:{other.id_pos[0]}:{other.id_pos[1]})")
            )
    if classifier is not None and classifier.id in first:
        other = first[classifier.id]
        problems.append(Problem(classifier.file, classifier.line, 1, f"duplicate id '{classifier.id}' (also defined at "
                                f"{other.file}:{other.id_pos[0]}:{other.id_pos[1]})"))
    _check_budget(rules, problems)
    if problems:
        raise RuleSetError(problems)
    return RuleSet(rules=rules, files=files, actors=list(actors.values()), lists=list(lists.values()), classifier=classifier)


def _build_classifier(
    parsed: list, problems: list[Problem], known_destinations: set[str] | None, build: bool = True,
) -> tuple[Any, list[str]]:
    """(the set's learned classifier or None, the classifier files): the files whose mapping
    has ``classifier:`` (monitor/rules/classifier_file.py; NumPy imported only when there is one)."""
    found = [(file, got) for file, got in parsed if got is not None and got[2].kind == "map"
             and any(k.kind == "scalar" and k.value == "classifier" for k, _v in got[2].items())]
    if not found or not build:
        return None, [file for file, _got in found]
    from .classifier_file import build_classifier, one_classifier

    specs = []
    for _file, (ctx, _data, root) in found:
        spec = build_classifier(ctx, root, known_destinations)
        if spec is not None:
            specs.append(spec)
    return one_classifier(specs, problems), [file for file, _got in found]


def _build_all_actors(parsed: list, problems: list[Problem]) -> tuple[dict[str, Actor], list[str]]:
    """The actors of the actor files among ``parsed`` (read first: any rule can reference any actor)."""
    actors: dict[str, Actor] = {}
    actor_files = []
    for file, got in parsed:
        if got is not None and _is_actor_file(got[2]):
            actor_files.append(file)
            for actor in _build_actors(got[0], got[2]):
                other = actors.get(actor.id)
                if other is None:
                    actors[actor.id] = actor
                else:
                    problems.append(Problem(actor.file, actor.line, actor.col,
                                            f"duplicate actor id '{actor.id}' (also defined at {other.file}:{other.line}:{other.col})"))
    _check_members(actors, problems)
    return actors, actor_files


def _build_files(
    parsed: list, actor_files: list[str], actors: dict[str, Actor], actor_memo: dict, term_memo: dict,
    lists: dict[str, WatchList], failed_lists: set[str], known_destinations: set[str] | None, apart: bool,
) -> list:
    """Per file of ``parsed``: (its rules, its build problems). With ``apart`` each file's
    problems are collected on their own (the caller adds them in file order) and a file that
    asks for a list still being parsed (:class:`~monitor.rules.lists.ListPending`) is None;
    without it the problems go to each file's own list as they come (the usual order)."""
    out: list = []
    for file, got in parsed:
        if got is None or file in actor_files:
            out.append(((), ()))
            continue
        ctx, data, root = got
        ctx.actors = actors
        ctx.actor_memo = actor_memo
        ctx.term_memo = term_memo
        ctx.lists = lists
        ctx.failed_lists = failed_lists
        if not apart:
            out.append((_build_rules(ctx, data, root, known_destinations), ()))
            continue
        shared = ctx.problems
        ctx.problems = mine = []
        try:
            out.append((_build_rules(ctx, data, root, known_destinations), mine))
        except ListPending:
            out.append(None)
        finally:
            ctx.problems = shared
    return out


def _fill_shells(shells: dict[str, WatchList], lists: dict[str, WatchList]) -> bool:
    """Fill the stand-ins the early rules hold with the child's lists; False when the two do
    not correspond (then nothing is filled)."""
    if shells.keys() != lists.keys() or any(shells[n].digest != wl.digest for n, wl in lists.items()):
        return False
    for name, wl in lists.items():
        fill_pending(shells[name].terms, wl.terms)  # type: ignore[arg-type]
    return True


def load_actor_titles(paths: Sequence[str | Path]) -> dict[str, str]:
    """Actor id -> title from the actor files under ``paths`` (for alert rendering).

    Best effort: problems are ignored (``rules check`` reports them), a missing path gives {}.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    problems: list[Problem] = []
    out: dict[str, str] = {}
    for file in rule_files([p for p in paths if os.path.exists(p)], problems):
        got = _parse_file(file, problems)
        if got is not None and _is_actor_file(got[2]):
            for actor in _build_actors(got[0], got[2]):
                out.setdefault(actor.id, actor.title)
    return out


def _check_budget(rules: list[Rule], problems: list[Problem]) -> None:
    regexes = 0
    largest: tuple[int, Rule, Selection] | None = None
    words: dict[str, set] = {}  # field -> its distinct term words (kind, text): the matcher holds each once
    seen_tuples: set[tuple[str, int]] = set()  # (field, id(terms)): selections that reference one list share it
    for rule in rules:
        for sel in rule.selections:
            regexes += len(sel.regexes)
            terms = sel.terms
            if not terms:
                continue
            field = sel.field
            key = (field, id(terms))
            if key not in seen_tuples:
                seen_tuples.add(key)
                if isinstance(terms, ListTerms):  # a list's distinct words, computed once
                    words.setdefault(field, set()).update(terms.flat()[0])
                else:  # every word of every term in one C-level pass (a Term is a (raw, words) tuple)
                    words.setdefault(field, set()).update(chain.from_iterable(map(_TERM_WORDS, terms)))
            if largest is None or len(terms) > largest[0]:
                largest = (len(terms), rule, sel)
    if largest is not None:  # the largest selection by its distinct words
        _n, rule, sel = largest
        terms = sel.terms
        n = len(terms.flat()[0]) if isinstance(terms, ListTerms) else len({w for t in terms for w in t.words})
        largest = (n, rule, sel)
    total = sum(map(len, words.values()))
    if total > MAX_PATTERNS and largest is not None:
        n, rule, sel = largest
        problems.append(
            Problem(rule.file, sel.line, sel.col,
                    f"the rule set needs {total:,} match patterns (at most {MAX_PATTERNS:,}; one per distinct term word); "
                    f"the largest is selection '{sel.name}' of rule '{rule.id}' "
                    f"with {n:,}")
        )
    if regexes > MAX_REGEXES:
        problems.append(Problem(rules[0].file, 1, 1, f"the rule set has {regexes:,} regexes (at most {MAX_REGEXES:,})"))


def load_file(
    file: str, problems: list[Problem], known_destinations: set[str] | None = None, actors: dict[str, Actor] | None = None
) -> list[Rule]:
    """The rules of one file; problems are appended to ``problems``."""
    got = _parse_file(file, problems)
    if got is None:
        return []
    ctx, data, root = got
    if _is_actor_file(root) or (root.kind == "map" and any(k.kind == "scalar" and k.value == "classifier" for k, _v in root.items())):
        return []
    ctx.actors = actors or {}
    return _build_rules(ctx, data, root, known_destinations)


def _parse_file(file: str, problems: list[Problem]) -> tuple[_FileContext, bytes, Node] | None:
    """Read and parse one file: (context, bytes, root mapping), or None after a problem."""
    read = _read(file, problems)
    if read is None:
        return None
    data, text = read
    ctx = _FileContext(file, text, problems)
    try:
        parsed = parse_yaml(text)
    except YamlSyntaxError as exc:
        ctx.add((exc.line, exc.col), exc.message)
        return None
    for issue in parsed.issues:
        ctx.add((issue.line, issue.col), issue.message)
    docs = parsed.documents
    if not docs or (len(docs) == 1 and docs[0].is_null):
        ctx.add((1, 1), "empty rule file (expected a rule mapping with 'id', or 'rules:' with a list of rules)")
        return None
    if len(docs) > 1:
        ctx.add(docs[1], "several YAML documents in one file; list several rules under 'rules:' instead")
        return None
    root = docs[0]
    if root.kind != "map":
        ctx.add(root, "a rule file must be a mapping (one rule with 'id'), or have 'rules:' with a list of rules")
        return None
    return ctx, data, root


def _is_actor_file(root: Node) -> bool:
    return root.kind == "map" and any(k.kind == "scalar" and k.value == "actors" for k, _v in root.items())


def _build_rules(ctx: _FileContext, data: bytes, root: Node, known_destinations: set[str] | None) -> list[Rule]:
    keys = {k.value: (k, v) for k, v in root.items() if k.kind == "scalar"}
    if "rules" in keys:
        key_node, seq = keys["rules"]
        for k, _v in root.items():
            if k.kind == "scalar" and k.value != "rules":
                ctx.add(k, f"unknown key '{k.value}' next to 'rules:' (put it inside each rule)")
        if seq.kind != "seq":
            ctx.add(seq if not seq.is_null else key_node, "'rules' must be a list of rules")
            return []
        out = []
        for item in seq.value:  # type: ignore[union-attr]
            if item.kind != "map":
                ctx.add(item, "each entry under 'rules' must be a rule mapping")
                continue
            canonical = canonical_yaml(item.to_plain())
            rule = _build_rule(item, ctx, hashlib.sha256(canonical.encode("utf-8")).hexdigest(), known_destinations)
            if rule is not None:
                out.append(rule)
        if not seq.value:
            ctx.add(seq, "'rules' is empty")
        return out
    rule = _build_rule(root, ctx, hashlib.sha256(data).hexdigest(), known_destinations)
    return [rule] if rule is not None else []


# -- the canonical YAML of a rule under ``rules:`` (its hash) -------------------------------
_C_DUMPER = getattr(yaml, "CSafeDumper", None)  # libyaml's emitter (PyYAML built with it)
# Strings the pure-Python emitter and libyaml's write alike: printable BMP text (no U+2028,
# U+2029 or BOM, no tabs or control characters), line breaks only away from spaces (a space
# next to a break, or a character that needs an escape, makes both choose double quotes, and
# they fold long double-quoted lines differently); keys without breaks and short enough that
# both call them simple keys (one counts characters, the other bytes).
_NOT_PLAIN = re.compile("[^\n\x20-\x7e\u00a0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd]| \n|\n ")
_MAX_C_KEY_BYTES = 100


def canonical_yaml(plain: object) -> str:
    """``yaml.safe_dump(plain, sort_keys=True, allow_unicode=True, default_flow_style=False)``,
    the text a rule under ``rules:`` is hashed by, written by libyaml's emitter (~6x faster)
    when every string of ``plain`` is of a kind both emitters write the same way (see
    :data:`_NOT_PLAIN`), else by PyYAML's own: the same text either way
    (``tests/test_rules_format.py`` compares them), so a rule's hash does not change."""
    if _C_DUMPER is not None and _c_emitter_safe(plain):
        return yaml.dump(plain, Dumper=_C_DUMPER, sort_keys=True, allow_unicode=True, default_flow_style=False)
    return yaml.safe_dump(plain, sort_keys=True, allow_unicode=True, default_flow_style=False)


def _c_emitter_safe(plain: object) -> bool:
    stack = [plain]
    search = _NOT_PLAIN.search
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if search(value):
                return False
        elif isinstance(value, dict):
            for k, v in value.items():
                if isinstance(k, str):
                    if search(k) or "\n" in k or len(k.encode("utf-8")) >= _MAX_C_KEY_BYTES:
                        return False
                elif k is not None:
                    return False
                stack.append(v)
        elif isinstance(value, list):
            stack.extend(value)
        elif value is not None:
            return False
    return True


# -- actors ---------------------------------------------------------------------------------
def _build_actors(ctx: _FileContext, root: Node) -> list[Actor]:
    """The actors of an actor file (a mapping with ``actors:``, a list of actor mappings)."""
    out: list[Actor] = []
    seq = None
    for k, v in root.items():
        if k.kind == "scalar" and k.value == "actors":
            seq = (k, v)
        else:
            label = k.value if k.kind == "scalar" else "?"
            ctx.add(k, f"unknown key '{label}' next to 'actors:' (an actor file holds only 'actors:')")
    assert seq is not None
    key_node, seq_node = seq
    if seq_node.kind != "seq" or not seq_node.value:
        ctx.add(seq_node if not seq_node.is_null else key_node, "'actors' must be a non-empty list of actors")
        return out
    for item in seq_node.value:  # type: ignore[union-attr]
        if item.kind != "map":
            ctx.add(item, "each entry under 'actors' must be an actor mapping (id, type, title, names, accounts)")
            continue
        actor = _build_actor(ctx, item)
        if actor is not None:
            out.append(actor)
    return out


def _build_actor(ctx: _FileContext, node: Node) -> Actor | None:
    n_before = len(ctx.problems)
    fields: dict[str, tuple[Node, Node]] = {}
    for k, v in node.items():
        if k.kind != "scalar" or k.value not in ACTOR_KEYS:
            label = k.value if k.kind == "scalar" else "?"
            ctx.add(k, f"actor: unknown key '{label}'{_suggest(str(label), ACTOR_KEYS)}")
            continue
        fields[k.value] = (k, v)  # type: ignore[index]
    actor_id = None
    where = "actor"
    if "id" not in fields:
        ctx.add(node, "actor: missing required key 'id'")
    else:
        id_node = fields["id"][1]
        value = _str(ctx, id_node, "id")
        if value is not None:
            if not _ACTOR_ID_RE.match(value):
                ctx.add(id_node, f"invalid actor id '{value}': use lowercase letters, digits and '-'")
            else:
                actor_id = value
                where = f"actor '{value}'"
    a_type = None
    if "type" not in fields:
        ctx.add(node, f"{where}: missing required key 'type' ({', '.join(ACTOR_TYPES)})")
    else:
        t_node = fields["type"][1]
        value = _str(ctx, t_node, "type")
        if value is not None:
            if value.strip().lower() not in ACTOR_TYPES:
                ctx.add(t_node, f"{where}: unknown type '{value}'{_suggest(value.lower(), ACTOR_TYPES)}; use {', '.join(ACTOR_TYPES)}")
            else:
                a_type = value.strip().lower()
    title = None
    if "title" in fields and not fields["title"][1].is_null:
        title = _str(ctx, fields["title"][1], "title")
    description = ""
    if "description" in fields and not fields["description"][1].is_null:
        description = _str(ctx, fields["description"][1], "description") or ""
    names: list[tuple[str, tuple]] = []
    if "names" in fields and not fields["names"][1].is_null:
        n_node = fields["names"][1]
        if n_node.kind == "map":
            for l_node, terms_node in n_node.items():
                lang = str(l_node.value).strip().lower() if l_node.kind == "scalar" else ""
                if not _LANG_RE.match(lang):
                    ctx.add(l_node, f"{where}: names: '{l_node.value}' is not a language code (use e.g. en, ar, fa)")
                    continue
                terms = _plain_terms(ctx, terms_node, f"{where}: names.{lang}")
                if terms:
                    names.append((lang, tuple(terms)))
        elif n_node.kind == "seq":
            terms = _plain_terms(ctx, n_node, f"{where}: names")
            if terms:
                names.append(("", tuple(terms)))
        else:
            ctx.add(n_node, f"{where}: 'names' must be a mapping of language to names (en: [...], ar: [...])")
    accounts = []
    if "accounts" in fields:
        for s_node, s in _str_list(ctx, fields["accounts"][1], "accounts") or []:
            try:
                pattern = parse_source(s)
            except SourceError as exc:
                ctx.add(s_node, f"{where}: {exc}")
                continue
            if pattern.glob is None:
                ctx.add(s_node, f"{where}: account '{s}' names no channel (write platform:username, e.g. telegram:army21ye)")
                continue
            accounts.append(pattern)
    member_of = None
    member_pos = node
    if "member_of" in fields and not fields["member_of"][1].is_null:
        member_pos = fields["member_of"][1]
        member_of = _str(ctx, member_pos, "member_of")
    if not names and not accounts and len(ctx.problems) == n_before:
        ctx.add(node, f"{where}: needs 'names' or 'accounts'")
    if len(ctx.problems) > n_before or actor_id is None or a_type is None:
        return None
    actor = Actor(
        id=actor_id, type=a_type, title=title or actor_id, names=tuple(names), accounts=tuple(accounts),
        member_of=member_of, description=description, file=ctx.file, line=node.line, col=node.col,
        member_pos=(member_pos.line, member_pos.col),
    )
    return actor


def _plain_terms(ctx: _FileContext, node: Node, where: str) -> list:
    items = _str_list(ctx, node, where)
    out = []
    for t_node, raw in items or []:
        if raw.strip().lower().startswith("@actor"):
            ctx.add(t_node, f"{where}: an actor's names cannot reference actors ({raw!r})")
            continue
        try:
            out.append(parse_term(raw))
        except TermError as exc:
            ctx.add(t_node, f"{where}: {exc}")
    return out


def _check_members(actors: dict[str, Actor], problems: list[Problem]) -> None:
    """``member_of`` names a known actor, and membership has no cycle."""
    for actor in actors.values():
        if actor.member_of is None:
            continue
        line, col = actor.member_pos
        if actor.member_of not in actors:
            problems.append(Problem(actor.file, line, col,
                                    f"actor '{actor.id}': member_of: unknown actor '{actor.member_of}'{_suggest(actor.member_of, actors)}"))
            continue
        seen = [actor.id]
        parent: str | None = actor.member_of
        while parent is not None and parent in actors:
            if parent in seen:
                problems.append(Problem(actor.file, line, col,
                                        f"actor '{actor.id}': member_of makes a cycle ({' -> '.join([*seen, parent])})"))
                break
            seen.append(parent)
            parent = actors[parent].member_of


def _actor_ref(ctx: _FileContext, node: Node, raw: str, where: str) -> Actor | None:
    """The actor an ``@actor:ID`` reference names, or None after a problem."""
    head, _sep, ident = raw.strip().partition(":")
    ident = ident.strip()
    if head.lower() != "@actor" or not ident:
        ctx.add(node, f"{where}: {raw!r}: an actor reference is written '@actor:ID' (e.g. '@actor:houthis')")
        return None
    actor = ctx.actors.get(ident)
    if actor is None:
        hint = _suggest(ident, ctx.actors)
        if not ctx.actors:
            hint += " (no actor file loaded: give the rules folder, or its actors.yml too)"
        ctx.add(node, f"{where}: unknown actor '{ident}'{hint}")
        return None
    ctx.referenced.add(actor.id)
    return actor


def _list_ref(ctx: _FileContext, node: Node, raw: str, where: str) -> WatchList | None:
    """The list an ``@list:NAME`` reference names, or None after a problem."""
    head, _sep, name = raw.strip().partition(":")
    name = name.strip()
    if head.lower() != "@list" or not name:
        ctx.add(node, f"{where}: {raw!r}: a list reference is written '@list:NAME' (e.g. '@list:houthi-commanders')")
        return None
    wl = ctx.lists.get(name)
    if wl is None and name in ctx.failed_lists:  # its file's problems are reported; the rule is not built
        ctx.add(node, f"{where}: list '{name}' has problems (see {LIST_DIR}/{name}.*)")
        return None
    if wl is None:
        hint = _suggest(name, ctx.lists)
        if not ctx.lists:
            hint += " (no list loaded: lists are read from a 'lists' folder of the rules path, e.g. rules/lists/NAME.csv)"
        ctx.add(node, f"{where}: unknown list '{name}'{hint}")
        return None
    ctx.referenced_lists.add(wl.name)
    return wl


# -- one rule -------------------------------------------------------------------------------
def _str(ctx: _FileContext, node: Node, what: str) -> str | None:
    if node.kind != "scalar":
        ctx.add(node, f"'{what}' must be a string")
        return None
    return node.value  # type: ignore[return-value]


def alert_field(ctx: Any, fields: dict[str, Any], known_destinations: set[str] | None) -> list[str]:
    """A rule's (or the classifier's) ``alert:`` destinations; unknown ones are problems."""
    alert: list[str] = []
    if "alert" in fields:
        for a_node, dest in _str_list(ctx, fields["alert"][1], "alert") or []:
            if known_destinations is not None and dest not in known_destinations:
                known = sorted(known_destinations)
                ctx.add(a_node, f"unknown alert destination '{dest}'{_suggest(dest, known)}; known: {', '.join(known)}")
            else:
                alert.append(dest)
    return alert


def throttle_field(ctx: Any, fields: dict[str, Any]) -> int | None:
    """A rule's (or the classifier's) ``throttle:`` in whole seconds (None: none or zero)."""
    if "throttle" not in fields or fields["throttle"][1].is_null:
        return None
    t_node = fields["throttle"][1]
    if t_node.kind != "scalar":
        ctx.add(t_node, "'throttle' must be a duration such as 10m")
        return None
    try:
        seconds = parse_duration(t_node.value)
    except ValueError as exc:
        ctx.add(t_node, f"throttle: {exc}")
        return None
    return int(round(seconds)) or None


def enabled_field(ctx: Any, fields: dict[str, Any]) -> bool:
    """A rule's (or the classifier's) ``enabled:`` (default true)."""
    if "enabled" not in fields:
        return True
    e_node = fields["enabled"][1]
    value = str(e_node.value).lower() if e_node.kind == "scalar" else ""
    if value in _FALSE:
        return False
    if value not in _TRUE:
        ctx.add(e_node, "'enabled' must be true or false")
    return True


def _str_list(ctx: _FileContext, node: Node, what: str, *, allow_scalar: bool = True) -> list[tuple[Node, str]] | None:
    if node.kind == "scalar":
        if node.is_null:
            return []
        if allow_scalar:
            return [(node, node.value)]  # type: ignore[list-item]
        ctx.add(node, f"'{what}' must be a list")
        return None
    if node.kind != "seq":
        ctx.add(node, f"'{what}' must be a list of strings")
        return None
    out = []
    for item in node.value:  # type: ignore[union-attr]
        if item.kind != "scalar":
            ctx.add(item, f"'{what}': each entry must be a string")
            continue
        out.append((item, item.value))
    return out


def _build_rule(node: Node, ctx: _FileContext, rule_hash: str, known_destinations: set[str] | None) -> Rule | None:
    n_before = len(ctx.problems)
    ctx.referenced = set()
    ctx.referenced_lists = set()
    fields: dict[str, tuple[Node, Node]] = {}
    for k, v in node.items():
        if k.kind != "scalar":
            ctx.add(k, "keys must be strings")
            continue
        if k.value not in RULE_KEYS:
            ctx.add(k, f"unknown key '{k.value}'{_suggest(k.value, RULE_KEYS)}")  # type: ignore[arg-type]
            continue
        fields[k.value] = (k, v)  # type: ignore[index]

    # id
    rule_id = None
    id_pos: Node = node
    if "id" not in fields:
        ctx.add(node, "missing required key 'id'")
    else:
        id_node = fields["id"][1]
        id_pos = id_node
        value = _str(ctx, id_node, "id")
        if value is not None:
            if not value:
                ctx.add(id_node, "'id' is empty")
            elif not _ID_RE.match(value):
                ctx.add(id_node, f"invalid id '{value}': use lowercase letters, digits, '.', '_' and '-'")
            else:
                rule_id = value

    title = None
    if "title" in fields:
        title = _str(ctx, fields["title"][1], "title")
    description = ""
    if "description" in fields and not fields["description"][1].is_null:
        description = _str(ctx, fields["description"][1], "description") or ""

    level = "medium"
    if "level" in fields:
        lv_node = fields["level"][1]
        lv = _str(ctx, lv_node, "level")
        if lv is not None:
            if lv.lower() not in LEVELS:
                ctx.add(lv_node, f"unknown level '{lv}'{_suggest(lv.lower(), LEVELS)}; use {', '.join(LEVELS)}")
            else:
                level = lv.lower()

    kind = "watch"
    if "kind" in fields:
        k_node = fields["kind"][1]
        kv = _str(ctx, k_node, "kind")
        if kv is not None:
            if kv.strip().lower() not in KINDS:
                ctx.add(k_node, f"unknown kind '{kv}'{_suggest(kv.strip().lower(), KINDS)}; use {', '.join(KINDS)}")
            else:
                kind = kv.strip().lower()

    tags: list[str] = []
    if "tags" in fields:
        tags = [v for _n, v in (_str_list(ctx, fields["tags"][1], "tags") or [])]

    sources = []
    if "sources" in fields:
        for s_node, s in _str_list(ctx, fields["sources"][1], "sources") or []:
            if s.strip().startswith("@"):
                actor = _actor_ref(ctx, s_node, s, "sources")
                if actor is not None:
                    found = [acc for aid in descendants(ctx.actors, actor.id) for acc in ctx.actors[aid].accounts]
                    if not found:
                        ctx.add(s_node, f"sources: actor '{actor.id}' has no accounts")
                    sources.extend(found)
                continue
            try:
                sources.append(parse_source(s))
            except SourceError as exc:
                ctx.add(s_node, str(exc))

    languages = None
    if "languages" in fields:
        langs = set()
        for l_node, lang in _str_list(ctx, fields["languages"][1], "languages") or []:
            code = lang.strip().lower()
            if not _LANG_RE.match(code):
                ctx.add(l_node, f"languages: '{lang}' is not a language code (use e.g. en, ar, fa)")
            else:
                langs.add(code)
        languages = frozenset(langs) if langs else None

    alert = alert_field(ctx, fields, known_destinations)
    throttle = throttle_field(ctx, fields)
    enabled = enabled_field(ctx, fields)

    author = None
    if "author" in fields and not fields["author"][1].is_null:
        author = _str(ctx, fields["author"][1], "author")
    references = []
    if "references" in fields:
        references = [v for _n, v in (_str_list(ctx, fields["references"][1], "references") or [])]

    # match + condition
    selections: list[Selection] = []
    names_seen: list[str] = []  # every well-formed selection name, even if its content has problems
    sel_ok = True
    if "match" not in fields:
        ctx.add(node, "missing required key 'match' (named selections of terms)")
        sel_ok = False
    else:
        m_key, m_node = fields["match"]
        if m_node.kind != "map" or not m_node.value:
            ctx.add(m_node if not m_node.is_null else m_key, "'match' must be a mapping of named selections")
            sel_ok = False
        else:
            for s_key, s_node in m_node.items():
                name = s_key.value if s_key.kind == "scalar" else None
                if not isinstance(name, str) or not _SELECTION_NAME.match(name):
                    ctx.add(s_key, f"invalid selection name {name!r}: use letters, digits and '_' (not starting with a digit)")
                    sel_ok = False
                    continue
                if name.lower() in RESERVED:
                    ctx.add(s_key, f"selection name '{name}' is a reserved word of conditions")
                    sel_ok = False
                    continue
                if name in names_seen:
                    continue  # duplicate key already reported by the YAML layer
                names_seen.append(name)
                sel = _build_selection(name, s_key, s_node, ctx)
                if sel is None:
                    sel_ok = False
                else:
                    selections.append(sel)

    condition = None
    if "condition" in fields:
        c_node = fields["condition"][1]
        text = _str(ctx, c_node, "condition")
        if text is not None and "match" in fields:
            try:
                condition = _parse_condition_cached(text, names_seen)
            except ConditionErrors as exc:
                for err in exc.errors:
                    ctx.add(_condition_pos(ctx, c_node, text, err.pos), f"condition: {err.message}")
    elif len(names_seen) > 1:
        ctx.add(fields["match"][0], "'condition' is required when 'match' has more than one selection")
    elif sel_ok and len(selections) == 1:
        condition = single_condition(selections[0].name)

    if len(ctx.problems) > n_before or rule_id is None or condition is None:
        return None
    if ctx.referenced or ctx.referenced_lists:  # the rule's meaning includes the actors and lists it references
        folded = "\n".join([rule_hash, *(ctx.actor_fingerprint(ctx.actors[a]) for a in sorted(ctx.referenced)),
                            *("list:" + ctx.lists[n].fingerprint() for n in sorted(ctx.referenced_lists))])
        rule_hash = hashlib.sha256(folded.encode("utf-8")).hexdigest()
    rule = Rule(
        id=rule_id,
        title=title or rule_id,
        level=level,
        selections=tuple(selections),
        condition=condition,
        file=ctx.file,
        line=node.line,
        hash=rule_hash,
        description=description,
        tags=tuple(tags),
        sources=tuple(sources),
        languages=languages,
        alert=tuple(alert),
        throttle=throttle,
        enabled=enabled,
        author=author,
        references=tuple(references),
        id_pos=(id_pos.line, id_pos.col),
        kind=kind,
    )
    return rule


_CONDITIONS: dict[tuple[str, tuple[str, ...]], object] = {}
# patterns check_regex accepted (a pure function of the text: RE2 parses a pattern with ``\pL``
# in ~0.5 ms, and large sets repeat patterns); refusals are not kept, so they are reported each time
_REGEXES_OK: set[str] = set()


def _parse_condition_cached(text: str, names: list[str]):  # noqa: ANN202
    """:func:`parse_condition`, once per (text, selection names): generated and real rule
    sets repeat a few shapes (``(a and b) or who``) thousands of times. A Condition is
    immutable, so rules of one shape share it."""
    key = (text, tuple(names))
    got = _CONDITIONS.get(key)
    if got is None:
        got = parse_condition(text, names)  # errors are not cached: they are raised each time
        if len(_CONDITIONS) >= 20_000:
            _CONDITIONS.clear()
        _CONDITIONS[key] = got
    return got


def _condition_pos(ctx: _FileContext, node: Node, text: str, pos: int) -> tuple[int, int]:
    """File position of character ``pos`` of a condition scalar (exact for one-line scalars)."""
    if node.style in ("|", ">"):
        line = node.line + 1 + text.count("\n", 0, pos)
        first = ctx.line_text(node.line + 1)  # the block's indentation is that of its first line
        indent = len(first) - len(first.lstrip(" "))
        return line, indent + pos - (text.rfind("\n", 0, pos) + 1) + 1
    quote = 1 if node.style in ("'", '"') else 0
    return node.line, node.col + quote + pos


def _build_selection(name: str, key: Node, node: Node, ctx: _FileContext) -> Selection | None:
    n_before = len(ctx.problems)
    where = f"selection '{name}'"
    if node.kind in ("seq", "scalar"):
        if node.is_null:
            ctx.add(key, f"{where} is empty")
            return None
        terms = _terms(ctx, node, where, "any")
        if len(ctx.problems) > n_before or terms is None:
            return None
        return Selection(name, "any", "text", _as_tuple(terms, ctx.term_memo), line=key.line, col=key.col)
    entries: dict[str, tuple[Node, Node]] = {}
    for k, v in node.items():
        if k.kind != "scalar" or k.value not in SELECTION_KEYS:
            label = k.value if k.kind == "scalar" else "?"
            ctx.add(k, f"{where}: unknown key '{label}'{_suggest(str(label), SELECTION_KEYS)}")
            continue
        entries[k.value] = (k, v)  # type: ignore[index]
    ops = [op for op in OPS if op in entries]
    if len(ops) != 1:
        found = f" (found {', '.join(ops)})" if ops else ""
        ctx.add(key, f"{where} needs exactly one of any, all, near, regex{found}")
        return None
    op = ops[0]
    field = "text"
    if "field" in entries:
        f_node = entries["field"][1]
        value = _str(ctx, f_node, "field")
        if value is not None:
            if value not in FIELDS:
                ctx.add(f_node, f"{where}: unknown field '{value}'{_suggest(value, FIELDS)}; use {', '.join(FIELDS)}")
            else:
                field = value
    op_key, op_node = entries[op]
    terms: list = []
    groups: list[tuple[int, ...]] = []
    regexes: list[str] = []
    within = 0
    if op in ("any", "all"):
        terms = _terms(ctx, op_node, where, op) or []
    elif op == "regex":
        items = _str_list(ctx, op_node, "regex")
        if items is not None and not items:
            ctx.add(op_key, f"{where}: 'regex' is empty")
        for r_node, pattern in items or []:
            if pattern not in _REGEXES_OK:
                try:
                    check_regex(pattern)  # the matcher compiles it on first use
                except RegexError as exc:
                    ctx.add(r_node, f"{where}: invalid regex {pattern!r}: {exc}")
                    continue
                if len(_REGEXES_OK) >= 20_000:
                    _REGEXES_OK.clear()
                _REGEXES_OK.add(pattern)
            regexes.append(pattern)
    else:  # near
        if op_node.kind != "map":
            ctx.add(op_node, f"{where}: 'near' must be a mapping with 'terms' and 'within'")
            return None
        near: dict[str, tuple[Node, Node]] = {}
        for k, v in op_node.items():
            if k.kind != "scalar" or k.value not in NEAR_KEYS:
                label = k.value if k.kind == "scalar" else "?"
                ctx.add(k, f"{where}: unknown key '{label}' in 'near'{_suggest(str(label), NEAR_KEYS)}")
                continue
            near[k.value] = (k, v)  # type: ignore[index]
        if "terms" not in near:
            ctx.add(op_node, f"{where}: 'near' needs 'terms'")
        else:
            terms, groups = _near_terms(ctx, near["terms"][1], where)
        if "within" not in near:
            ctx.add(op_node, f"{where}: 'near' needs 'within' (a number of words)")
        else:
            w_node = near["within"][1]
            raw = str(w_node.value) if w_node.kind == "scalar" else ""
            if not raw.isdigit() or not 1 <= int(raw) <= MAX_NEAR_WITHIN:
                ctx.add(w_node, f"{where}: 'within' must be a whole number of words from 1 to {MAX_NEAR_WITHIN}")
            else:
                within = int(raw)
    if len(ctx.problems) > n_before:
        return None
    return Selection(name, op, field, _as_tuple(terms, ctx.term_memo), tuple(regexes), within, key.line, key.col, tuple(groups))


def _as_tuple(terms: "Sequence[Term]", memo: dict | None = None) -> tuple:
    """``terms`` as a tuple; a list's own terms (:class:`~monitor.rules.lists.ListTerms`) are
    kept as they are, so every selection that references the list shares them. With
    ``memo`` (see ``_FileContext.term_memo``), equal tuples of terms are one object."""
    if isinstance(terms, (tuple, ListTerms)):
        return terms  # type: ignore[return-value]
    out = tuple(terms)
    return out if memo is None else memo.setdefault(out, out)


def _near_terms(ctx: _FileContext, node: Node, where: str) -> tuple[list, list[tuple[int, ...]]]:
    """``near.terms``: each entry a term, or a list of alternative terms (one of them must be near)."""
    terms: list = []
    groups: list[tuple[int, ...]] = []
    if node.kind != "seq":
        ctx.add(node, f"{where}: 'near.terms' must be a list")
        return terms, groups
    for entry in node.value:  # type: ignore[union-attr]
        alts = _terms(ctx, entry, where, "near.terms") if entry.kind in ("seq", "scalar") else None
        if entry.kind == "map":
            ctx.add(entry, f"{where}: each entry of 'near.terms' must be a term or a list of alternative terms")
        if alts:
            groups.append(tuple(range(len(terms), len(terms) + len(alts))))
            terms.extend(alts)
    if len(node.value) < 2:  # type: ignore[arg-type]
        ctx.add(node, f"{where}: 'near' needs at least two terms")
    return terms, groups


def _terms(ctx: _FileContext, node: Node, where: str, what: str) -> list | None:
    items = _str_list(ctx, node, what)
    if items is None:
        return None
    if not items:
        ctx.add(node, f"{where}: '{what}' is empty")
        return None
    if len(items) == 1 and "@" in items[0][1] and items[0][1].strip().lower().startswith("@list"):
        # one list: its own tuple of terms, so every selection referencing it shares one
        # tuple object (the budget check and the compiler handle it once)
        wl = _list_ref(ctx, items[0][0], items[0][1], where)
        return wl.terms if wl is not None else []  # type: ignore[return-value]
    out = []
    memo = ctx.term_memo
    for t_node, raw in items:
        if "@" in raw:  # a plain term (the common case) has no reference to look for
            ref = raw.strip().lower()
            if ref.startswith("@actor"):
                actor = _actor_ref(ctx, t_node, raw, where)
                if actor is not None:
                    terms = ctx.actor_terms(actor)
                    if not terms:
                        ctx.add(t_node, f"{where}: actor '{actor.id}' has no names")
                    out.extend(terms)
                continue
            if ref.startswith("@list"):
                wl = _list_ref(ctx, t_node, raw, where)
                if wl is not None:
                    out.extend(wl.terms)
                continue
        term = memo.get(raw)
        if term is None:
            try:
                term = memo[raw] = parse_term(raw)
            except TermError as exc:
                ctx.add(t_node, f"{where}: {exc}")
                continue
        out.append(term)
    return out
