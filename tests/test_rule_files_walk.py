"""Rule and list files are found by one ``os.scandir`` walk: the same files, in the same
order, as the ``os.walk`` + ``os.path.realpath`` discovery they replace."""

from __future__ import annotations

import os

from monitor.rules.lists import LIST_DIR, LIST_EXTENSIONS, list_files
from monitor.rules.loader import RULE_EXTENSIONS, rule_files


def walk_rule_files(paths: list[str]) -> list[str]:  # the discovery before (os.walk, realpath each)
    out, seen = [], set()
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != LIST_DIR)
                for name in sorted(files):
                    if not name.startswith(".") and name.lower().endswith(RULE_EXTENSIONS):
                        full = os.path.join(root, name)
                        if os.path.realpath(full) not in seen:
                            seen.add(os.path.realpath(full))
                            out.append(full)
        elif os.path.isfile(p) and os.path.realpath(p) not in seen:
            seen.add(os.path.realpath(p))
            out.append(p)
    return out


def walk_list_files(paths: list[str]) -> list[str]:
    out, seen = [], set()
    for p in paths:
        if not os.path.isdir(p):
            continue
        for root, dirs, files in os.walk(p):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            if os.path.basename(root) != LIST_DIR:
                continue
            for name in sorted(files):
                if not name.startswith(".") and name.lower().endswith(LIST_EXTENSIONS):
                    full = os.path.join(root, name)
                    if os.path.realpath(full) not in seen:
                        seen.add(os.path.realpath(full))
                        out.append(full)
    return out


def tree(tmp_path) -> str:
    d = tmp_path / "rules"
    for rel in ["b.yml", "a.YAML", "z.txt", ".hidden.yml", "sub/c.yml", "sub/deeper/d.yaml", "sub/B.yml",
                ".git/e.yml", "lists/names.csv", "lists/more.yml", "lists/.x.csv", "sub/lists/inner.csv",
                "sub/lists/deep/f.yml", "zz/lists/g.csv", "outside/h.yml"]:
        f = d / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("id: x\n", encoding="utf-8")
    other = tmp_path / "elsewhere"
    (other / "dir").mkdir(parents=True)
    (other / "dir" / "i.yml").write_text("id: i\n", encoding="utf-8")
    (other / "j.yml").write_text("id: j\n", encoding="utf-8")
    (d / "link.yml").symlink_to(other / "j.yml")  # a symlinked file: found, by its target's path once
    (d / "sub" / "again.yml").symlink_to(d / "b.yml")  # the same file twice: once
    (d / "linkdir").symlink_to(other / "dir")  # a symlinked directory: not followed (as os.walk)
    (d / "broken.yml").symlink_to(tmp_path / "missing.yml")
    (d / "lists" / "alias.csv").symlink_to(d / "lists" / "names.csv")
    return str(d)


def test_the_walk_finds_what_os_walk_found_in_the_same_order(tmp_path) -> None:
    d = tree(tmp_path)
    paths = [d, os.path.join(d, "outside", "h.yml"), os.path.join(d, "sub")]
    stats: dict = {}
    got = rule_files(paths, [], stats)
    assert got == walk_rule_files(paths)
    assert os.path.join(d, "link.yml") in got and os.path.join(d, "sub", "again.yml") not in got
    assert not any("linkdir" in f or "lists" in f for f in got)
    lists = list_files(paths, None, stats)
    assert lists == walk_list_files(paths), (lists, walk_list_files(paths))
    assert [os.path.relpath(f, d) for f in lists] == ["lists/alias.csv", "lists/more.yml", "sub/lists/inner.csv", "zz/lists/g.csv"]
    for f, st in stats.items():  # the walk's stat of each file is the file's (symlinks followed)
        assert (st.st_ino, st.st_size, st.st_mtime_ns) == (os.stat(f).st_ino, os.stat(f).st_size, os.stat(f).st_mtime_ns)
    assert os.path.join(d, "link.yml") in stats and os.path.join(d, "broken.yml") not in stats


def test_one_walk_finds_the_rule_and_the_list_files_alike(tmp_path) -> None:
    from monitor.rules.loader import rule_and_list_files

    d = tree(tmp_path)
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "top.csv").write_text("a\n", encoding="utf-8")
    (tmp_path / "lists" / "top.yml").write_text("id: t\n", encoding="utf-8")
    for paths in ([d], [d, os.path.join(d, "outside", "h.yml"), os.path.join(d, "sub")], [os.path.join(d, "sub"), d],
                  [str(tmp_path / "lists"), d + os.sep], [os.path.join(d, "lists")], [os.path.join(d, "missing"), d],
                  [str(tmp_path / "elsewhere" / "dir")]):
        problems: list = []
        stats: dict = {}
        want_problems: list = []
        want_stats: dict = {}
        want = (rule_files(paths, want_problems, want_stats), list_files(paths, None, want_stats))
        assert rule_and_list_files(paths, problems, stats) == want, paths
        assert problems == want_problems and stats.keys() == want_stats.keys()
