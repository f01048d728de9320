"""Issue 09, cases 6-7: environment problems and bad values are one line and exit 2 (no
traceback), read-only commands work in a read-only folder, filters say when a value names
nothing. Real subprocesses of ``claimwatch`` on real SQLite files."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon_helpers import canonical_line


def cw(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monitor", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def one_line_error(res: subprocess.CompletedProcess, *fragments: str) -> str:
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr and "╭" not in res.stderr, res.stderr
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    src = tmp_path / "in.jsonl"
    src.write_text("".join(canonical_line(i, f"The group claimed responsibility tok{i}") for i in range(5)))
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yaml").write_text("id: claims\ntitle: Claims\nlevel: high\nmatch:\n  c:\n    any: [claimed]\n"
                                  "condition: c\n")
    db = tmp_path / "a.db"
    res = cw("import", str(src), "--db", str(db), "--rules", str(rules))
    assert res.returncode == 0, res.stderr
    return db


def test_db_that_is_a_directory_or_has_no_folder(tmp_path: Path, archive: Path) -> None:
    one_line_error(cw("stats", "--db", str(tmp_path)), "is a directory")
    one_line_error(cw("import", str(tmp_path / "in.jsonl"), "--db", "/proc/no-such-dir/a.db", "--no-rules"),
                   "/proc/no-such-dir/a.db", "cannot create its folder")


@contextlib.contextmanager
def read_only_mount(tmp_path: Path, archive: Path) -> Iterator[Path]:
    """A copy of ``archive`` as ``a.db`` in a folder mounted read-only (a read-only bind mount,
    so root cannot write it either); the folder's path. Only as root."""
    ro = tmp_path / "ro"
    ro.mkdir(exist_ok=True)
    (ro / "a.db").write_bytes(archive.read_bytes())
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "--bind", str(ro), str(mnt)], capture_output=True).returncode != 0:
        pytest.skip("cannot bind-mount")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mnt)], check=True, capture_output=True)
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_read_only_commands_work_in_a_read_only_folder(tmp_path: Path, archive: Path) -> None:
    if os.geteuid() == 0:
        with read_only_mount(tmp_path, archive) as mnt:
            _check_read_only(mnt / "a.db")
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        (ro / "a.db").write_bytes(archive.read_bytes())
        ro.chmod(0o555)
        try:
            _check_read_only(ro / "a.db")
        finally:
            ro.chmod(0o755)


def test_writing_a_read_only_archive_says_why(tmp_path: Path, archive: Path) -> None:
    """A writing command on an archive it cannot write said "unable to open database file"
    (or, for a read-only file, "attempt to write a readonly database" naming no file)."""
    src = tmp_path / "in.jsonl"
    if os.geteuid() == 0:
        with read_only_mount(tmp_path, archive) as mnt:
            for db in (mnt / "a.db", mnt / "new.db"):
                one_line_error(cw("import", str(src), "--db", str(db), "--no-rules"),
                               f"{db}: cannot open the archive for writing", "read-only file system")
            one_line_error(cw("incident", "merge", "1", "2", "--db", str(mnt / "a.db")), "read-only file system")
        return
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "a.db").write_bytes(archive.read_bytes())
    (ro / "a.db").chmod(0o444)
    one_line_error(cw("import", str(src), "--db", str(ro / "a.db"), "--no-rules"),
                   "cannot open the archive for writing", "the file is read-only")
    (ro / "a.db").chmod(0o644)
    ro.chmod(0o555)
    try:
        one_line_error(cw("import", str(src), "--db", str(ro / "new.db"), "--no-rules"), "is not writable")
    finally:
        ro.chmod(0o755)


