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
from operator import itemgetter
from collections import defaultdict
from itertools import chain, count, islice, repeat
from typing import Any, Callable, Iterable, Iterator, Sequence

from .problems import Problem
from .terms import Term, TermError, Word, parse_term, parse_terms, parse_terms_flat

_tuple_new = tuple.__new__
_TERM_WORDS = itemgetter(1)  # Term.words

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


class ListTerms:
    """A list's terms, kept flat: the raw strings, the list's distinct words, the number of
    each word of each term in that tuple and the number of words of each term (:meth:`flat`).
    A sequence of :class:`~monitor.rules.terms.Term` (indexing, iteration, ``len``, ``==``
    with a tuple of terms), but the ``Term`` objects are only made when something asks for
    them (``rules check``'s lint, a ``near`` group, the reference matcher): loading, the
    pattern budget, compiling and the cache use the flat form, so 200,000 names cost no
    ``Term`` and no tuple of words each. Pickled flat (the cache entry, the loader's child).

    Built from terms (:meth:`of_terms`: the flat form computed on first use) or from the flat
    form (:meth:`of_flat`: what a plain CSV list is parsed into, see
    :func:`~monitor.rules.terms.parse_terms_flat`)."""

    # _pre: each term's rarest word (index, cost), computed by the lists' child (see
    # _rarest_of) for the compiler; _gids: (ListNumbering, each word of each term as its
    # number in that numbering's table), also from the child (see _numbered); neither
    # pickled (the cache entry has the compiled set)
    __slots__ = ("_raws", "_flat", "_terms", "_pre", "_gids", "__weakref__")

    def __init__(self, terms: "Iterable[Term]" = ()) -> None:
        self._terms: tuple[Term, ...] | None = tuple(terms)
        self._raws: list[str] | None = None
        self._flat: tuple[tuple[Word, ...], array, array] | None = None

    @classmethod
    def of_terms(cls, terms: "Iterable[Term]") -> "ListTerms":
        return cls(terms)

    @classmethod
    def of_flat(cls, raws: list[str], words: "tuple[Word, ...]", ids: array, counts: array) -> "ListTerms":
        out = cls.__new__(cls)
        out._terms = None
        out._raws = raws
        out._flat = (words, ids, counts)
        return out

    def flat(self) -> "tuple[tuple[Word, ...], array, array]":
        """(distinct words in order of first occurrence, the number of each word of each term
        in that tuple (array ``I``), the number of words of each term (array ``B``))."""
        got = self._flat
        if got is None:
            per_term = list(map(_TERM_WORDS, self._terms))  # type: ignore[arg-type]
            words = tuple(dict.fromkeys(chain.from_iterable(per_term)))
            number = {w: i for i, w in enumerate(words)}
            ids = array("I", map(number.__getitem__, chain.from_iterable(per_term)))
            counts = array("B", map(len, per_term))  # at most MAX_TERM_WORDS (16)
            got = self._flat = (words, ids, counts)
        return got

    @property
    def raws(self) -> list[str]:
        """Each term as written (``Term.raw``), without making the terms."""
        got = self._raws
        if got is None:
            got = self._raws = [t[0] for t in self._terms]  # type: ignore[union-attr]
        return got

    def word_tuples(self) -> "Iterator[tuple[Word, ...]]":
        """Each term's words (``Term.words``), without making the terms."""
        if self._terms is not None:
            return map(_TERM_WORDS, self._terms)
        words, ids, counts = self._flat  # type: ignore[misc]
        it = map(words.__getitem__, ids)
        return map(tuple, map(islice, repeat(it), counts))

    def terms(self) -> "tuple[Term, ...]":
        """The terms as a tuple (made on first use from the flat form)."""
        got = self._terms
        if got is None:
            got = self._terms = tuple(map(_tuple_new, repeat(Term), zip(self._raws, self.word_tuples())))  # type: ignore[arg-type]
        return got

    def __len__(self) -> int:
        return len(self._terms) if self._terms is not None else len(self._raws)  # type: ignore[arg-type]

    def __iter__(self) -> "Iterator[Term]":
        return iter(self.terms())

    def __getitem__(self, i):  # noqa: ANN001, ANN204 - an index or a slice, as a tuple's
        return self.terms()[i]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ListTerms):
            return self is other or (self.raws == other.raws and list(self.word_tuples()) == list(other.word_tuples()))
        if isinstance(other, tuple):
            return self.terms() == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.terms())

    def __repr__(self) -> str:
        return f"ListTerms({len(self):,} terms)"

    def __reduce__(self) -> tuple:
        words, ids, counts = self.flat()
        raws: "list[str] | str" = self.raws
        joined = "\0".join(raws)
        if raws and joined.count("\0") == len(raws) - 1:  # one string to read back, not one per term
            raws = joined
        return (_list_terms, (raws, counts.tobytes(), words, ids.tobytes()))


