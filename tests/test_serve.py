"""`claimwatch serve`: Datasette started on loopback over a real archive; canned queries via httpx."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from monitor.archive import Archive
from monitor.model import Hit, Match, Message
from web_support import Server

pytest.importorskip("datasette")

T1 = datetime(2024, 1, 4, 15, 0, tzinfo=timezone.utc)
T2 = datetime(2024, 1, 5, 9, 0, tzinfo=timezone.utc)
HIT_A = Hit("isis-claims", "h1", "high", "ISIS claims", (Match("kw", "الدولة", 0, 6),), ("slack",))
HIT_B = Hit("irgc-statements", "h2", "medium", "IRGC statements", (Match("kw", "سپاه", 0, 4),), ())


def make_archive(path: Path) -> Path:
    with Archive.open(path) as a:
        a.store([
            (Message("telegram", "-1001", "1", T1, "أعلنت الدَّوْلَةُ الإسلامية <script>alert(1)</script> مسؤوليتها",
                     channel="amaq", raw={"id": 1}), [HIT_A]),
            (Message("telegram", "-1001", "2", T2, "بيان صادر عن والدولة الإسلامية", channel="amaq", raw={"id": 2}),
             [HIT_A]),
            (Message("telegram", "-1003", "3", T2, "سپاه یک بیانیه منتشر کرد", channel="sepah", raw={"id": 3}),
             [HIT_B]),
            (Message("x", "42", "4", T1, "nothing to see", channel="newsdesk", raw={"id": 4}), []),
        ])
        a.upsert_channel("telegram", "-1001", username="amaq", title="Amaq")
    return path


@pytest.fixture(scope="module")
def archive_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One archive for the module's read-only tests (a test that writes makes its own)."""
    return make_archive(tmp_path_factory.mktemp("serve") / "claims.db")


@pytest.fixture(scope="module")
def server(archive_file: Path):
    """One Datasette for the module (started once: each start costs seconds)."""
    with Server(archive_file) as srv, httpx.Client(base_url=srv.base, timeout=10) as client:
        yield client


def rows(client: httpx.Client, path: str, **params) -> list[dict]:
    r = client.get(path, params={**params, "_shape": "objects"})
    assert r.status_code == 200, r.text
    return r.json()["rows"]


def test_serves_on_loopback_with_metadata(server: httpx.Client) -> None:
    meta = server.get("/-/metadata.json").json()
    assert meta["title"] == "claimwatch archive"
    queries = meta["databases"]["claims"]["queries"]
    assert {"latest_hits", "hits_per_rule_per_day", "messages_per_channel_per_day", "search"} <= set(queries)
    assert server.base_url.host == "127.0.0.1"


def test_canned_latest_hits(server: httpx.Client) -> None:
    got = rows(server, "/claims/latest_hits.json", rule="")
    assert [r["key"] for r in got] == ["telegram:-1003:3", "telegram:-1001:2", "telegram:-1001:1"]
    assert rows(server, "/claims/latest_hits.json", rule="irgc-statements")[0]["level"] == "medium"


def test_canned_per_day_aggregates(server: httpx.Client) -> None:
    per_rule = rows(server, "/claims/hits_per_rule_per_day.json")
    assert {(r["day"], r["rule_id"], r["hits"]) for r in per_rule} == {
        ("2024-01-05", "isis-claims", 1), ("2024-01-05", "irgc-statements", 1), ("2024-01-04", "isis-claims", 1)}
    per_channel = rows(server, "/claims/messages_per_channel_per_day.json")
    assert {(r["day"], r["channel_id"], r["channel"], r["messages"]) for r in per_channel} == {
        ("2024-01-05", "-1001", "amaq", 1), ("2024-01-05", "-1003", None, 1),
        ("2024-01-04", "-1001", "amaq", 1), ("2024-01-04", "42", None, 1)}


