"""Watch lists as data: long lists of names kept apart from the rules that use them.

A list file lives in a folder named ``lists`` anywhere under a rules path (``rules/lists/``);
its name is the file name without extension (``houthi-commanders.csv`` is the list
``houthi-commanders``). Rules reference it in any term list (``any``, ``all``, a ``near``
group) as ``"@list:houthi-commanders"``: the reference expands to every name of the list and
its variants, each an alternative term.

Formats (UTF-8):

* ``.csv`` / ``.txt``: one entry a row, the name and then its variants in further columns
  (``Yahya Saree,يحيى سريع,یحیی سریع``); empty rows and rows starting with ``#`` are skipped.
  Read with the C ``csv`` reader: 100,000+ entries load without per-entry YAML cost.
* ``.yml`` / ``.yaml``: a YAML list whose items are a name or a list of a name and its
  variants (``- [Yahya Saree, يحيى سريع]``), parsed with libyaml when available.

Every entry is a term as in a rule (``*`` wildcards, Arabic-script morphology, Persian
pieces). Problems are reported as ``file:line:col: message`` like those of rule files.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import pickle
import re
from array import array
from dataclasses import dataclass
from itertools import chain, islice, repeat
from typing import Sequence

from .problems import Problem
from .terms import Term, TermError, Word, parse_term

_tuple_new = tuple.__new__

LIST_DIR = "lists"
LIST_EXTENSIONS = (".csv", ".txt", ".yml", ".yaml")
MAX_LIST_BYTES = 64 * 1024 * 1024
REF_PREFIX = "@list:"
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]*\Z")


@dataclass(frozen=True, eq=False)
class WatchList:
    name: str
    file: str
    terms: tuple[Term, ...]
    digest: str  # sha256 of the file: folded into the hash of every rule that references the list
    entries: int = 0  # rows (a name with its variants)

    def fingerprint(self) -> str:
        return self.digest


class ListTerms(tuple):
    """A list's terms: a tuple that pickles flat (its raw strings, the number of words of each
    term, its distinct words and their numbers) instead of one pickled object per term, so a
    cached rule set with 200,000 names reads back faster and hot reload's child sends less."""

    __slots__ = ()

    def __reduce__(self) -> tuple:
        words: dict[Word, int] = {}
        number = words.setdefault
        per_term = [t[1] for t in self]  # Term.words
        counts = array("B", map(len, per_term))  # at most MAX_TERM_WORDS (16)
        ids = array("I", [number(w, len(words)) for w in chain.from_iterable(per_term)])
        return (_list_terms, ([t[0] for t in self], counts.tobytes(), tuple(words), ids.tobytes()))


def _idle_core() -> bool:
    """Whether a second process would get a core of its own: two CPUs or more and a load
    average (last minute) at most one below their number. The child costs ~1 CPU second more
    than loading in-process (pickling, copy-on-write pages): on a machine whose cores are
    all busy it only adds work (measured: no gain in wall time at a load of 3 on 2 cores)."""
    cpus = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return False
    return cpus >= 2 and load <= cpus - 1


def _list_terms(raws: list[str], counts: bytes, words: tuple, ids: bytes) -> ListTerms:
    n = array("B")
    n.frombytes(counts)
    w = array("I")
    w.frombytes(ids)
    it = map(words.__getitem__, w)
    return ListTerms(map(_tuple_new, repeat(Term), zip(raws, [tuple(islice(it, k)) for k in n])))


def is_list_dir(name: str) -> bool:
    return name == LIST_DIR


def list_files(paths: Sequence[str], problems: list[Problem] | None = None) -> list[str]:
    """List files under ``paths`` (in ``lists`` folders, sorted; hidden ones skipped)."""
    out: list[str] = []
    seen: set[str] = set()
    for raw in paths:
        p = str(raw)
        if not os.path.isdir(p):
            continue
        for root, dirs, files in os.walk(p):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            if os.path.basename(root) != LIST_DIR:
                continue
            real_root = os.path.realpath(root)
            for name in sorted(files):
                if name.startswith(".") or not name.lower().endswith(LIST_EXTENSIONS):
                    continue
                path = os.path.join(root, name)
                key = os.path.realpath(path) if os.path.islink(path) else os.path.join(real_root, name)
                if key not in seen:
                    seen.add(key)
                    out.append(path)
    return out