def read_bounded(file: str, size: int, limit: int) -> bytes:
    """The content of ``file`` (``size``: its size as last seen), read up to one byte past
    ``limit`` (the caller reports a file that long). Unbuffered, with a first read of the
    file's size: ``open(file, "rb").read(limit + 1)`` allocates a buffer of the whole limit
    (5 MiB) for every file and gives it back, a third of the time of reading 10,000 small
    rule files. A file that grew meanwhile is read on in small steps, up to the limit."""
    with open(file, "rb", buffering=0) as fh:
        data = fh.read(min(size, limit) + 1)
        if data and len(data) <= limit:
            parts = [data]
            total = len(data)
            while total <= limit:
                part = fh.read(min(65_536, limit + 1 - total))  # usually b"": the end of the file
                if not part:
                    break
                parts.append(part)
                total += len(part)
            if len(parts) > 1:
                data = b"".join(parts)
    return data


def _idle_core() -> bool:
    """Whether a second process would get a core of its own now: two CPUs or more and fewer
    other tasks runnable this instant than the CPUs less one (``/proc/loadavg``'s count of
    runnable tasks, this process included; where it cannot be read, the last minute's load
    average at most one below the CPUs). An instant, not the last minute: the load average
    counts the loading process's own last minute (a bench or a daemon that was busy before the
    load) and trails a machine that just became idle or busy. On a machine whose other cores
    are busy the child only adds work (pickling, copy-on-write pages): loaded in-process then."""
    cpus = os.cpu_count() or 1
    if cpus < 2:
        return False
    running = _runnable_now()
    if running is not None:
        return running - 1 <= cpus - 2
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return False
    return load <= cpus - 1