def test_run_checks_the_archive_and_the_config_before_it_builds_the_rules(tmp_path: Path, archive: Path) -> None:
    """``run`` built the rules (seconds for a big set) and only then found the archive it could
    not write, the daemon already running on it, or a missing templates folder. A broken rule
    file shows the order: the cheap problem is the one reported, and nothing is created."""
    import fcntl
    import sqlite3

    bad_rules = tmp_path / "bad-rules"
    bad_rules.mkdir()
    (bad_rules / "r.yaml").write_text("id: r\ntitle: R\nlevel: high\nmatch:\n  c:\n    any: [x]\ncondition: nope\n")
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as c:
        c.execute("create table t (x)")
    cfg = tmp_path / "c.yaml"

    def run_with(db: Path) -> subprocess.CompletedProcess:
        cfg.write_text(f"database: {db}\nrules: {bad_rules}\n"
                       f"alerts:\n  default: [f]\n  destinations:\n    f: {{type: file, path: {tmp_path / 'al.jsonl'}}}\n")
        return cw("run", "--once", "-c", str(cfg), "--log-level", "ERROR")

    one_line_error(run_with(tmp_path), "cannot start", "is a directory")
    one_line_error(run_with(other), "cannot start", f"{other}: not a claimwatch archive (its tables: t)")
    (tmp_path / "file").write_text("x")
    one_line_error(run_with(tmp_path / "file" / "sub" / "a.db"), "cannot start", "cannot create its folder",
                   "is not a folder")
    res = run_with(tmp_path / "new.db")
    assert res.returncode == 2 and "rules have errors" in res.stderr, res.stderr  # the archive is fine
    assert not (tmp_path / "new.db").exists()
    with open(str(archive) + ".lock", "a+") as held:  # a daemon runs on it
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        line = one_line_error(run_with(archive), "cannot start", "another claimwatch daemon is running")
        assert str(cfg) not in line  # not a setting of the config file
    if os.geteuid() == 0:
        with read_only_mount(tmp_path, archive) as mnt:
            one_line_error(run_with(mnt / "a.db"), "cannot start", "cannot open the archive for writing",
                           "read-only file system")
    else:
        archive.chmod(0o444)
        one_line_error(run_with(archive), "cannot start", "cannot open the archive for writing", "read-only")
        archive.chmod(0o644)
    cfg_text = (f"database: {tmp_path / 'new.db'}\nrules: {bad_rules}\n"
                f"alerts:\n  templates: {tmp_path / 'no-templates'}\n")
    cfg.write_text(cfg_text)
    one_line_error(cw("run", "--once", "-c", str(cfg)), "cannot start", "alerts.templates", "not a folder")
    assert not (tmp_path / "new.db").exists()


def _check_read_only(db: Path) -> None:
    for args in (["stats"], ["search", "claimed"], ["verify"], ["hits"], ["status"]):
        res = cw(*args, "--db", str(db))
        assert res.returncode == 0, (args, res.stdout, res.stderr)
        assert "Traceback" not in res.stderr
    assert "5 hit(s)" in cw("hits", "--db", str(db)).stdout


@pytest.mark.parametrize("value", ["99999999999999", "1000000d"])
def test_since_until_out_of_range(archive: Path, value: str) -> None:
    one_line_error(cw("search", "claimed", "--db", str(archive), "--since", value), "--since", "out of range")
    one_line_error(cw("hits", "--db", str(archive), "--since", value), "--since", "out of range")


def test_long_arguments_are_cut_in_errors(archive: Path) -> None:
    line = one_line_error(cw("search", "claimed", "--db", str(archive), "--since", "x" * 100_000), "--since")
    assert len(line) < 600


def test_export_manifest_into_a_missing_folder_writes_neither(tmp_path: Path, archive: Path) -> None:
    out = tmp_path / "out.jsonl"
    one_line_error(cw("export", "-o", str(out), "--db", str(archive), "--manifest", str(tmp_path / "no" / "m.json")),
                   "--manifest")
    assert not out.exists() and not list(tmp_path.glob("out.jsonl*"))
    res = cw("export", "-o", str(out), "--db", str(archive), "--manifest", str(tmp_path / "m.json"))
    assert res.returncode == 0 and out.exists() and (tmp_path / "m.json").exists()


