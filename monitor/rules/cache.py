"""The compiled rule set cached on disk, so a daemon restart or ``rules test`` skips the YAML
parse, validation and compilation of a large set.

The key is a SHA-256 of everything the compiled set depends on: the code of
:mod:`monitor.rules` (and of the matcher's C libraries' versions and Python's), every rule,
actor, list and model file (the learned classifier's ``*.npz``) under the rules paths (path,
length and content hash), the known alert
destinations and the default destinations. A file's content hash is reused from the manifest
of the last hashing while its ``stat`` is unchanged (see :func:`source_key`). Any edit gives a new key, so a stale entry is
never used; entries of the same rules paths with another key are removed when a new one is
written. A file that cannot be read back (truncated, damaged, from another version) is
removed and the set rebuilt.

Location: ``$CLAIMWATCH_CACHE_DIR`` (``off`` disables the cache), else
``$XDG_CACHE_HOME/claimwatch/rules`` (``~/.cache/claimwatch/rules``). Entries are written to a
temporary file and renamed into place, so readers never see half a file.

An entry holds two pickles: the *live* matcher (what matching needs: the fields' words,
automata and triggers, the compiled rules and selections) and the *rule set* (the parsed
rules, selections, terms and watch lists: about half of the objects of a large set). Reading
an entry back unpickles only the first; the rule set is read on first use
(:class:`CachedMatcher`: ``matcher.rules``, ``matcher.ruleset``, ``stats()``), so a restart and
a hot reload's read-back in the daemon build far fewer Python objects. Where matching needs
something of the rule set (a hit's terms as written, a selection's regexes) the live pickle
carries it in a flat form (:class:`_TermsView`, :class:`_SelView`). Both parts are checked
(length and CRC-32) when the entry is read: a damaged entry is removed and rebuilt.
"""

from __future__ import annotations

import copyreg
import hashlib
import io
import os
import pickle
import struct
import sys
import tempfile
import threading
import time
import weakref
import zlib
from pathlib import Path
from array import array
from itertools import chain, islice, repeat
from operator import itemgetter
from typing import Any, Callable, Iterator, Sequence

from ..logs import get_logger
from ..gcpause import paused_gc
from .lists import ListTerms, list_files
from .loader import load_rules, rule_and_list_files, rule_files
from .matcher import Matcher, _Alts, _Rule, _Sel, _lazy_alts
from .problems import Problem
from .ruleset import RuleSet

log = get_logger("claimwatch.rules.cache")

CACHE_ENV = "CLAIMWATCH_CACHE_DIR"
MAGIC = b"claimwatch compiled rules v3\n"
_PARTS = struct.Struct("<QQII")  # lengths and CRC-32 of the live pickle and of the rule set's
_code_version: str | None = None


def cache_switched_off(value: str) -> bool:
    """Whether a ``$CLAIMWATCH_CACHE_DIR`` value switches caching off (empty, ``off``, ``0``, ``no``,
    ``false``, ``none``): one answer for the rules cache and the gazetteer's."""
    return value.strip().lower() in ("", "off", "0", "no", "false", "none")


