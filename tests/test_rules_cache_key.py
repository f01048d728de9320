"""The cache key's fast path: a file's content hash is reused while its ``stat`` is the one
recorded when it was hashed (the manifest), and an edit is never served a stale entry."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from monitor.rules import cache as cache_mod
from monitor.rules.cache import load_matcher, source_key

from rules_helpers import msg, write, WATCH_RULE, cache  # noqa: F401 (cache is a fixture)

RULE = WATCH_RULE


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """The files whose content the key computation reads."""
    got: list[str] = []
    real = cache_mod._hash_file

    def counting(path: str) -> tuple[int, bytes]:
        got.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(cache_mod, "_hash_file", counting)
    return got


def later(monkeypatch, seconds: float = 10.0) -> None:
    """The key computed ``seconds`` after the files were written (they are then past the
    window in which an edit could leave their stat unchanged)."""
    monkeypatch.setattr(cache_mod, "_clock", lambda: time.time_ns() + int(seconds * 1e9))


def rules(tmp_path: Path, n: int = 3) -> Path:
    d = tmp_path / "rules"
    write(d / "watch.yml", RULE)
    for i in range(n):
        write(d / f"other-{i}.yml", f"id: other-{i}\nmatch:\n  a: [word{i}]\n")
    write(d / "lists" / "names.csv", "Yahya Saree\n")
    return d


def ids(m, text: str) -> list[str]:
    return [h.rule_id for h in m.match(msg(text))]


def load(d: Path) -> tuple[object, list[str]]:
    statuses: list[str] = []
    return load_matcher([d], on_status=statuses.append), statuses


def rewrite_same_size_and_mtime(path: Path, old: str, new: str) -> None:
    assert len(old.encode()) == len(new.encode())
    st = path.stat()
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def test_unchanged_files_are_not_read_again_and_the_key_is_the_full_hash(tmp_path, cache, reads, monkeypatch) -> None:
    d = rules(tmp_path)
    later(monkeypatch)
    key = source_key([d])
    assert len(reads) == 5 and list(cache.glob("*.manifest"))
    reads.clear()
    assert source_key([d]) == key and reads == []  # every file's stat as recorded: none read
    for m in cache.glob("*.manifest"):  # without the manifest: every file hashed, the same key
        m.unlink()
    assert source_key([d]) == key and len(reads) == 5


def test_an_edit_of_the_same_size_with_the_mtime_set_back_is_seen(tmp_path, cache, reads, monkeypatch) -> None:
    d = rules(tmp_path)
    later(monkeypatch)
    load(d)
    m, status = load(d)
    assert status == ["hit"] and ids(m, "blast in Kerman") == ["watch"]
    reads.clear()
    rewrite_same_size_and_mtime(d / "watch.yml", "Kerman", "Zahdan")  # the ctime moves: it cannot be set back
    m, status = load(d)
    assert status == ["miss"] and ids(m, "blast in Zahdan") == ["watch"] and ids(m, "blast in Kerman") == []
    assert reads[0] == "watch.yml" and set(reads) == {"watch.yml"}  # only the changed file read (twice: before and after the build)
    rewrite_same_size_and_mtime(d / "lists" / "names.csv", "Saree", "Sarea")
    m, status = load(d)
    assert status == ["miss"] and ids(m, "Yahya Sarea spoke") == ["watch"] and ids(m, "Yahya Saree spoke") == []


def test_files_changed_just_before_hashing_are_always_read_again(tmp_path, cache, reads, monkeypatch) -> None:
    # A file system whose timestamps are coarse (as on some network and FAT file systems):
    # an edit in the same tick leaves size, mtime and ctime as they were. Files hashed within
    # RACY_NS of their last change are not trusted by their stat, so such an edit is seen.
    real = cache_mod._stat_sig

    def coarse(st: os.stat_result) -> tuple:
        size, mtime, ctime, ino, dev = real(st)
        return size, mtime // 10**12, ctime // 10**12, ino, dev  # ticks of ~17 minutes

    monkeypatch.setattr(cache_mod, "_stat_sig", coarse)
    written = time.time_ns()
    d = rules(tmp_path)
    monkeypatch.setattr(cache_mod, "_clock", lambda: written + 10**6)  # hashed 1 ms after the files were written
    m, status = load(d)
    assert status == ["miss"] and ids(m, "blast in Kerman") == ["watch"]
    reads.clear()
    source_key([d])
    assert len(reads) == 5  # all changed just before: none trusted by its stat
    before = coarse(os.stat(d / "watch.yml"))
    rewrite_same_size_and_mtime(d / "watch.yml", "Kerman", "Zahdan")
    assert coarse(os.stat(d / "watch.yml")) == before  # the edit is invisible in the stat
    m, status = load(d)
    assert status == ["miss"] and ids(m, "blast in Zahdan") == ["watch"] and ids(m, "blast in Kerman") == []


def test_a_damaged_or_foreign_manifest_is_ignored(tmp_path, cache, reads, monkeypatch) -> None:
    d = rules(tmp_path)
    later(monkeypatch)
    key = source_key([d])
    (manifest,) = cache.glob("*.manifest")
    manifest.write_bytes(manifest.read_bytes()[:-20])
    reads.clear()
    assert source_key([d]) == key and len(reads) == 5
    reads.clear()
    assert source_key([d]) == key and reads == []  # rewritten whole
    monkeypatch.setattr(cache_mod, "_code_version", "another version of the code")
    reads.clear()
    assert source_key([d]) != key and len(reads) == 5


def test_added_and_removed_files_change_the_key(tmp_path, cache, monkeypatch) -> None:
    d = rules(tmp_path)
    later(monkeypatch)
    key = source_key([d])
    write(d / "other-9.yml", "id: other-9\nmatch:\n  a: [word9]\n")
    added = source_key([d])
    (d / "other-9.yml").unlink()
    (d / "other-0.yml").unlink()
    removed = source_key([d])
    assert len({key, added, removed}) == 3
    write(d / "other-0.yml", "id: other-0\nmatch:\n  a: [word0]\n")
    assert source_key([d]) == key


def test_a_symlinked_rule_file_is_judged_by_its_target(tmp_path, cache, reads, monkeypatch) -> None:
    d = rules(tmp_path)
    target = write(tmp_path / "elsewhere" / "linked.yml", "id: linked\nmatch:\n  a: [Kerman]\n")
    (d / "linked.yml").symlink_to(target)
    later(monkeypatch)
    key = source_key([d])
    reads.clear()
    assert source_key([d]) == key and reads == []
    rewrite_same_size_and_mtime(target, "Kerman", "Zahdan")
    assert source_key([d]) != key and reads == ["linked.yml"]