def test_failed_import_prints_no_empty_table(tmp_path: Path, archive: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"name":"c","type":"public_channel","id":5,"messages":{"a":1}}')
    res = cw("import", str(bad), "--db", str(archive), "--no-rules")
    assert res.returncode == 2 and "messages: expected a list" in res.stderr
    assert "┏" not in res.stdout and "Import" not in res.stdout


def test_unknown_level_is_a_usage_error_naming_the_choices(archive: Path) -> None:
    one_line_error(cw("hits", "--db", str(archive), "--level", "bogus"), "unknown level 'bogus'", "critical")


def test_unknown_rule_or_channel_warns(archive: Path) -> None:
    res = cw("hits", "--db", str(archive), "--rule", "nosuch")
    assert res.returncode == 0 and "no hits of a rule named 'nosuch'" in res.stderr and "claims" in res.stderr
    res = cw("hits", "--db", str(archive), "--channel", "@nowhere")
    assert "no channel '@nowhere'" in res.stderr
    res = cw("hits", "--db", str(archive), "--rule", "claims")
    assert "warning" not in res.stderr


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_unreadable_input_is_one_line(tmp_path: Path) -> None:
    # /proc/self/mem exists and opens, but reading it fails (EIO): a real unreadable input.
    one_line_error(cw("import", "/proc/self/mem", "--db", str(tmp_path / "u.db"), "--no-rules"),
                   "/proc/self/mem: cannot read")


def test_errors_print_paths_and_keys_as_typed(tmp_path: Path, archive: Path) -> None:
    # Brackets are not rich markup (a "[/]" raised MarkupError: a traceback) and ":x:" is no emoji.
    missing = tmp_path / "[/]claims.json"
    one_line_error(cw("import", str(missing), "--db", str(archive), "--no-rules"), f"{missing}: no such file")
    db = tmp_path / "[bold]a:x:.db"
    one_line_error(cw("stats", "--db", str(db)), f"{db}: archive not found")
    res = cw("show", "telegram:1:[/x]", "--db", str(archive))
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.strip() == "error: no message telegram:1:[/x] in the archive"
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n")
    one_line_error(cw("import", str(passwd), "--db", str(archive), "--no-rules"), "text starting 'root:x:0:0")


def test_log_level_and_format_are_checked_and_the_configs_level_is_used(tmp_path: Path, archive: Path) -> None:
    cfg = tmp_path / "c.yaml"
    body = (f"database: {tmp_path / 'run.db'}\nrules: {tmp_path / 'rules'}\n"
            f"sources:\n  files:\n    - {{path: {tmp_path / 'in.jsonl'}}}\n"
            f"alerts:\n  default: [f]\n  destinations:\n    f: {{type: file, path: {tmp_path / 'alerts.jsonl'}}}\n")
    cfg.write_text(body)
    one_line_error(cw("run", "--once", "-c", str(cfg), "--log-level", "LOUD"), "--log-level", "'LOUD'", "WARNING")
    one_line_error(cw("stats", "--db", str(archive), "--log-level", "verbose"), "--log-level", "'verbose'")
    one_line_error(cw("run", "--once", "-c", str(cfg), "--log-format", "xml"), "--log-format", "'xml'")
    cfg.write_text("log_level: LOUD\n" + body)
    one_line_error(cw("stats", "--db", str(archive), "-c", str(cfg)), str(cfg), "log_level", "'LOUD'")
    cfg.write_text("log_level: ERROR\n" + body)
    res = cw("run", "--once", "-c", str(cfg))
    assert res.returncode == 0, res.stderr
    assert "[info" not in res.stderr and "rules loaded" not in res.stderr, res.stderr  # the config's level holds
    res = cw("run", "--once", "-c", str(cfg), "--log-level", "info")  # the option overrides it
    assert res.returncode == 0 and "claimwatch running" in res.stderr, res.stderr