def test_canned_search_normalised_with_highlights(server: httpx.Client) -> None:
    got = rows(server, "/claims/search.json", q="الدولة")
    assert {r["key"] for r in got} == {"telegram:-1001:1", "telegram:-1001:2"}
    snippet = next(r["snippet"] for r in got if r["key"] == "telegram:-1001:2")
    assert "\ue000والدولة\ue001" in snippet
    assert [r["key"] for r in rows(server, "/claims/search.json", q="يك")] == ["telegram:-1003:3"]
    assert rows(server, "/claims/search.json", q="") == []
    # HTML page: hostile text escaped, matches wrapped in <mark>
    html = server.get("/claims/search", params={"q": "الدولة مسؤوليتها"}).text
    assert "<mark>الدَّوْلَةُ</mark>" in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    # a query syntax error is an error page, not a crash
    r = server.get("/claims/search.json", params={"q": "isis AND"})
    assert r.status_code == 400 and "syntax error" in r.json()["error"]


def test_read_only_and_sql_refused_by_default(server: httpx.Client, archive_file: Path) -> None:
    r = server.get("/claims.json", params={"sql": "select count(*) as n from messages"})
    assert r.status_code == 403
    r = server.get("/claims", params={"sql": "delete from messages"})
    assert r.status_code in (400, 403)
    r = server.post("/claims/-/query", data={"sql": "delete from messages"})
    assert r.status_code in (400, 403, 404, 405)
    assert server.get("/claims/messages.json", params={"_where": "1=1"}).status_code in (400, 403)
    with Archive.open(archive_file, readonly=True) as a:
        assert a.conn.execute("select count(*) from messages").fetchone()[0] == 4


def test_allow_sql_is_still_read_only(archive_file: Path) -> None:
    with Server(archive_file, "--allow-sql") as srv:
        with httpx.Client(base_url=srv.base, timeout=10) as client:
            r = client.get("/claims.json", params={"sql": "select count(*) as n from messages", "_shape": "objects"})
            assert r.json()["rows"] == [{"n": 4}]
            for sql in ("delete from messages", "pragma query_only=0", "attach database 'x.db' as x"):
                assert client.get("/claims.json", params={"sql": sql}).status_code in (400, 403)
    with Archive.open(archive_file, readonly=True) as a:
        assert a.conn.execute("select count(*) from messages").fetchone()[0] == 4


def test_password(archive_file: Path) -> None:
    from datasette_auth_passwords.utils import hash_password

    env = {"CLAIMWATCH_WEB_PASSWORD_HASH": hash_password("s3cret-pass", iterations=1000)}
    with Server(archive_file, env=env) as srv:
        with httpx.Client(base_url=srv.base, timeout=10) as client:
            assert client.get("/-/healthz").status_code == 200  # health checks need no login
            for path in ("/", "/search?q=x", "/message/telegram:-1001:1", "/claims", "/claims/messages.json"):
                r = client.get(path)
                assert r.status_code in (302, 403), path
                if r.status_code == 302:
                    assert r.headers["location"] == "/-/login"
            bad = client.post("/-/login", data={"username": "analyst", "password": "wrong"})
            assert "Invalid username or password" in bad.text and "ds_actor" not in client.cookies
            form = client.get("/-/login").text
            token = re.search(r'name="csrftoken" value="([^"]+)"', form).group(1)
            ok = client.post("/-/login", data={"username": "analyst", "password": "s3cret-pass", "csrftoken": token})
            assert ok.status_code == 302 and "ds_actor" in client.cookies
            page = client.get("/message/telegram:-1001:1")
            assert page.status_code == 200 and "مسؤوليتها" in page.text


def test_bad_password_hash_is_a_usage_error(archive_file: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "monitor", "serve", "--db", str(archive_file), "--port", "0"],
                       capture_output=True, text=True, timeout=60,
                       env={**os.environ, "CLAIMWATCH_CONFIG": "", "CLAIMWATCH_WEB_PASSWORD_HASH": "plain"})
    assert r.returncode == 2 and "CLAIMWATCH_WEB_PASSWORD_HASH" in r.stderr and "Traceback" not in r.stderr


