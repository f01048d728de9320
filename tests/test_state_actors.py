"""scripts/state_actors.py on a temporary copy of rules/actors.yml: running it again keeps the
names added by hand to the ``states-*`` entries (officials' names, with their comments) instead
of printing the generated names only (a re-run dropped 120+ officials' names)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "state_actors.py"
SECTION = "  # ---------------------------------------------------------------- states (generated)"


def states_names(doc: dict) -> dict[str, dict[str, list[str]]]:
    return {a["id"]: {lang: [str(n) for n in ns] for lang, ns in (a.get("names") or {}).items()}
            for a in doc["actors"] if str(a["id"]).startswith("states-")}


def hand_edited_copy(tmp_path: Path) -> Path:
    """rules/actors.yml copied to tmp_path/rules/, with one more hand-added name (and its
    comment) at the end of states-europe's English list and one at the end of its Persian list."""
    (tmp_path / "rules").mkdir()
    copy = tmp_path / "rules" / "actors.yml"
    lines = (ROOT / "rules" / "actors.yml").read_text(encoding="utf-8").split("\n")
    start = lines.index("  - id: states-europe")
    for lang, name in (("en", "Jane Example-Minister"), ("fa", "جین نمونه")):
        i = next(i for i in range(start, len(lines)) if lines[i].strip().startswith(f"{lang}: ["))
        while not lines[i].rstrip().endswith("]"):
            i += 1
        lines[i] = lines[i].rstrip()[:-1] + ","
        lines[i + 1:i + 1] = ["           # a hand edit: the new foreign minister", f"           {name}]"]
    copy.write_text("\n".join(lines), encoding="utf-8")
    return copy


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def assert_kept(before: dict[str, dict[str, list[str]]], after: dict[str, dict[str, list[str]]]) -> None:
    assert set(after) == set(before)
    for actor_id, langs in before.items():
        for lang, names in langs.items():
            lost = [n for n in names if n not in after[actor_id].get(lang, [])]
            assert not lost, (actor_id, lang, lost[:10])


def test_a_rerun_prints_the_hand_added_names_too(tmp_path: Path) -> None:
    copy = hand_edited_copy(tmp_path)
    before = states_names(yaml.safe_load(copy.read_text(encoding="utf-8")))
    assert "Jane Example-Minister" in before["states-europe"]["en"]
    res = run(tmp_path)  # the default path, rules/actors.yml, from the current folder
    assert res.returncode == 0, res.stderr
    printed = states_names(yaml.safe_load("actors:\n" + res.stdout.split("\n", 1)[1]))
    assert_kept(before, printed)
    assert "           # a hand edit: the new foreign minister" in res.stdout.split("\n")


def test_write_merges_into_the_file_and_changes_nothing_else(tmp_path: Path) -> None:
    copy = hand_edited_copy(tmp_path)
    original = copy.read_text(encoding="utf-8")
    before = states_names(yaml.safe_load(original))
    res = run(ROOT, str(copy), "--write")
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""
    written = copy.read_text(encoding="utf-8")
    assert_kept(before, states_names(yaml.safe_load(written)))
    # outside the generated section, every line is as it was
    head = original.split(SECTION)[0]
    tail = original.split(SECTION)[1].split("\n  # ----", 1)[1]
    assert written.startswith(head) and written.endswith("\n  # ----" + tail)
    assert written.count("# a hand edit: the new foreign minister") == 2
    assert written.count("# round 15 (det-ens)") == original.count("# round 15 (det-ens)")
    # and a second run finds nothing to change
    assert run(ROOT, str(copy), "--write").returncode == 0
    assert copy.read_text(encoding="utf-8") == written


def test_the_shipped_file_is_not_touched_and_bad_arguments_are_one_line(tmp_path: Path) -> None:
    shipped = (ROOT / "rules" / "actors.yml").read_bytes()
    res = run(ROOT, str(tmp_path / "none.yml"))
    assert res.returncode == 2 and res.stderr.startswith("error: ") and res.stderr.count("\n") == 1, res.stderr
    assert "Traceback" not in res.stderr
    res = run(ROOT, "--force")
    assert res.returncode == 2 and "usage:" in res.stderr
    assert (ROOT / "rules" / "actors.yml").read_bytes() == shipped
    shutil.rmtree(tmp_path, ignore_errors=True)