def _runnable_now() -> int | None:
    """Tasks runnable on the machine this instant, this one included (Linux), or None."""
    try:
        with open("/proc/loadavg", "rb") as fh:
            return int(fh.read().split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return None


def _list_terms(raws: "list[str] | str", counts: bytes, words: tuple, ids: bytes) -> ListTerms:
    if isinstance(raws, str):
        raws = raws.split("\0")
    n = array("B")
    n.frombytes(counts)
    w = array("I")
    w.frombytes(ids)
    return ListTerms.of_flat(raws, words, w, n)


def is_list_dir(name: str) -> bool:
    return name == LIST_DIR


def walk_files(
    top: str, keep_dir: "Callable[[str], bool]", want_files: "Callable[[str], bool] | None" = None,
) -> "Iterator[tuple[str, list[os.DirEntry]]]":
    """``(root, its entries that are not directories, sorted by name)`` for ``top`` and the
    directories below it, in the order of ``os.walk(top)`` (top-down, symlinked directories
    not followed, unreadable ones skipped) with each directory's subdirectories filtered by
    ``keep_dir(name)`` and sorted. The entries come from ``os.scandir``: their type, and so
    whether one is a symlink, costs no system call (10,000 rule files: no ``lstat`` each).
    ``want_files(root)`` (optional): False when the caller will not look at a directory's
    files (they are then neither collected nor sorted: an empty list)."""
    stack = [top]
    while stack:
        root = stack.pop()
        try:
            with os.scandir(root) as it:
                entries = list(it)
        except OSError:
            continue
        dirs: list[str] = []
        files: list[os.DirEntry] = []
        keep_files = want_files is None or want_files(root)
        for e in entries:
            try:
                is_dir = e.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                dirs.append(e.name)
            elif keep_files:
                files.append(e)
        files.sort(key=_entry_name)
        yield root, files
        join, islink = os.path.join, os.path.islink
        stack.extend(reversed([p for p in (join(root, d) for d in sorted(filter(keep_dir, dirs))) if not islink(p)]))


def _entry_name(entry: os.DirEntry) -> str:
    return entry.name


def entry_key(entry: os.DirEntry, real_root: str, stats: dict | None) -> str:
    """``os.path.realpath`` of a walked file (``real_root``: its directory's real path), one
    call for symlinks only; ``stats`` (optional) gets the file's ``stat`` (symlinks followed)."""
    if stats is not None:
        try:
            stats[entry.path] = entry.stat()
        except OSError:
            pass
    if entry.is_symlink():
        return os.path.realpath(entry.path)
    return os.path.join(real_root, entry.name)


def entry_prefix(real_root: str) -> str:
    """``real_root`` and a separator: ``entry_prefix(r) + name == os.path.join(r, name)`` for a
    name without separators (a directory entry's), one concatenation per file."""
    return os.path.join(real_root, "")


def list_files(paths: Sequence[str], problems: list[Problem] | None = None, stats: dict | None = None) -> list[str]:
    """List files under ``paths`` (in ``lists`` folders, sorted; hidden ones skipped).
    ``stats`` (optional) gets each file's ``os.stat`` result."""
    out: list[str] = []
    seen: set[str] = set()
    for raw in paths:
        p = str(raw)
        if not os.path.isdir(p):
            continue
        for root, files in walk_files(p, _visible, _is_list_root):
            if os.path.basename(root) != LIST_DIR:
                continue
            real_root = os.path.realpath(root)
            for entry in files:
                name = entry.name
                if name.startswith(".") or not name.lower().endswith(LIST_EXTENSIONS):
                    continue
                key = entry_key(entry, real_root, stats)
                if key not in seen:
                    seen.add(key)
                    out.append(entry.path)
    return out


def _visible(name: str) -> bool:
    return not name.startswith(".")


def _is_list_root(root: str) -> bool:
    return os.path.basename(root) == LIST_DIR


def load_lists(
    files: Sequence[str], problems: list[Problem], failed: set[str] | None = None, data: dict[str, bytes] | None = None
) -> dict[str, WatchList]:
    """The lists of ``files`` by name; problems are appended to ``problems``, the names of
    the lists that had problems added to ``failed``. ``data``: files already read (their
    bytes, see :func:`_read_ahead`), not read again."""
    out: dict[str, WatchList] = {}
    for file in files:
        got = load_list(file, problems, None if data is None else data.get(file))
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


def load_list(file: str, problems: list[Problem], data: bytes | None = None) -> WatchList | None:
    name = os.path.splitext(os.path.basename(file))[0]
    if not _NAME_RE.match(name):
        problems.append(Problem(file, 1, 1, f"invalid list name '{name}': name the file with lowercase letters, "
                                            "digits, '.', '_' and '-' (e.g. houthi-commanders.csv)"))
        return None
    if data is not None:  # read by the parent before the fork (no problem there: see _read_ahead)
        return _parse_list(file, name, data, problems)
    try:
        size = os.path.getsize(file)
        if size > MAX_LIST_BYTES:
            problems.append(Problem(file, 1, 1, f"list file is {size / 2**20:.1f} MiB; the limit is "
                                                f"{MAX_LIST_BYTES / 2**20:.0f} MiB (split it into several lists)"))
            return None
        data = read_bounded(file, size, MAX_LIST_BYTES)
    except OSError as exc:
        problems.append(Problem(file, 1, 1, f"cannot read: {exc.strerror or exc}"))
        return None
    if len(data) > MAX_LIST_BYTES:
        problems.append(Problem(file, 1, 1, f"list file is over {MAX_LIST_BYTES / 2**20:.0f} MiB; the limit is "
                                            f"{MAX_LIST_BYTES / 2**20:.0f} MiB (split it into several lists)"))
        return None
    return _parse_list(file, name, data, problems)


def _parse_list(file: str, name: str, data: bytes, problems: list[Problem]) -> WatchList | None:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        pos = exc.start
        line = data.count(b"\n", 0, pos) + 1
        problems.append(Problem(file, line, 1, f"not valid UTF-8 (byte 0x{data[pos]:02x} at offset {pos}); save the file as UTF-8"))
        return None
    n_before = len(problems)
    digest = hashlib.sha256(data).hexdigest()
    if not file.lower().endswith((".yml", ".yaml")):
        fast = _plain_list(text)
        if fast is not None:
            return WatchList(name, file, fast[0], digest, fast[1])
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
    return WatchList(name, file, ListTerms(terms.values()), digest, entries)


def _plain_list(text: str) -> "tuple[ListTerms, int] | None":
    """(terms, entries) of a CSV list that :func:`_csv_rows` reads as plain lines split at
    commas and whose every entry parses (see :func:`~monitor.rules.terms.parse_terms`): the
    same terms in the same order as the row by row loop of :func:`load_list`, without a
    position per cell. None otherwise (a quote, a problem, an empty list...): then that loop
    reads the file and reports what is wrong where."""
    if '"' in text or "\r" in text or "\0" in text:
        return None
    lines = text.split("\n")
    if max(map(len, lines)) > csv.field_size_limit():
        return None
    if "#" in text:
        lines = [line for line in lines if not line.lstrip().startswith("#")]
    if "," in text:
        cells: list[str] = []
        entries = 0
        for line in lines:
            row = [c for c in map(str.strip, line.split(",")) if c]
            if row:
                entries += 1
                cells += row
    else:
        cells = [c for c in map(str.strip, lines) if c]
        entries = len(cells)
    if not cells:
        return None
    raws = list(dict.fromkeys(cells))  # the first of equal entries, in order
    if "\n@" in "\n" + "\n".join(raws):  # a reference: not allowed in a list (reported by the loop)
        return None
    flat = parse_terms_flat(raws)
    if flat is not None:  # the common case: no Term objects made
        return ListTerms.of_flat(raws, *flat), entries
    terms = parse_terms(raws)
    if None in terms:
        try:
            terms = [parse_term(r) if t is None else t for r, t in zip(raws, terms)]
        except TermError:
            return None
    return ListTerms(terms), entries


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
# 200,000 names cost ~2 s of parsing; the rule files' reading and YAML cost ~1.5 s. When a core
# is free the lists are parsed in a forked child while the parent parses the rule files and
# then builds the rules against stand-ins of the lists (PendingListTerms: a rule holds a list's
# terms object and its digest, not its names); the child's lists come back pickled flat (see
# ListTerms: no pickled object per term) and fill the stand-ins in place.
FORK_MIN_BYTES = 2 * 1024 * 1024  # list files smaller than this in all are loaded in-process


class ListPending(Exception):
    """Something asked for the terms of a list its child has not sent yet (see
    :class:`PendingListTerms`): build that rule file again once the lists are in."""


class PendingListTerms(ListTerms):
    """A list's terms while the child parses them: rules can reference it (their selections
    hold this object, shared like any list's terms) but whatever asks for its terms raises
    :class:`ListPending`. :func:`fill_pending` makes it the list's :class:`ListTerms`, in place."""

    __slots__ = ()

    def __init__(self) -> None:  # noqa: D107 - nothing yet
        self._terms = self._raws = self._flat = self._pre = self._gids = None

    def _pending(self, *_args: object) -> "Any":
        raise ListPending("a watch list still being parsed")

    flat = word_tuples = terms = __len__ = __iter__ = __getitem__ = __eq__ = __reduce__ = _pending  # type: ignore[assignment]
    raws = property(_pending)  # type: ignore[assignment]

    def __hash__(self) -> int:
        return self._pending()

    def __repr__(self) -> str:
        return "PendingListTerms()"


def fill_pending(pending: ListTerms, got: ListTerms) -> None:
    """Give ``pending`` (a :class:`PendingListTerms`) the terms of ``got`` and make it a plain
    :class:`ListTerms`: every selection already built against it sees the list's terms."""
    pending._terms, pending._raws, pending._flat = got._terms, got._raws, got._flat
    pending._pre = getattr(got, "_pre", None)
    pending._gids = getattr(got, "_gids", None)
    pending.__class__ = ListTerms


def _rarest_of(lists: dict[str, WatchList]) -> dict[str, tuple[bytes, bytes]]:
    """For each list in its flat form: each term's rarest word, the first of its cheapest by
    :func:`~monitor.rules.anchors.word_cost` (the compiler's anchor choice, see
    ``matcher._Interner._compile_flat``), as two arrays' bytes (index ``B``, cost ``d``).
    Computed by the lists' child after parsing, while the parent still builds the rules: a
    pure function of the words, so the compiler takes it as it is."""
    from .anchors import word_cost

    memo: dict[Word, float] = {}
    out: dict[str, tuple[bytes, bytes]] = {}
    for name, wl in lists.items():
        terms = wl.terms
        flat = terms._flat if isinstance(terms, ListTerms) else None
        if flat is None:
            continue
        words, ids, counts = flat
        wc = [memo[w] if w in memo else memo.setdefault(w, word_cost(w)) for w in words]
        cs = list(map(wc.__getitem__, ids))
        if len(ids) == len(counts):  # one word each
            idx = bytes(len(counts))
            rc = cs
        else:
            at = 0
            ix: list[int] = []
            rc = []
            for k in counts:
                if k == 1:
                    ix.append(0)
                    rc.append(cs[at])
                else:
                    c = cs[at : at + k]
                    m = min(c)
                    ix.append(c.index(m))
                    rc.append(m)
                at += k
            idx = bytes(ix)
        out[name] = (idx, array("d", rc).tobytes())
    return out


class ListNumbering:
    """The distinct words of all lists of a load in one table (each list in file order, its
    words in order of first occurrence): the compiler gives a field that references every
    one of these lists these words as its first ids, in this order (see
    ``matcher.Matcher._seed_lists``), so each list's terms are already numbered (``_gids``)
    and no word is looked up per list. ``count``: how many lists were numbered."""

    __slots__ = ("table", "count")

    def __init__(self, table: "tuple[Word, ...]", count: int) -> None:
        self.table = table
        self.count = count


def number_lists(flats: "Sequence[tuple[tuple[Word, ...], array]]") -> "tuple[tuple[Word, ...], list[array]]":
    """The words of ``flats`` (each list's distinct words and the number of each word of each
    term in them, in order) in one table, and each list's terms' words as numbers into it."""
    number: defaultdict = defaultdict(count().__next__)  # a word's number on its first occurrence
    out: list[array] = []
    for words, ids in flats:
        local = list(map(number.__getitem__, words))
        out.append(array("I", map(local.__getitem__, ids)))
    return tuple(number), out


def _numbered(lists: dict[str, WatchList]) -> "tuple[tuple[Word, ...], dict[str, bytes]] | None":
    """:func:`number_lists` of every list (the child's lists, in file order), the numbers as
    bytes per list name; None when one has no flat form."""
    flats = []
    for wl in lists.values():
        if not isinstance(wl.terms, ListTerms):
            return None
        words, ids, _counts = wl.terms.flat()
        flats.append((words, ids))
    table, gids = number_lists(flats)
    return table, {name: g.tobytes() for name, g in zip(lists, gids)}


def _attach_numbering(lists: dict[str, WatchList], numbered: "tuple[tuple[Word, ...], dict[str, bytes]] | None") -> None:
    if numbered is None or not lists:
        return
    table, gids = numbered
    if gids.keys() != lists.keys():
        return
    numbering = ListNumbering(table, len(lists))
    for name, wl in lists.items():
        a = array("I")
        a.frombytes(gids[name])
        wl.terms._gids = (numbering, a)  # type: ignore[union-attr]


def _attach_rarest(lists: dict[str, WatchList], rarest: dict[str, tuple[bytes, bytes]]) -> None:
    for name, (idx, rc) in rarest.items():
        wl = lists.get(name)
        if wl is not None:
            costs = array("d")
            costs.frombytes(rc)
            wl.terms._pre = tuple(zip(idx, costs))  # type: ignore[union-attr]


def _read_ahead(files: Sequence[str]) -> "dict[str, bytes] | None":
    """Each list file's bytes, read before the fork (the child parses them from its copy of
    this memory; the parent needs their digests for the stand-ins), or None when a file would
    be a problem (a bad or repeated name, too big, unreadable): then the child reads and
    reports as :func:`load_lists` does, and the rules are built after it answered."""
    out: dict[str, bytes] = {}
    names: set[str] = set()
    try:
        for file in files:
            name = os.path.splitext(os.path.basename(file))[0]
            size = os.path.getsize(file)
            if not _NAME_RE.match(name) or name in names or size > MAX_LIST_BYTES:
                return None
            names.add(name)
            data = out[file] = read_bounded(file, size, MAX_LIST_BYTES)
            if len(data) > MAX_LIST_BYTES:
                return None
    except OSError:
        return None
    return out


def load_lists_in_background(files: Sequence[str]):  # noqa: ANN201 - a callable, see below
    """Start loading ``files`` (as :func:`load_lists`) in a forked child when that can help
    (``os.fork`` available, one thread in this process, a core to spare: see
    :func:`_idle_core`, at least :data:`FORK_MIN_BYTES` of list files); returns a callable giving ``(lists, problems,
    failed)``, or None (then load them in-process). The callable must be called once (it
    reaps the child; a child that failed is replaced by loading in-process). Its ``shells``
    attribute: list name -> a :class:`WatchList` whose terms are a :class:`PendingListTerms`
    (its digest already right), to build rules against while the child works; None when a
    list file would be a problem (then build the rules after the call)."""
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
    data = _read_ahead(files)
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
            got = load_lists(files, problems, failed, data)
            out = pickle.dumps((got, problems, failed, _rarest_of(got), _numbered(got)), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(wfd, "wb") as fh:
                fh.write(out)
            code = 0
        finally:
            os._exit(code)
    os.close(wfd)

    def result() -> tuple[dict[str, WatchList], list[Problem], set[str]]:
        try:
            with os.fdopen(rfd, "rb") as fh:
                got = fh.read()
        finally:
            _pid, status = os.waitpid(pid, 0)
        if status == 0 and got:
            lists, problems, failed, rarest, numbered = pickle.loads(got)  # the lists' terms come flat (see ListTerms)
            _attach_rarest(lists, rarest)
            _attach_numbering(lists, numbered)
            return lists, problems, failed
        problems = []
        failed = set()
        return load_lists(files, problems, failed), problems, failed

    result.shells = None  # type: ignore[attr-defined]
    if data is not None:
        result.shells = {  # type: ignore[attr-defined]
            os.path.splitext(os.path.basename(f))[0]: WatchList(
                os.path.splitext(os.path.basename(f))[0], f, PendingListTerms(), hashlib.sha256(b).hexdigest()  # type: ignore[arg-type]
            )
            for f, b in data.items()
        }
    return result
