"""`incident show` as a reader sees it: T0 by its channel's name and link in the Markdown (it
was ``telegram:100``), and on 80 columns channel names and links whole (they were cut to 16
columns, "خبرگزاری پیام م…", and the links folded mid-id). Real archives (test_incidents'
Kerman scenario), the real CLI."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from monitor.cli import app
from test_incidents import KERMAN, T, archive_with, rec

LONG_FA = "خبرگزاری پیام ملت - کانال رسمی"  # 30 characters, several words
LONG_USER = "a_very_long_x_username_15"  # an X handle longer than the old 16-column channel column


def _archive(tmp_path: Path) -> str:
    records = [dict(r) for r in KERMAN]
    records[0] = dict(rec("100", 1, T + "11:58:00Z", "فوری: دو انفجار در مسیر گلزار شهدای کرمان", channel=LONG_FA),
                      url="https://t.me/payam_mellat/1")
    records[2] = dict(records[2], channel=LONG_FA)
    records[3] = dict(records[3], channel=LONG_USER)
    archive_with(tmp_path, records, name="show.db").close()
    return str(tmp_path / "show.db")


def test_markdown_names_the_first_seen_channel_and_links_it(tmp_path: Path) -> None:
    db = _archive(tmp_path)
    md = CliRunner().invoke(app, ["incident", "show", "1", "--markdown", "--db", db])
    assert md.exit_code == 0, md.output
    t0 = next(line for line in md.output.splitlines() if line.startswith("- **First seen (T0):**"))
    assert t0 == f"- **First seen (T0):** 2024-01-03T11:58:00Z in [{LONG_FA}](https://t.me/payam_mellat/1) (Telegram)"
    assert "telegram:100" not in md.output


def test_80_columns_show_channel_names_and_links_whole(tmp_path: Path) -> None:
    db = _archive(tmp_path)
    out = CliRunner().invoke(app, ["incident", "show", "1", "--db", db], env={"COLUMNS": "80"})
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert max(len(line) for line in lines) <= 80, out.output
    assert "…" not in out.output, out.output
    for whole in (LONG_FA, LONG_USER, "https://t.me/payam_mellat/1", "https://x.com/a_very_long_x_username_15/status/5",
                  "statedept", "T+2h10m", "statement", "T+1d1h51m", "claim"):
        assert any(whole in line for line in lines), (whole, out.output)
    wide = CliRunner().invoke(app, ["incident", "show", "1", "--db", db], env={"COLUMNS": "150"})
    assert wide.exit_code == 0, wide.output
    # a wide console keeps its channel column (20 columns): a longer name wraps, is not cut
    assert "a_very_long_x_usern…" not in wide.output and "a_very_long_x_userna…" not in wide.output, wide.output
    assert "a_very_long_x_userna" in wide.output and "me_15" in wide.output, wide.output