def cache_dir() -> Path | None:
    """Where compiled rule sets are kept, or None when caching is off."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        if cache_switched_off(value):
            return None
        return Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "claimwatch" / "rules"


def code_version() -> str:
    """Hash of the code that builds and reads compiled sets (a code change invalidates them)."""
    global _code_version
    if _code_version is None:
        h = hashlib.sha256(MAGIC)
        here = Path(__file__).resolve().parent
        for f in sorted(here.glob("*.py")) + [here.parent / "model.py", here.parent / "text.py"]:  # text: normalisation
            h.update(f.name.encode() + b"\0" + f.read_bytes())
        from importlib import metadata

        for dist in ("pyahocorasick", "google-re2"):
            try:
                h.update(f"{dist}={metadata.version(dist)}".encode())
            except metadata.PackageNotFoundError:  # pragma: no cover
                pass
        h.update(sys.version.encode())
        _code_version = h.hexdigest()
    return _code_version


RACY_NS = 2_000_000_000  # a file whose mtime or ctime is this close to its hashing is hashed again next time
MANIFEST_VERSION = b"claimwatch rules manifest v1\n"


_clock = time.time_ns  # the wall clock that file times are compared with


def _stat_sig(st: os.stat_result) -> tuple[int, int, int, int, int]:
    """What must be unchanged for a file's recorded content hash to be reused. The ctime
    cannot be set back by a program (``touch -d``, ``cp -p``, ``rsync -t`` set the mtime only)
    and changes with every write, rename into place or inode change."""
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def _manifest_path(directory: Path, where: str) -> Path:
    return directory / f"{where}.manifest"


def _read_manifest(directory: Path | None, where: str) -> dict[str, tuple]:
    """path -> (stat signature or None, SHA-256 of the content) from the last hashing of the
    same rules paths with the same code; {} when there is none or it is unreadable."""
    if directory is None:
        return {}
    try:
        data = _manifest_path(directory, where).read_bytes()
    except OSError:
        return {}
    head = MANIFEST_VERSION + code_version().encode() + b"\n"
    if not data.startswith(head):
        return {}
    try:
        got = pickle.loads(data[len(head):])
    except Exception:  # damaged: hash everything (and write a new one)
        return {}
    return got if isinstance(got, dict) else {}


def _replace_atomically(target: Path, chunks: "list[bytes]", prefix: str, suffix: str = "") -> None:
    """Write ``chunks`` to a temporary file beside ``target`` and rename it over ``target``
    (readers see the old file or the whole new one); the temporary file is removed on error."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _write_manifest(directory: Path, where: str, manifest: dict[str, tuple]) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _replace_atomically(
            _manifest_path(directory, where),
            [MANIFEST_VERSION + code_version().encode() + b"\n", pickle.dumps(manifest, protocol=pickle.HIGHEST_PROTOCOL)],
            prefix=f".{where}-", suffix=".manifest",
        )
    except OSError as exc:
        log.warning("rules cache manifest not written", error=str(exc)[:200])


def _hash_file(path: str) -> tuple[int, bytes]:
    """(length, SHA-256) of the file's content."""
    with open(path, "rb") as fh:
        data = fh.read()
    return len(data), hashlib.sha256(data).digest()


def source_key(
    paths: Sequence[str | Path],
    known_destinations: set[str] | None = None,
    default_destinations: Sequence[str] = ("console",),
) -> tuple[str, str] | None:
    """(key of the paths, key of their content) or None when the paths have problems (the
    load reports them).

    The content key hashes every file's path, length and content hash. The content hash of
    a file is read from the manifest of the last hashing (``WHERE.manifest`` in the cache
    directory) when the file's ``stat`` (size, mtime, ctime, inode, device) is the one recorded
    there; otherwise, or when the file had changed less than :data:`RACY_NS` before it was
    hashed (an edit in the same timestamp tick could then leave the stat unchanged), the file
    is read and hashed again."""
    racy_after = _clock() - RACY_NS  # taken before any file is looked at
    problems: list[Problem] = []
    strs = [str(p) for p in paths]
    stats: dict[str, os.stat_result] = {}  # the walk's lstat of each file that is not a symlink
    models: list[str] = []  # the classifier's model files (*.npz beside the rule files)
    found, found_lists = rule_and_list_files(strs, problems, stats, models)
    files = found + found_lists + models
    if problems:
        return None
    where = hashlib.sha256("\0".join([os.getcwd(), *strs, *map(os.path.abspath, strs)]).encode()).hexdigest()[:20]
    directory = cache_dir()
    old = _read_manifest(directory, where)
    new: dict[str, tuple] = {}
    h = hashlib.sha256(code_version().encode())
    parts: list[bytes] = []  # path, length and content hash of every file: hashed in one go
    stat = os.stat
    get_old = old.get
    for f in files:
        try:
            st = stats.get(f) or stat(f)
            sig = _stat_sig(st)
            known = get_old(f)
            if known is not None and known[0] == sig:
                size, digest = st.st_size, known[1]
            else:
                size, digest = _hash_file(f)
        except OSError:
            return None
        trusted = st.st_mtime_ns < racy_after and st.st_ctime_ns < racy_after and size == st.st_size
        new[f] = (sig if trusted else None, digest)
        parts.append(f"\0{f}\0{size}\0".encode())
        parts.append(digest)
    h.update(b"".join(parts))
    h.update(("\0dest:" + ("*" if known_destinations is None else ",".join(sorted(known_destinations)))).encode())
    h.update(("\0default:" + ",".join(default_destinations)).encode())
    if directory is not None and new != old:
        _write_manifest(directory, where, new)
    return where, h.hexdigest()