def test_unknown_platform_is_a_usage_error_in_hits_too(archive: Path) -> None:
    # as in search and export (it listed "0 hit(s)", exit 0)
    one_line_error(cw("hits", "--db", str(archive), "--platform", "facebook"), "--platform", "'facebook'", "telegram, x")
    assert "5 hit(s)" in cw("hits", "--db", str(archive), "--platform", "telegram").stdout


def test_search_and_export_warn_of_a_rule_or_channel_naming_nothing(tmp_path: Path, archive: Path) -> None:
    # as hits does: an export of 0 messages because of a typo said nothing.
    out = tmp_path / "e.jsonl"
    res = cw("export", "-o", str(out), "--db", str(archive), "--rule", "claimz")
    assert res.returncode == 0 and "exported 0 messages" in res.stdout, res.stderr
    assert "no hits of a rule named 'claimz'" in res.stderr and "claims" in res.stderr
    res = cw("search", "claimed", "--db", str(archive), "--channel", "@nowhere")
    assert res.returncode == 0 and "no channel '@nowhere'" in res.stderr
    res = cw("export", "-o", str(out), "--db", str(archive), "--rule", "claims")
    assert "warning" not in res.stderr and "exported 5 messages" in res.stdout


def test_export_never_overwrites_the_archive(tmp_path: Path, archive: Path) -> None:
    # `--out` or `--manifest` naming the archive renamed the export over it: the archive was gone.
    before = archive.read_bytes()
    one_line_error(cw("export", "-o", str(archive), "--db", str(archive)), "--out", "is the archive being exported")
    link = tmp_path / "link.db"
    link.symlink_to(archive)
    one_line_error(cw("export", "-o", str(link), "--db", str(archive)), "--out", "is the archive being exported")
    one_line_error(cw("export", "-o", str(tmp_path / "e.jsonl"), "--manifest", f"{archive}-wal", "--db", str(archive)),
                   "--manifest", "is the archive being exported")
    assert archive.read_bytes() == before and not list(tmp_path.glob("*.part"))
    assert cw("stats", "--db", str(archive)).returncode == 0
    same = tmp_path / "same.json"
    one_line_error(cw("export", "-o", str(same), "--manifest", str(same), "--db", str(archive)), "same file")
    assert not same.exists() and not list(tmp_path.glob("same*"))


def test_usage_errors_are_one_line_exit_2_for_every_command(tmp_path: Path) -> None:
    """Click's usage errors (unknown option or command, missing argument or option value, a
    value of the wrong type) in the project's one-line form, not a boxed panel (one place:
    the root command group)."""
    # (run as `python -m monitor`, which click names the program)
    one_line_error(cw("rules", "test", "--bogus"),
                   "error: python -m monitor rules test: No such option: --bogus (see 'python -m monitor rules test --help')")
    one_line_error(cw("rules", "test"), "monitor rules test: Missing argument 'rules'.")
    one_line_error(cw("hits", "--limit", "many", "--db", str(tmp_path / "a.db")), "monitor hits:", "'--limit'")
    one_line_error(cw("no-such-command"), "monitor: No such command 'no-such-command'.")
    one_line_error(cw("stats", "--db"), "Option '--db' requires an argument.")
    one_line_error(cw("incident", "show", "--bogus\x1b[2J"), "No such option")  # what the user typed, as text
    # help and --version as before: help exits 0, a group without a command shows its help (exit 2)
    res = cw("rules", "--help")
    assert res.returncode == 0 and "Usage: python -m monitor rules" in res.stdout
    res = cw("rules")
    assert res.returncode == 2 and "Usage: python -m monitor rules" in res.stdout + res.stderr and "error:" not in res.stderr
    res = cw("--version")
    assert res.returncode == 0 and res.stdout.startswith("claimwatch ")
    res = subprocess.run([str(Path(sys.executable).with_name("claimwatch")), "alerts", "--bogus"], capture_output=True,
                         text=True, timeout=120)
    one_line_error(res, "error: claimwatch alerts: No such option: --bogus (see 'claimwatch alerts --help')")


