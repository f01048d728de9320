"""`make screenshots`: PNGs of each page of the web view in docs/screenshots/, taken in
headless Debian Chromium over the same fixture archive as the browser tests."""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

from web_support import EDITED_KEY, ROOT, Server, browser_missing, build_archive, start_browser, stop_browser  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def main() -> int:
    missing = browser_missing()
    if missing:
        print(f"screenshots: {missing}", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cw-shots-") as tmp:
        db = build_archive(Path(tmp))
        with sqlite3.connect(db) as c:
            iid = c.execute("SELECT id FROM incidents WHERE merged_into IS NULL AND messages > 0"
                            " ORDER BY messages DESC LIMIT 1").fetchone()[0]
        pages = {
            "home": "/",
            "incident": f"/incident/{iid}",
            "message": "/message/" + quote(EDITED_KEY),
            "channel": "/channel/telegram/1555000000",
            "search": "/search?q=" + quote("الدولة OR کرمان"),
        }
        with Server(db) as server:
            driver, profile = start_browser(1280, 900)
            try:
                for name, path in pages.items():
                    driver.get(server.base + path)
                    height = driver.execute_script("return document.documentElement.scrollHeight")
                    driver.set_window_size(1280, min(max(int(height), 900), 2400))
                    out = OUT / f"{name}.png"
                    driver.save_screenshot(str(out))
                    print(f"{out.relative_to(ROOT)}  ({path})")
            finally:
                stop_browser(driver, profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