class _PoliteReader:
    """A file the unpickler reads frame by frame (64 KiB), sleeping after each three times as
    long as unpickling it took (at least ``pause``): used off the event loop (hot reload), so
    the thread that unpickles holds the GIL a quarter of the time at most and the pipeline
    keeps its pace."""

    BUSY_SHARE = 0.25  # at most this share of the time unpickling: the rest is the event loop's

    def __init__(self, data: memoryview, pause: float) -> None:
        self.data = data
        self.pos = 0
        self.pause = pause
        self.last = time.perf_counter()

    def _advance(self, n: int) -> memoryview:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        if n >= 4096:  # a new frame: sleep in proportion to the time the last one took
            busy = time.perf_counter() - self.last
            time.sleep(max(self.pause, busy * (1 - self.BUSY_SHARE) / self.BUSY_SHARE))
            self.last = time.perf_counter()
        return chunk

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = len(self.data) - self.pos
        return bytes(self._advance(n))

    def readinto(self, buf) -> int:  # noqa: ANN001
        chunk = self._advance(len(buf))
        buf[: len(chunk)] = chunk
        return len(chunk)

    def readline(self) -> bytes:
        end = bytes(self.data[self.pos :]).find(b"\n")
        return self.read(len(self.data) - self.pos if end < 0 else end + 1)


# -- the entry's two parts -------------------------------------------------------------------
class _Rest:
    """The rule set part of an entry, read on first use: an open descriptor of the entry (it
    stays readable when a newer entry replaces the file) and where the part is."""

    def __init__(self, fd: int, offset: int, length: int, crc: int, path: Path) -> None:
        self.fd, self.offset, self.length, self.crc, self.path = fd, offset, length, crc, path
        self.lock = threading.Lock()
        self.value: RuleSet | None = None
        self._close = weakref.finalize(self, os.close, fd)

    def ruleset(self) -> RuleSet:
        with self.lock:
            if self.value is None:
                data = os.pread(self.fd, self.length, self.offset)
                if len(data) != self.length or zlib.crc32(data) != self.crc:  # checked on read: cannot happen
                    raise RuntimeError(f"rules cache entry {self.path} changed after it was read")
                with paused_gc():
                    value = pickle.loads(data)
                if not isinstance(value, RuleSet):
                    raise RuntimeError(f"rules cache entry {self.path}: not a rule set")
                self.value = value
                self._close()  # no longer needed
            return self.value


class _Cell:
    """The one object all stand-ins of an entry's live part refer to: ``rest`` is set when the
    entry is read back (so the stand-ins are built by the unpickler in C, without a Python
    call each)."""

    __slots__ = ("rest",)

    def __init__(self) -> None:
        self.rest: _Rest | None = None

    def ruleset(self) -> RuleSet:
        if self.rest is None:
            raise RuntimeError("a stand-in of a cached rule set outside its matcher")
        return self.rest.ruleset()

    def __reduce__(self) -> tuple:
        return (_Cell, ())


def _slots_reduce(obj: Any, skip: tuple[str, ...] = ()) -> tuple:
    """Pickled as ``object.__new__`` and its slots (no Python call when read back)."""
    return (copyreg.__newobj__, (type(obj),), (None, {k: getattr(obj, k) for k in obj.__slots__ if k not in skip}))


class _LazyPart(tuple):
    """Base of the stand-ins for parts of the rule set: a tuple of what they hold (read
    through properties), the rest read from the real part (:meth:`real`, which reads the rule
    set on first need). Pickled as ``cls.__new__(cls, items)``: the unpickler builds each in C
    (no ``__setstate__`` look-up, which would fall into ``__getattr__``: ~40,000 Python calls
    for 10,000 rules)."""

    __slots__ = ()

    def real(self) -> Any:
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # the pickler's and copy's look-ups
            raise AttributeError(name)
        return getattr(self.real(), name)

    def __reduce__(self) -> tuple:
        return (copyreg.__newobj__, (type(self), tuple(self)))