def load_lists(files: Sequence[str], problems: list[Problem], failed: set[str] | None = None) -> dict[str, WatchList]:
    """The lists of ``files`` by name; problems are appended to ``problems``, the names of
    the lists that had problems added to ``failed``."""
    out: dict[str, WatchList] = {}
    for file in files:
        got = load_list(file, problems)
        if got is None:
            if failed is not None:
                failed.add(os.path.splitext(os.path.basename(file))[0])
            continue
        other = out.get(got.name)
        if other is not None:
            problems.append(Problem(file, 1, 1, f"duplicate list name '{got.name}' (also {other.file})"))
            continue
        out[got.name] = got
    return out


def load_list(file: str, problems: list[Problem]) -> WatchList | None:
    name = os.path.splitext(os.path.basename(file))[0]
    if not _NAME_RE.match(name):
        problems.append(Problem(file, 1, 1, f"invalid list name '{name}': name the file with lowercase letters, "
                                            "digits, '.', '_' and '-' (e.g. houthi-commanders.csv)"))
        return None
    try:
        size = os.path.getsize(file)
        if size > MAX_LIST_BYTES:
            problems.append(Problem(file, 1, 1, f"list file is {size / 2**20:.1f} MiB; the limit is "
                                                f"{MAX_LIST_BYTES / 2**20:.0f} MiB (split it into several lists)"))
            return None
        with open(file, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        problems.append(Problem(file, 1, 1, f"cannot read: {exc.strerror or exc}"))
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        pos = exc.start
        line = data.count(b"\n", 0, pos) + 1
        problems.append(Problem(file, line, 1, f"not valid UTF-8 (byte 0x{data[pos]:02x} at offset {pos}); save the file as UTF-8"))
        return None
    n_before = len(problems)
    if file.lower().endswith((".yml", ".yaml")):
        rows = _yaml_rows(file, text, problems)
    else:
        rows = _csv_rows(file, text, problems)
    if rows is None:
        return None
    terms: dict[str, Term] = {}
    bad = 0
    parse = parse_term
    for line, col, raw in rows:  # raw: a stripped cell
        if raw in terms:
            continue
        if raw[0] != "@":
            try:
                terms[raw] = parse(raw)
                continue
            except TermError as exc:
                problems.append(Problem(file, line, col, f"list '{name}': {exc}"))
                bad += 1
        else:
            problems.append(Problem(file, line, col, f"list '{name}': {raw!r}: a list entry cannot reference a list or an actor"))
            bad += 1
        if bad >= 50:
            problems.append(Problem(file, line, col, f"list '{name}': too many problems; stopped reading"))
            break
    if len(problems) > n_before:
        return None
    if not terms:
        problems.append(Problem(file, 1, 1, f"list '{name}' is empty (one name a row, variants in further columns)"))
        return None
    entries = len({line for line, _c, _r in rows})
    return WatchList(name, file, ListTerms(terms.values()), hashlib.sha256(data).hexdigest(), entries)


def _csv_rows(file: str, text: str, problems: list[Problem]) -> list[tuple[int, int, str]] | None:
    if '"' not in text and "\r" not in text and "\0" not in text:
        fast = _plain_csv_rows(text)
        if fast is not None:
            return fast
    out: list[tuple[int, int, str]] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for row in reader:
            if not row:
                continue
            first = row[0].lstrip()
            if not first and len(row) == 1:
                continue
            if first.startswith("#"):
                continue
            line = reader.line_num
            for i, cell in enumerate(row):
                cell = cell.strip()
                if cell:
                    out.append((line, i + 1, cell))
    except csv.Error as exc:
        problems.append(Problem(file, reader.line_num, 1, f"not a valid CSV row: {exc}"))
        return None
    return out


def _plain_csv_rows(text: str) -> list[tuple[int, int, str]] | None:
    """:func:`_csv_rows` of a file without quotes, carriage returns or NULs, where the C
    ``csv`` reader's rows are the lines split at commas: the same rows, without its per-row
    cost (None when a line is longer than the reader's field limit: let it report that)."""
    limit = csv.field_size_limit()
    out: list[tuple[int, int, str]] = []
    append = out.append
    for line_no, line in enumerate(text.split("\n"), 1):
        if not line or line.lstrip().startswith("#"):
            continue
        if len(line) > limit:
            return None
        if "," not in line:
            cell = line.strip()
            if cell:
                append((line_no, 1, cell))
            continue
        for i, cell in enumerate(line.split(","), 1):
            cell = cell.strip()
            if cell:
                append((line_no, i, cell))
    return out


def _yaml_rows(file: str, text: str, problems: list[Problem]) -> list[tuple[int, int, str]] | None:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        root = yaml.compose(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problems.append(Problem(file, line, col, f"YAML syntax error: {getattr(exc, 'problem', None) or exc}"))
        return None
    if not isinstance(root, yaml.SequenceNode):
        line, col = (root.start_mark.line + 1, root.start_mark.column + 1) if root is not None else (1, 1)
        problems.append(Problem(file, line, col, "a list file holds a YAML list of names (each a name or [name, variants...])"))
        return None
    out: list[tuple[int, int, str]] = []
    for item in root.value:
        cells = item.value if isinstance(item, yaml.SequenceNode) else [item]
        line = item.start_mark.line + 1
        for cell in cells:
            if not isinstance(cell, yaml.ScalarNode) or cell.tag.endswith((":null", ":map")):
                problems.append(Problem(file, cell.start_mark.line + 1, cell.start_mark.column + 1,
                                        "each entry must be a name or a list of a name and its variants"))
                continue
            value = str(cell.value).strip()
            if value:
                out.append((line, cell.start_mark.column + 1, value))
    return out


# -- loading the lists in a second process ----------------------------------------------------
# 200,000 names cost ~1.3 s of parsing; the rule files' YAML costs as much. When a core is idle
# the lists are parsed in a forked child while the parent parses the rule files, and
# come back pickled flat (see ListTerms: no pickled object per term).
FORK_MIN_BYTES = 2 * 1024 * 1024  # list files smaller than this in all are loaded in-process


def load_lists_in_background(files: Sequence[str]):  # noqa: ANN201 - a callable, see below
    """Start loading ``files`` (as :func:`load_lists`) in a forked child when that can help
    (``os.fork`` available, one thread in this process, a core to spare: see
    :func:`_idle_core`, at least :data:`FORK_MIN_BYTES` of list files); returns a callable giving ``(lists, problems,
    failed)``, or None (then load them in-process). The callable must be called once (it
    reaps the child; a child that failed is replaced by loading in-process)."""
    import threading

    if not files or not hasattr(os, "fork") or threading.active_count() != 1 or not _idle_core():
        return None
    try:
        total = sum(os.path.getsize(f) for f in files)
    except OSError:
        return None
    if total < FORK_MIN_BYTES:
        return None
    files = list(files)
    rfd, wfd = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(rfd)
        os.close(wfd)
        return None
    if pid == 0:  # the child: never returns
        code = 1
        try:
            os.close(rfd)
            problems: list[Problem] = []
            failed: set[str] = set()
            got = load_lists(files, problems, failed)
            data = pickle.dumps((got, problems, failed), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(wfd, "wb") as fh:
                fh.write(data)
            code = 0
        finally:
            os._exit(code)
    os.close(wfd)

    def result() -> tuple[dict[str, WatchList], list[Problem], set[str]]:
        try:
            with os.fdopen(rfd, "rb") as fh:
                data = fh.read()
        finally:
            _pid, status = os.waitpid(pid, 0)
        if status == 0 and data:
            return pickle.loads(data)  # the lists' terms come flat (see ListTerms)
        problems = []
        failed = set()
        return load_lists(files, problems, failed), problems, failed

    return result
