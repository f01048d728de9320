"""The compiled rule set cached on disk, so a daemon restart or ``rules test`` skips the YAML
parse, validation and compilation of a large set.

The key is a SHA-256 of everything the compiled set depends on: the code of
:mod:`monitor.rules` (and of the matcher's C libraries' versions and Python's), every rule,
actor and list file under the rules paths (path and content hash), the known alert
destinations and the default destinations. Any edit gives a new key, so a stale entry is
never used; entries of the same rules paths with another key are removed when a new one is
written. A file that cannot be read back (truncated, damaged, from another version) is
removed and the set rebuilt.

Location: ``$CLAIMWATCH_CACHE_DIR`` (``off`` disables the cache), else
``$XDG_CACHE_HOME/claimwatch/rules`` (``~/.cache/claimwatch/rules``). Entries are written to a
temporary file and renamed into place, so readers never see half a file.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

from ..logs import get_logger
from ..gcpause import paused_gc
from .lists import list_files
from .loader import load_rules, rule_files
from .matcher import Matcher
from .problems import Problem

log = get_logger("claimwatch.rules.cache")

CACHE_ENV = "CLAIMWATCH_CACHE_DIR"
MAGIC = b"claimwatch compiled rules v1\n"
_code_version: str | None = None


def cache_dir() -> Path | None:
    """Where compiled rule sets are kept, or None when caching is off."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        if value.strip().lower() in ("", "off", "0", "no", "false", "none"):
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


def source_key(
    paths: Sequence[str | Path],
    known_destinations: set[str] | None = None,
    default_destinations: Sequence[str] = ("console",),
) -> tuple[str, str] | None:
    """(key of the paths, key of their content) or None when the paths have problems (the
    load reports them)."""
    problems: list[Problem] = []
    strs = [str(p) for p in paths]
    files = rule_files(strs, problems) + list_files(strs)
    if problems:
        return None
    where = hashlib.sha256("\0".join([os.getcwd(), *strs, *map(os.path.abspath, strs)]).encode())
    h = hashlib.sha256(code_version().encode())
    for f in files:
        try:
            with open(f, "rb") as fh:
                data = fh.read()
        except OSError:
            return None
        # path, length and content of every file, in one running hash
        h.update(f"\0{f}\0{len(data)}\0".encode())
        h.update(data)
    h.update(("\0dest:" + ("*" if known_destinations is None else ",".join(sorted(known_destinations)))).encode())
    h.update(("\0default:" + ",".join(default_destinations)).encode())
    return where.hexdigest()[:20], h.hexdigest()


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


def _read(path: Path, key: str, pause: float = 0.0) -> Matcher | None:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("rules cache unreadable; rebuilding", path=str(path), error=str(exc))
        return None
    header = MAGIC + key.encode() + b"\n"
    try:
        if not data.startswith(header):
            raise ValueError("header does not match")
        with paused_gc():  # one large object graph: collections while unpickling only cost time
            body = memoryview(data)[len(header):]
            if pause > 0:
                matcher = pickle.Unpickler(_PoliteReader(body, pause)).load()
            else:
                matcher = pickle.loads(body)
        if not isinstance(matcher, Matcher):
            raise ValueError("not a compiled rule set")
    except Exception as exc:  # damaged, truncated, written by other code: rebuild
        log.warning("rules cache damaged; rebuilding", path=str(path), error=str(exc)[:200])
        try:
            path.unlink()
        except OSError:
            pass
        return None
    return matcher


def _write(directory: Path, where: str, key: str, matcher: Matcher) -> Path | None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        data = pickle.dumps(matcher, protocol=pickle.HIGHEST_PROTOCOL)
        fd, tmp = tempfile.mkstemp(prefix=f".{where}-", dir=directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(MAGIC + key.encode() + b"\n")
                fh.write(data)
            target = directory / f"{where}-{key}.pickle"
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
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
) -> tuple[bool, str | None]:
    """Load, compile and cache the set (run in a worker process by hot reload):
    (True, None), or (False, the problems) when the rules are invalid. ``timings`` gets the
    seconds of the phases (see :func:`load_matcher`)."""
    from .problems import RuleSetError, format_problems

    os.environ[CACHE_ENV] = directory
    try:
        load_matcher(paths, known_destinations=known_destinations, default_destinations=default_destinations,
                     timings=timings)
    except RuleSetError as exc:
        return False, format_problems(exc.problems)
    return True, None


def load_matcher(
    paths: Sequence[str | Path],
    *,
    known_destinations: set[str] | None = None,
    default_destinations: Sequence[str] = ("console",),
    cache: bool = True,
    on_status: Callable[[str], None] | None = None,
    timings: dict[str, float] | None = None,
) -> Matcher:
    """The compiled matcher of the rules under ``paths``: from the cache when the files are
    unchanged, else loaded (raises :class:`~monitor.rules.RuleSetError`), compiled and cached.

    ``on_status`` is told ``"hit"``, ``"miss"`` (built and written) or ``"off"``; ``timings``
    (optional) gets the seconds of the phases: ``key`` (hashing the files, both times),
    ``read``, ``load``, ``compile``, ``write`` (pickling and writing the entry)."""
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
            _write(directory, key[0], key[1], matcher)
            clock.lap("write")
        if on_status is not None:
            on_status("miss")
    elif on_status is not None:
        on_status("off")
    return matcher