class _RuleRef(_LazyPart):
    """Stands for a compiled rule's :class:`~monitor.rules.ruleset.Rule` (``_Rule.rule``) until
    the rule set is read: any attribute reads it (see :meth:`CachedMatcher.full`). Made as
    ``_RuleRef((index, cell))``."""

    __slots__ = ()
    index = property(itemgetter(0))
    cell = property(itemgetter(1))

    def real(self) -> Any:
        return self[1].ruleset().rules[self[0]]


class _TermRef:
    """One term of a :class:`_TermsView`: its ``raw`` text at once, anything else from the
    rule set."""

    __slots__ = ("raw", "view", "i")

    def __init__(self, raw: str, view: "_TermsView", i: int) -> None:
        self.raw, self.view, self.i = raw, view, i

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in self.__slots__:
            raise AttributeError(name)
        return getattr(self.view.real()[self.i], name)


class _TermsView:
    """A selection's terms as matching reads them (``terms[i].raw``, for a hit's matches):
    the raw texts joined in one string (one object to unpickle, not one ``Term`` and its
    words per term), split on first use. Selections that share a tuple of terms (a list
    referenced by several rules) share one view, as they shared the tuple."""

    __slots__ = ("joined", "count", "raws", "owner", "cell")
    SEP = "\x00"

    def __init__(self, joined: "str | tuple[str, ...]", count: int, owner: tuple[int, int], cell: _Cell) -> None:
        self.joined, self.count, self.owner, self.cell = joined, count, owner, cell
        self.raws: tuple[str, ...] | None = None

    @classmethod
    def of(cls, terms: Sequence[Any], owner: tuple[int, int], cell: _Cell) -> "_TermsView":
        raws = terms.raws if isinstance(terms, ListTerms) else [t.raw for t in terms]
        joined = cls.SEP.join(raws)
        fits = len(raws) > 0 and joined.count(cls.SEP) == len(raws) - 1
        return cls(joined if fits else tuple(raws), len(raws), owner, cell)

    def _raws(self) -> tuple[str, ...]:
        raws = self.raws
        if raws is None:
            joined = self.joined
            raws = self.raws = tuple(joined.split(self.SEP)) if isinstance(joined, str) else joined
        return raws

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> _TermRef:
        if not isinstance(i, int):
            return self.real()[i]
        raws = self._raws()
        return _TermRef(raws[i], self, i if i >= 0 else i + self.count)

    def real(self) -> tuple:
        ri, j = self.owner
        return self.cell.ruleset().rules[ri].selections[j].terms

    def __reduce_ex__(self, protocol: Any) -> tuple:
        self.raws = None
        return _slots_reduce(self)


class _SelView(_LazyPart):
    """Stands for a compiled selection's :class:`~monitor.rules.ruleset.Selection`
    (``_Sel.sel``): ``terms`` (a :class:`_TermsView`) and ``regexes`` at once, anything else
    from the rule set. Made as ``_SelView((terms, regexes, rule index, selection index,
    cell))``."""

    __slots__ = ()
    terms = property(itemgetter(0))
    regexes = property(itemgetter(1))
    owner = property(itemgetter(2, 3))
    cell = property(itemgetter(4))

    def real(self) -> Any:
        return self[4].ruleset().rules[self[2]].selections[self[3]]


class _FlatWids:
    """A large selection's term word ids (a watch list's: ``_Sel.term_wids``, and the terms of
    its :class:`~monitor.rules.matcher._Alts`) in a cache entry: the ids of all terms' words in
    one ``bytes`` (``uint32``) and the words per term in another (``None``: one word each), so
    reading the entry back makes two objects, not a tuple and its ints per term (10,000 rules
    + 200,000 names: ~750,000 objects). The tuple of tuples is made on first use (a hit's
    matches, the alternatives' sets) and read through :meth:`__getitem__` and iteration;
    selections that shared the tuple share this object (``id`` keys stay one per content)."""

    __slots__ = ("ids", "counts", "n", "wids")
    MIN_TERMS = 64

    @classmethod
    def of(cls, wids: "tuple[tuple[int, ...], ...]") -> "_FlatWids | None":
        """The flat form of ``wids``, or None when it does not fit (a word id of 2**32 or
        more, a term of 256 words or more)."""
        try:
            counts = bytes(map(len, wids))
            ids = array("I", chain.from_iterable(wids)).tobytes()
        except (ValueError, OverflowError):
            return None
        out = cls.__new__(cls)
        out.ids, out.n, out.wids = ids, len(wids), None
        out.counts = None if len(ids) == 4 * len(counts) else counts
        return out

    def tuple(self) -> "tuple[tuple[int, ...], ...]":
        wids = self.wids
        if wids is None:
            flat = memoryview(self.ids).cast("I")
            if self.counts is None:
                wids = tuple(zip(flat))
            else:
                it = iter(flat)
                wids = tuple(map(tuple, map(islice, repeat(it), self.counts)))
            self.wids = wids
        return wids

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: Any) -> Any:
        return self.tuple()[i]

    def __iter__(self) -> Iterator[tuple[int, ...]]:
        return iter(self.tuple())

    def __eq__(self, other: object) -> bool:
        return self.tuple() == (other.tuple() if isinstance(other, _FlatWids) else other)

    __hash__ = None  # type: ignore[assignment]

    def __reduce_ex__(self, protocol: Any) -> tuple:
        # the slots set by the unpickler in C (no __setstate__ or __getattr__ on this class)
        return (copyreg.__newobj__, (_FlatWids,), (None, {"ids": self.ids, "counts": self.counts, "n": self.n, "wids": None}))