def test_reads_while_the_daemon_writes(tmp_path: Path) -> None:
    """The server's mode=ro connections see what a writer commits to the WAL archive, while
    the writer keeps its connection open (no checkpoint in between)."""
    archive_file = make_archive(tmp_path / "claims.db")  # its own: this test writes
    with Server(archive_file) as srv, httpx.Client(base_url=srv.base, timeout=10) as server:
        _read_while_writing(server, archive_file)


def _read_while_writing(server: httpx.Client, archive_file: Path) -> None:
    assert "سپاه یک بیانیه" in server.get("/channel/telegram/-1003").text
    writer = Archive.open(archive_file)
    try:
        writer.store([(Message("telegram", "-1003", "9", T2, "پیام تازه درباره کرمان", channel="sepah",
                               raw={"id": 9}), [HIT_B])])
        page = server.get("/channel/telegram/-1003").text
        assert "پیام تازه درباره کرمان" in page
        assert "Messages</th><td>2<" in page
        assert server.get("/message/telegram:-1003:9").status_code == 200
    finally:
        writer.close()


def test_healthz_and_pages_not_found(server: httpx.Client) -> None:
    assert server.get("/-/healthz").text == "ok"
    assert server.get("/message/telegram:-1001:999").status_code == 404
    assert server.get("/message/nonsense").status_code == 404
    assert server.get("/channel/telegram/nope").status_code == 404
    assert server.get("/incident/12345").status_code == 404


def test_client_errors_leave_no_traceback_in_the_log(archive_file: Path) -> None:
    """A 404, a 400 or a refused ?sql= (403) printed a rich traceback with each frame's local
    variables (request scope, headers) into the server's log, ~60 lines per request."""
    with Server(archive_file) as srv, httpx.Client(base_url=srv.base, timeout=10) as client:
        assert client.get("/message/nonsense").status_code == 404
        assert client.get("/incident/12345").status_code == 404
        assert client.get("/claims/search.json", params={"q": "isis AND"}).status_code == 400
        assert client.get("/claims.json", params={"sql": "select 1"}).status_code == 403
        srv.log.seek(0)
        log = srv.log.read().decode(errors="replace")
    assert "Traceback" not in log and "locals" not in log, log
    assert len(log.splitlines()) < 10, log


def test_a_records_url_is_linked_only_when_it_is_http(tmp_path: Path) -> None:
    """A message's ``url`` comes from the record (a canonical JSONL line, an export): a
    ``javascript:`` URL was put in the message and incident pages' "source" links as it was."""
    text = "Islamic State claimed responsibility for the attack in Kerman, Iran"
    hit = Hit("claims", "h1", "high", "Claims", (Match("kw", "claimed responsibility", 21, 43),), (), kind="claim")
    with Archive.open(tmp_path / "a.db") as a:
        a.store([
            (Message("telegram", "-1009", "1", T1, text, channel="evil", url="javascript:alert(document.domain)",
                     raw={"id": 1}), [hit]),
            (Message("telegram", "-1009", "2", T1, text + " again", channel="evil", url="https://t.me/evil/2",
                     raw={"id": 2}), [hit]),
        ])
    with Server(tmp_path / "a.db") as srv:
        pages = [httpx.get(f"{srv.base}/message/telegram:-1009:1", timeout=30),
                 httpx.get(f"{srv.base}/message/telegram:-1009:2", timeout=30)]
        incident = httpx.get(f"{srv.base}/incident/1", timeout=30)
        if incident.status_code == 200:
            pages.append(incident)
    for page in pages:
        assert page.status_code == 200
        assert "javascript:" not in page.text.lower(), page.url
    assert 'href="https://t.me/evil/2"' in pages[1].text