def test_usage_error_through_the_app_object_is_one_line_too() -> None:
    """``typer.testing.CliRunner`` (and any caller of ``monitor.cli.app``) gets the same line."""
    from typer.testing import CliRunner

    from monitor.cli import app

    r = CliRunner().invoke(app, ["alerts", "retry", "--bogus"])
    assert r.exit_code == 2
    assert r.stderr.strip() == "error: claimwatch alerts retry: No such option: --bogus (see 'claimwatch alerts retry --help')"


def test_a_database_that_is_no_claimwatch_archive_is_named_and_left_alone(tmp_path: Path) -> None:
    """Another program's SQLite file (or an empty one) given as --db: the read commands say
    which file is not an archive (not a bare "no such table: messages"), and a writing command
    refuses it rather than adding claimwatch's tables to it."""
    import sqlite3

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.execute("INSERT INTO notes VALUES ('keep me')")
    conn.close()
    before = other.read_bytes()
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    for db in (other, empty):
        for args in (["stats"], ["search", "claimed"], ["hits"], ["verify"], ["incidents"], ["alerts"], ["status"],
                     ["show", "telegram:1:1"], ["export", "--out", str(tmp_path / "x.jsonl")]):
            one_line_error(cw(*args, "--db", str(db)), str(db), "not a claimwatch archive")
    src = tmp_path / "in.jsonl"
    src.write_text(canonical_line(1, "The group claimed responsibility"))
    one_line_error(cw("import", str(src), "--db", str(other), "--no-rules"), str(other), "not a claimwatch archive")
    assert other.read_bytes() == before
    assert not (tmp_path / "x.jsonl").exists() and not (tmp_path / "x.jsonl.part").exists()
    # an empty file is a new archive to a writing command, as a missing one is
    res = cw("import", str(src), "--db", str(empty), "--no-rules")
    assert res.returncode == 0, res.stderr
    assert cw("stats", "--db", str(empty)).returncode == 0


def test_an_import_that_fails_leaves_no_new_archive_behind(tmp_path: Path, archive: Path) -> None:
    """Nothing half-written: a first import whose every file fails created an empty archive
    (the next command then found an "archive" with nothing in it); an existing one is kept."""
    cut = tmp_path / "cut.json"
    cut.write_text('{"name": "c", "type": "public_channel", "id": 1, "messages": [{"id": 1, "type": "mess')
    new = tmp_path / "sub" / "new.db"
    one_line_error(cw("import", str(cut), "--db", str(new), "--no-rules"), "cut.json", "truncated JSON")
    assert not new.exists() and not Path(f"{new}-wal").exists() and not Path(f"{new}-shm").exists()
    before = archive.stat().st_size
    one_line_error(cw("import", str(cut), "--db", str(archive), "--no-rules"), "cut.json")
    assert archive.exists() and archive.stat().st_size == before


def test_a_number_past_sqlites_integers_is_one_line_naming_it(archive: Path) -> None:
    """An incident id, outbox id or --limit past 2**63-1 was an OverflowError traceback
    ("Python int too large to convert to SQLite INTEGER") or "datatype mismatch"."""
    big = "99999999999999999999999"
    for args, named in ((["incident", "show", big], big), (["alerts", "retry", big], big),
                        (["hits", "--limit", big], f"--limit {big}"), ([f"--limit={big}", "incidents"][::-1], "--limit"),
                        (["search", "claimed", "--window", big], f"--window {big}")):
        one_line_error(cw(*args, "--db", str(archive)), named, "out of range")
    assert cw("search", big, "--db", str(archive)).returncode == 0  # a long number is a fine query


def test_a_negative_drain_timeout_is_a_usage_error(tmp_path: Path) -> None:
    # `run --once --drain-timeout -5` was taken (and gave up on failing destinations at once)
    one_line_error(cw("run", "--once", "--drain-timeout", "-5", "--db", str(tmp_path / "a.db")),
                   "--drain-timeout", "greater than or equal to 0")