class CachedMatcher(Matcher):
    """A :class:`~monitor.rules.Matcher` read back from the cache: it matches as the
    compiled one (same hits, same matches); its rule set (``ruleset``, ``rules``, each
    compiled rule's ``rule`` and selection's ``sel``) is read from the entry on first use
    (:meth:`full`), after which it is the compiled matcher's equal in every part. Pickled,
    it is a plain :class:`~monitor.rules.Matcher`."""

    def __getattr__(self, name: str) -> Any:
        if name == "ruleset":
            return self.full().ruleset
        raise AttributeError(name)

    def full(self) -> "CachedMatcher":
        """Read the rule set (once) and put its objects in place of the stand-ins."""
        if "ruleset" not in self.__dict__:
            ruleset = self.__dict__["_rest"].ruleset()
            rules = ruleset.rules
            for cr in self._rules:
                ref = cr.rule
                if isinstance(ref, _RuleRef):
                    rule = cr.rule = rules[ref[0]]
                    for sel in cr.sels:
                        view = sel.sel
                        if isinstance(view, _SelView):
                            sel.sel = rule.selections[view[3]]
            self.__dict__["ruleset"] = ruleset
        return self

    @property
    def rules(self) -> list:  # type: ignore[override]
        self.full()
        return Matcher.rules.fget(self)  # type: ignore[attr-defined]

    def stats(self) -> dict[str, int]:
        self.full()
        return Matcher.stats(self)

    def __reduce_ex__(self, protocol: Any) -> tuple:
        self.full()
        state = dict(self.__dict__)
        state.pop("_rest", None)
        return (_new_matcher, (), state)


def _new_matcher() -> Matcher:
    return Matcher.__new__(Matcher)


def _new_cached_matcher() -> CachedMatcher:
    return CachedMatcher.__new__(CachedMatcher)


