"""Shared by the web tests and `make screenshots`: a fixture archive built through the real
import path, `claimwatch serve` on a free loopback port, and headless Debian Chromium.

The archive: the bundled samples (Telegram export, X JSONL) run through `claimwatch run
--once` with the shipped rules and a file alert destination (hits, incidents, outbox rows),
then a Persian post imported twice as canonical JSONL (two versions) and marked deleted the
way the collectors do (``Archive.mark_deleted``), a hostile post (markup, a right-to-left
override), a resolved channel and a collector status with an error.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROME_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars",
)

EDITED_KEY = "telegram:1555000000:77"
HOSTILE_KEY = "telegram:1555000000:78"
V1 = "سپاه پاسداران: حمله به مقر گروهک تروریستی در کرمان انجام شد."
V2 = "سپاه پاسداران: حمله موشکی به مقر گروهک تروریستی داعش در کرمان با موفقیت انجام شد."
HOSTILE = "<script>alert('x')</script> \u202eevil\u202c <b>bold</b> الدولة الإسلامية"


def claimwatch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "monitor", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "CLAIMWATCH_CONFIG": "", **(env or {})})
    if proc.returncode != 0:
        raise AssertionError(f"claimwatch {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def _canonical(text: str, message_id: str, edit_date: str | None) -> dict:
    return {
        "schema": "claimwatch.message/1", "platform": "telegram", "channel_id": "1555000000",
        "channel": "sepahnews_fa", "channel_title": "خبرگزاری سپاه", "message_id": message_id,
        "date": "2024-01-04T10:00:00Z", "edit_date": edit_date, "author": None, "text": text, "lang": "fa",
        "url": None, "reply_to": None, "forwarded_from": None,
        "media": [{"type": "photo", "file_name": "statement.jpg", "size": 120345, "mime": "image/jpeg"}],
        "grouped_id": None, "extra": {}, "raw": {"id": int(message_id), "text": text, "edited": edit_date},
    }


def build_archive(folder: Path) -> Path:
    """The fixture archive in ``folder`` (returns its path)."""
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "claims.db"
    cfg = folder / "claimwatch.yaml"
    cfg.write_text(
        f"database: {db}\nrules: {ROOT / 'rules'}\n"
        "sources:\n  files:\n"
        f"    - {{path: {ROOT / 'samples/telegram/result.json'}}}\n"
        f"    - {{path: {ROOT / 'samples/x/tweets.jsonl'}}}\n"
        "alerts:\n  default: [log]\n  destinations:\n"
        f"    log: {{type: file, path: {folder / 'alerts.jsonl'}}}\n",
        encoding="utf-8",
    )
    claimwatch("run", "--config", str(cfg), "--once", "--log-level", "ERROR")
    v1 = folder / "edit-v1.jsonl"
    v2 = folder / "edit-v2.jsonl"
    v1.write_text(json.dumps(_canonical(V1, "77", None), ensure_ascii=False) + "\n"
                  + json.dumps(_canonical(HOSTILE, "78", None), ensure_ascii=False) + "\n", encoding="utf-8")
    v2.write_text(json.dumps(_canonical(V2, "77", "2024-01-04T10:20:00Z"), ensure_ascii=False) + "\n",
                  encoding="utf-8")
    claimwatch("import", str(v1), "--config", str(cfg))
    claimwatch("import", str(v2), "--config", str(cfg))
    from monitor.archive import Archive
    from monitor.model import Deletion

    with Archive.open(db) as a:
        a.mark_deleted(Deletion("telegram", "1555000000", ("77",), datetime(2024, 1, 4, 11, 0, tzinfo=timezone.utc)))
        a.upsert_channel("telegram", "1555000000", username="sepahnews_fa", title="خبرگزاری سپاه")
        a.record_source_status("telegram", last_message_at="2024-01-05T12:30:00Z", polled=True)
        a.record_source_status("telegram", error="sepahnews_fa: FloodWaitError (wait 30 s)")
        a.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`claimwatch serve` in a subprocess on a free loopback port."""

    def __init__(self, db: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.db, self.args, self.env = db, args, env or {}
        self.proc: subprocess.Popen | None = None
        self.base = ""

    def __enter__(self) -> "Server":
        output = ""
        for _attempt in range(3):
            port = free_port()
            # output to a file, not a pipe nobody reads (a full pipe would block the server)
            self.log = tempfile.TemporaryFile()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "monitor", "serve", "--db", str(self.db), "--port", str(port), *self.args],
                cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                env={**os.environ, "CLAIMWATCH_CONFIG": "", **self.env},
            )
            self.base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while self.proc.poll() is None:
                try:
                    if httpx.get(f"{self.base}/-/healthz", timeout=2).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    self.proc.kill()
                    raise AssertionError("serve did not start within 60 s")
                time.sleep(0.2)
            self.log.seek(0)
            output = self.log.read().decode(errors="replace")
            self.log.close()
            if "address already in use" not in output.lower():
                break
        raise AssertionError(f"serve exited: {output}")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
            self.log.close()


def browser_missing() -> str | None:
    """Why headless Chromium cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} not found (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


def start_browser(width: int = 1280, height: int = 1000):
    """Selenium driving Debian's headless Chromium with a fresh profile. Returns (driver, profile dir)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="cw-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    return driver, profile


def stop_browser(driver, profile: str) -> None:
    try:
        driver.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
