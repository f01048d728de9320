"""The web view in a real browser: headless Debian Chromium driven by Selenium against
`claimwatch serve` on 127.0.0.1, over a fixture archive built through the real import path
(see tests/web_support.py). Without Chromium the tests are skipped locally and FAIL in CI
(CI=true): `.ci/run` / `make test` install it."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from web_support import EDITED_KEY, HOSTILE_KEY, Server, browser_missing, build_archive, start_browser, stop_browser

pytest.importorskip("datasette")

_missing = browser_missing()
if _missing:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"browser tests cannot run in CI: {_missing}", pytrace=False)
    pytest.skip(f"browser tests skipped: {_missing}", allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_archive(tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="module")
def server(archive: Path):
    with Server(archive) as s:
        yield s


@pytest.fixture(scope="module")
def browser():
    driver, profile = start_browser()
    try:
        yield driver
    finally:
        stop_browser(driver, profile)


def open_page(browser, server: Server, path: str) -> None:
    browser.get(server.base + path)
    assert "Error" not in browser.title, browser.find_element(By.TAG_NAME, "body").text[:500]


def body(browser) -> str:
    return browser.find_element(By.TAG_NAME, "body").text


def direction(el) -> str:
    return el.parent.execute_script("return getComputedStyle(arguments[0]).direction", el)


def first_incident(archive: Path) -> tuple[int, str]:
    with sqlite3.connect(archive) as c:
        return c.execute("SELECT id, title FROM incidents WHERE merged_into IS NULL AND messages > 0"
                         " ORDER BY messages DESC LIMIT 1").fetchone()


def test_home(browser, server: Server, archive: Path) -> None:
    open_page(browser, server, "/")
    text = body(browser)
    assert "Hits by level and kind" in text and "Latest hits" in text and "Channel health" in text
    table = browser.find_element(By.ID, "hits-by-level").text
    assert "high" in table and "claim" in table and "statement" in table
    iid, title = first_incident(archive)
    card = browser.find_element(By.ID, f"incident-{iid}")
    assert title in card.text and "T+0m" in card.text
    # channel health: the resolved channel and the collector's last error
    assert "sepahnews_fa" in browser.find_element(By.ID, "channels").text
    assert "FloodWaitError" in browser.find_element(By.ID, "sources").text
    # Persian/Arabic texts are laid out right-to-left
    rtl = [el for el in browser.find_elements(By.CSS_SELECTOR, "#latest-hits .cw-text") if "سپاه" in el.text]
    assert rtl and all(el.get_attribute("dir") in ("rtl", "auto") and direction(el) == "rtl" for el in rtl)
    # the latest hits fit the window: no horizontal scrolling, the actor's full title on hover
    width = browser.execute_script("return window.innerWidth")
    table_right = browser.execute_script(
        "return document.getElementById('latest-hits').getBoundingClientRect().right")
    assert table_right <= width, (table_right, width)
    badges = browser.find_elements(By.CSS_SELECTOR, "#latest-hits td.cw-actors .badge")
    assert badges and all(b.get_attribute("title").startswith(b.text) for b in badges)
    assert any(b.get_attribute("title") != b.text for b in badges)
    # the search box leads to the search page
    box = browser.find_element(By.CSS_SELECTOR, "form.searchbox input[name=q]")
    box.send_keys("کرمان")
    box.submit()
    assert "/search?q=" in browser.current_url
    assert browser.find_element(By.ID, "results").find_elements(By.TAG_NAME, "mark")


def test_incident_timeline_and_exports(browser, server: Server, archive: Path) -> None:
    iid, title = first_incident(archive)
    open_page(browser, server, f"/incident/{iid}")
    assert title in browser.find_element(By.TAG_NAME, "h1").text
    entries = browser.find_elements(By.CSS_SELECTOR, "#timeline > li.entry")
    assert entries and entries[0].text.startswith("T+0m")
    offsets = [e.find_element(By.CLASS_NAME, "offset").text for e in entries]
    assert all(o.startswith("T+") for o in offsets) and len(set(offsets)) > 3
    kinds = {b.text for b in browser.find_elements(By.CSS_SELECTOR, "#timeline .badge") if b.text in ("claim", "statement")}
    assert kinds == {"claim", "statement"}
    assert "Islamic State" in body(browser)  # actor titles from rules/actors.yml
    # repost families are collapsed behind a <details>
    family = browser.find_elements(By.CSS_SELECTOR, "details.family")
    assert family and not family[0].get_attribute("open")
    family[0].find_element(By.TAG_NAME, "summary").click()
    assert family[0].get_attribute("open") is not None
    # links to the messages and their sources
    assert browser.find_elements(By.CSS_SELECTOR, "#timeline a[href^='/message/']")
    md = httpx.get(f"{server.base}/incident/{iid}.md")
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    assert md.text.startswith(f"## Incident {iid}: {title}") and "| T+0m |" in md.text
    js = httpx.get(f"{server.base}/incident/{iid}.json").json()
    assert js["id"] == iid and js["messages"] and js["counts"]["messages"] == len(js["messages"])


def test_message_versions_diff_deletion(browser, server: Server) -> None:
    open_page(browser, server, "/message/" + quote(EDITED_KEY))
    assert "Deleted at the source on 2024-01-04T11:00:00Z" in browser.find_element(By.ID, "deleted").text
    versions = browser.find_elements(By.CSS_SELECTOR, ".version")
    assert [v.get_attribute("id") for v in versions] == ["version-2", "version-1"]
    latest = versions[0].find_element(By.CLASS_NAME, "cw-text")
    assert latest.text.strip() == "سپاه پاسداران: حمله موشکی به مقر گروهک تروریستی داعش در کرمان با موفقیت انجام شد."
    assert direction(latest) == "rtl"
    diff = versions[0].find_element(By.CLASS_NAME, "cw-diff")
    inserted = [e.text for e in diff.find_elements(By.CSS_SELECTOR, "ins.cw-ins")]
    deleted = [e.text for e in diff.find_elements(By.CSS_SELECTOR, "del.cw-del")]
    assert "موشکی" in " ".join(inserted) and "داعش" in " ".join(inserted) and "با موفقیت" in " ".join(inserted)
    assert deleted == []
    assert direction(diff) == "rtl"
    assert versions[1].find_elements(By.CLASS_NAME, "cw-diff") == []  # the first version has nothing to diff
    # hits with their matched terms highlighted in the text that matched
    hits = browser.find_element(By.ID, "hits").text
    assert "IRGC" in hits or "سپاه" in hits
    assert [m.text for m in latest.find_elements(By.TAG_NAME, "mark")]
    # raw record and its hash, the media description, the link to the source
    assert len(browser.find_element(By.ID, "raw-sha256").text) == 64
    assert "statement.jpg" in body(browser) and "not downloaded" in body(browser)
    assert browser.find_element(By.LINK_TEXT, "source").get_attribute("href") == "https://t.me/sepahnews_fa/77"


def test_hostile_text_stays_text(browser, server: Server) -> None:
    open_page(browser, server, "/message/" + quote(HOSTILE_KEY))
    text = browser.find_element(By.CSS_SELECTOR, ".version .cw-text")
    assert "<script>alert('x')</script>" in text.text and "<b>bold</b>" in text.text
    assert text.find_elements(By.TAG_NAME, "script") == [] and text.find_elements(By.TAG_NAME, "b") == []
    assert "\u202e" not in browser.page_source and "\ufffdevil\ufffd" in text.text


def test_channel_page(browser, server: Server) -> None:
    open_page(browser, server, "/channel/telegram/1555000000")
    assert "sepahnews_fa" in browser.find_element(By.TAG_NAME, "h1").text
    assert "خبرگزاری سپاه" in body(browser)
    bars = browser.find_elements(By.CSS_SELECTOR, "svg.cw-chart rect.bar")
    assert bars and {b.find_element(By.TAG_NAME, "title").get_attribute("textContent") for b in bars} >= {"2024-01-04: 2"}
    recent = browser.find_element(By.ID, "recent")
    assert "deleted" in recent.text and "edited" in recent.text
    rows = [el for el in recent.find_elements(By.CLASS_NAME, "cw-text") if "سپاه" in el.text]
    assert rows and direction(rows[0]) == "rtl"
    status = browser.find_element(By.ID, "status").text
    assert "Messages 2" in status and "FloodWaitError" in status


def test_search_with_facets(browser, server: Server) -> None:
    open_page(browser, server, "/search?q=" + quote("الدولة"))
    count = browser.find_element(By.ID, "count").text
    results = browser.find_elements(By.CSS_SELECTOR, "#results .cw-text")
    assert results and count.startswith(str(int(count.split()[0])))
    assert all(r.find_elements(By.TAG_NAME, "mark") for r in results)
    assert all(direction(r) == "rtl" for r in results if r.text[:1] in "الو")
    facets = {f.get_attribute("data-facet"): f for f in browser.find_elements(By.CSS_SELECTOR, ".facet")}
    assert {"platform", "channel", "rule", "level", "kind", "actor", "date"} <= set(facets)
    assert browser.find_elements(By.CSS_SELECTOR, "svg.cw-chart rect.bar")
    # narrowing by a facet value keeps the query and shows the filter
    before = int(count.split()[0].rstrip("+"))
    facets["kind"].find_element(By.PARTIAL_LINK_TEXT, "claim").click()
    assert "kind=claim" in browser.current_url and "q=" in browser.current_url
    assert "kind: claim" in browser.find_element(By.ID, "active-filters").text
    after = int(browser.find_element(By.ID, "count").text.split()[0].rstrip("+"))
    assert 0 < after < before
    sel = browser.find_element(By.CSS_SELECTOR, ".facet[data-facet=kind] li.sel")
    assert "claim" in sel.text
    # a query syntax error is a readable error, not a crash
    open_page(browser, server, "/search?q=" + quote("isis AND"))
    assert "needs a search term on both sides" in browser.find_element(By.ID, "error").text


def test_sql_refused_by_default(browser, server: Server, archive: Path) -> None:
    db = archive.stem
    r = httpx.get(f"{server.base}/{db}.json", params={"sql": "select count(*) from messages"})
    assert r.status_code == 403
    browser.get(f"{server.base}/{db}?sql=select+1")
    assert "Forbidden" in body(browser) or "403" in browser.title
    # canned queries still work
    r = httpx.get(f"{server.base}/{db}/latest_hits.json", params={"rule": "", "_shape": "objects"})
    assert r.status_code == 200 and r.json()["rows"]