def _live_pickler(buf: io.BytesIO, matcher: Matcher) -> tuple[pickle.Pickler, _Cell]:
    """A pickler of the live part: the matcher as a :class:`CachedMatcher` without its rule
    set, each compiled rule's rule a :class:`_RuleRef`, each selection's a :class:`_SelView`
    (only these three classes go through Python: the dispatch table is looked up by type)."""
    ruleset = matcher.ruleset
    rule_index = {id(r): i for i, r in enumerate(ruleset.rules)}
    sel_index: dict[int, tuple[int, int]] = {}
    for i, r in enumerate(ruleset.rules):
        for j, s in enumerate(r.selections):
            sel_index[id(s)] = (i, j)
    views: dict[int, _TermsView] = {}
    cell = _Cell()

    def reduce_matcher(m: Matcher) -> tuple:
        state = dict(m.__dict__)
        state.pop("ruleset", None)
        state.pop("_rest", None)
        return (_new_cached_matcher, (), state)

    def reduce_rule(cr: _Rule) -> tuple:
        new, args, (_, state) = cr.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
        rule = state["rule"]
        state["rule"] = _RuleRef((rule[0] if isinstance(rule, _RuleRef) else rule_index[id(rule)], cell))
        return (new, args, (None, state))

    flat: dict[int, _FlatWids | None] = {}  # id(a large shared tuple of term word ids) -> its flat form
    alts_flat: dict[int, _FlatWids] = {}  # id(an any selection's alternatives) -> its terms' flat form

    def reduce_sel(sel: _Sel) -> tuple:
        state = {k: getattr(sel, k) for k in _Sel.__slots__ if hasattr(sel, k)}
        wids = state["term_wids"]  # before "alts" in the state (the alternatives may use its flat form)
        if isinstance(wids, tuple) and len(wids) >= _FlatWids.MIN_TERMS:
            got = flat.get(id(wids), False)
            if got is False:
                got = flat[id(wids)] = _FlatWids.of(wids)
                keep.append(wids)  # ids stay valid while pickling
            if got is not None:
                state["term_wids"] = got
                if sel.op == "any" and sel.alts is not None:
                    alts_flat[id(sel.alts)] = got  # made from this tuple (see _Interner.alts_of)
        elif isinstance(wids, _FlatWids) and sel.op == "any" and sel.alts is not None:
            alts_flat[id(sel.alts)] = wids
        s = sel.sel
        if isinstance(s, _SelView):
            view = s
        else:
            owner = sel_index[id(s)]
            terms = views.get(id(s.terms))
            if terms is None:
                terms = views[id(s.terms)] = _TermsView.of(s.terms, owner, cell)
            view = _SelView((terms, tuple(s.regexes), owner[0], owner[1], cell))
        state["sel"] = view
        return (copyreg.__newobj__, (_Sel,), (None, state))

    def reduce_alts(alts: _Alts) -> tuple:
        got = alts_flat.get(id(alts))
        if got is not None and alts.LAZY_MIN <= len(got):
            return (_lazy_alts, (alts.uid, got))
        return alts.__reduce__()

    keep: list = []
    p = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    table = copyreg.dispatch_table.copy()
    table.update({Matcher: reduce_matcher, CachedMatcher: reduce_matcher, _Rule: reduce_rule, _Sel: reduce_sel})
    for cls in (_Alts, *_Alts.__subclasses__()):
        table[cls] = reduce_alts
    p.dispatch_table = table
    return p, cell


RULES_PER_STEP = 100  # compiled rules per pickle of the live part (~5 ms to read back each)
ITEMS_PER_STEP = 5_000  # elements of a field's large dict or list per pickle


def _entry_bytes(matcher: Matcher) -> tuple[bytes, bytes]:
    """(live part, rule set part) of ``matcher``'s entry. The live part is a sequence of
    pickles written by one pickler (so later ones refer to the objects of earlier ones): the
    number of steps, the compiled rules a hundred at a time, the elements of the fields' large
    dicts and lists a few thousand at a time, then the matcher (mostly references by then).
    Reading it back (:class:`_Entry`) can pause between two steps: each costs a few ms."""
    if isinstance(matcher, CachedMatcher):
        matcher.full()
    steps: list[Any] = []
    rules = matcher._rules
    for a in range(0, len(rules), RULES_PER_STEP):
        steps.append(rules[a : a + RULES_PER_STEP])
    for index in matcher.fields.values():
        for value in index.__getstate__().values():
            parts: list[Any] = []
            if isinstance(value, dict) and len(value) > ITEMS_PER_STEP:
                parts = [list(value.keys()), list(value.values())]
            elif isinstance(value, list) and len(value) > ITEMS_PER_STEP:
                parts = [value]
            for part in parts:
                for a in range(0, len(part), ITEMS_PER_STEP):
                    steps.append(part[a : a + ITEMS_PER_STEP])
    buf = io.BytesIO()
    pickler, cell = _live_pickler(buf, matcher)
    pickler.dump((len(steps) + 1, cell))
    for step in steps:
        pickler.dump(step)
    pickler.dump(matcher)
    rest = pickle.dumps(matcher.ruleset, protocol=pickle.HIGHEST_PROTOCOL)
    return buf.getvalue(), rest


class _Entry:
    """A cache entry opened and checked (:func:`_open`), ready to be read back: at once
    (:meth:`load`) or a step at a time (:meth:`steps`, for reading it back on the daemon's
    event loop between messages)."""

    def __init__(self, path: Path, fd: int, live: bytes, rest: _Rest) -> None:
        self.path, self.fd, self.live, self.rest = path, fd, live, rest

    def steps(self, reader: Any = None) -> "Iterator[None]":
        """Unpickle the live part, yielding after each step; the generator's value (its
        ``StopIteration``) is the matcher. Raises ValueError (and removes the entry) when it
        cannot be read."""
        try:
            up = pickle.Unpickler(reader if reader is not None else io.BytesIO(self.live))
            with paused_gc():  # one large object graph: collections meanwhile only cost time
                first = up.load()
                if not (isinstance(first, tuple) and len(first) == 2 and isinstance(first[1], _Cell)):
                    raise ValueError("not a compiled rule set")
                count, cell = first
                cell.rest = self.rest
                matcher = None
                for _ in range(count):
                    yield
                    matcher = up.load()
            if not isinstance(matcher, CachedMatcher):
                raise ValueError("not a compiled rule set")
        except Exception as exc:  # damaged, written by other code: rebuild
            self.discard(exc)
            raise ValueError(str(exc)) from exc
        matcher.__dict__["_rest"] = self.rest
        return matcher

    def load(self, pause: float = 0.0) -> Matcher | None:
        """The matcher, or None when the entry cannot be read (it is removed). ``pause``: read
        through a :class:`_PoliteReader` (seconds to sleep at least per 64 KiB)."""
        reader = _PoliteReader(memoryview(self.live), pause) if pause > 0 else None
        steps = self.steps(reader)
        try:
            while True:
                next(steps)
        except StopIteration as stop:
            return stop.value
        except ValueError:
            return None

    def discard(self, exc: BaseException) -> None:
        log.warning("rules cache damaged; rebuilding", path=str(self.path), error=str(exc)[:200])
        try:
            self.path.unlink()
        except OSError:
            pass


def _open(path: Path, key: str) -> _Entry | None:
    """The entry at ``path`` for ``key``, its two parts checked (lengths, CRC-32), the live
    part read; None when there is none or it is damaged (then it is removed)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("rules cache unreadable; rebuilding", path=str(path), error=str(exc))
        return None
    header = MAGIC + key.encode() + b"\n"
    try:
        head = os.pread(fd, len(header) + _PARTS.size, 0)
        if not head.startswith(header) or len(head) != len(header) + _PARTS.size:
            raise ValueError("header does not match")
        live_len, rest_len, live_crc, rest_crc = _PARTS.unpack_from(head, len(header))
        at = len(head)
        if os.fstat(fd).st_size != at + live_len + rest_len:
            raise ValueError("truncated or too long")
        live = os.pread(fd, live_len, at)
        if zlib.crc32(live) != live_crc or zlib.crc32(os.pread(fd, rest_len, at + live_len)) != rest_crc:
            raise ValueError("checksum does not match")
    except Exception as exc:  # damaged, truncated, written by other code: rebuild
        os.close(fd)
        log.warning("rules cache damaged; rebuilding", path=str(path), error=str(exc)[:200])
        try:
            path.unlink()
        except OSError:
            pass
        return None
    return _Entry(path, fd, live, _Rest(fd, at + live_len, rest_len, rest_crc, path))  # fd: closed by the _Rest


def _read(path: Path, key: str, pause: float = 0.0) -> Matcher | None:
    entry = _open(path, key)
    return entry.load(pause) if entry is not None else None


def _write(directory: Path, where: str, key: str, matcher: Matcher) -> Path | None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with paused_gc():  # the picklers' memos keep what they reduce alive: collections would walk it all
            live, rest = _entry_bytes(matcher)
        target = directory / f"{where}-{key}.pickle"
        head = MAGIC + key.encode() + b"\n" + _PARTS.pack(len(live), len(rest), zlib.crc32(live), zlib.crc32(rest))
        _replace_atomically(target, [head, live, rest], prefix=f".{where}-")
    except (OSError, pickle.PicklingError, RecursionError, TypeError, AttributeError) as exc:
        log.warning("rules cache not written", error=str(exc)[:200])
        return None
    for old in directory.glob(f"{where}-*.pickle"):  # earlier versions of the same rules paths
        if old != target:
            try:
                old.unlink()
            except OSError:
                pass
    return target


class _Phases:
    """Adds the seconds since the previous lap to ``timings[name]`` (nothing when None)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings
        self.t = time.perf_counter()

    def lap(self, name: str) -> None:
        if self.timings is not None:
            now = time.perf_counter()
            self.timings[name] = round(self.timings.get(name, 0.0) + now - self.t, 3)
            self.t = now


def cached_matcher(
    paths: Sequence[str | Path],
    *,
    known_destinations: set[str] | None = None,
    default_destinations: Sequence[str] = ("console",),
    pause: float = 0.0,
    keys: list[tuple[str, str]] | None = None,
) -> Matcher | None:
    """The cached compiled set of ``paths`` if there is one for their current content, else
    None. ``pause``: seconds to sleep per 64 KiB read (see :class:`_PoliteReader`); ``keys``
    gets the :func:`source_key` of the set returned."""
    directory = cache_dir()
    if directory is None:
        return None
    defaults = tuple(default_destinations)
    key = source_key(paths, known_destinations, defaults)
    if key is None:
        return None
    matcher = _read(directory / f"{key[0]}-{key[1]}.pickle", key[1], pause)
    if matcher is not None and keys is not None:
        keys.append(key)
    return matcher


def build_into_cache(
    paths: list[str], known_destinations: set[str] | None, default_destinations: tuple[str, ...], directory: str,
    timings: dict[str, float] | None = None,
) -> tuple[bool, str | None, tuple[str, str] | None]:
    """Load, compile and cache the set (run in a worker process by hot reload):
    (True, None, the entry's :func:`source_key`, None when it was not written: a file changed
    meanwhile), or (False, the problems, None) when the rules are invalid. ``timings`` gets
    the seconds of the phases (see :func:`load_matcher`)."""
    from .problems import RuleSetError, format_problems

    os.environ[CACHE_ENV] = directory
    keys: list[tuple[str, str]] = []
    try:
        load_matcher(paths, known_destinations=known_destinations, default_destinations=default_destinations,
                     timings=timings, keys=keys)
    except RuleSetError as exc:
        return False, format_problems(exc.problems), None
    return True, None, keys[0] if keys else None


def open_entry(key: tuple[str, str]) -> "_Entry | None":
    """The cache entry of ``key`` (a :func:`source_key`), checked and ready to be read back
    (:meth:`_Entry.steps`), or None (no cache, no entry, or a damaged one: removed)."""
    directory = cache_dir()
    if directory is None:
        return None
    return _open(directory / f"{key[0]}-{key[1]}.pickle", key[1])


def load_matcher(
    paths: Sequence[str | Path],
    *,
    known_destinations: set[str] | None = None,
    default_destinations: Sequence[str] = ("console",),
    cache: bool = True,
    on_status: Callable[[str], None] | None = None,
    timings: dict[str, float] | None = None,
    keys: list[tuple[str, str]] | None = None,
) -> Matcher:
    """The compiled matcher of the rules under ``paths``: from the cache when the files are
    unchanged, else loaded (raises :class:`~monitor.rules.RuleSetError`), compiled and cached.

    ``on_status`` is told ``"hit"``, ``"miss"`` (built and written) or ``"off"``; ``timings``
    (optional) gets the seconds of the phases: ``key`` (hashing the files, both times),
    ``read``, ``load``, ``compile``, ``write`` (pickling and writing the entry); ``keys`` gets
    the :func:`source_key` of the entry read or written.

    A set read from the cache is a :class:`CachedMatcher` (its rule set read on first use)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    clock = _Phases(timings)
    defaults = tuple(default_destinations)
    directory = cache_dir() if cache else None
    key = source_key(paths, known_destinations, defaults) if directory is not None else None
    clock.lap("key")
    if directory is not None and key is not None:
        where, content = key
        matcher = _read(directory / f"{where}-{content}.pickle", content)
        clock.lap("read")
        if matcher is not None:
            if on_status is not None:
                on_status("hit")
            if keys is not None:
                keys.append(key)
            return matcher
    ruleset = load_rules(paths, known_destinations=known_destinations)
    clock.lap("load")
    matcher = Matcher(ruleset, default_destinations=defaults)
    clock.lap("compile")
    if directory is not None and key is not None:
        # written only if no file changed while loading (else the next load builds again)
        same = source_key(paths, known_destinations, defaults) == key
        clock.lap("key")
        if same:
            if _write(directory, key[0], key[1], matcher) is not None and keys is not None:
                keys.append(key)
            clock.lap("write")
        if on_status is not None:
            on_status("miss")
    elif on_status is not None:
        on_status("off")
    return matcher
