"""`claimwatch serve`: Datasette started on loopback over a real archive; canned queries via httpx."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from monitor.archive import Archive
from monitor.model import Hit, Match, Message

pytest.importorskip("datasette")

T1 = datetime(2024, 1, 4, 15, 0, tzinfo=timezone.utc)
T2 = datetime(2024, 1, 5, 9, 0, tzinfo=timezone.utc)
HIT_A = Hit("isis-claims", "h1", "high", "ISIS claims", (Match("kw", "الدولة", 0, 6),), ("slack",))
HIT_B = Hit("irgc-statements", "h2", "medium", "IRGC statements", (Match("kw", "سپاه", 0, 4),), ())


@pytest.fixture
def archive_file(tmp_path: Path) -> Path:
    path = tmp_path / "claims.db"
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_serve(archive_file: Path) -> tuple[subprocess.Popen, str]:
    """Start `claimwatch serve` on a free loopback port and wait until it answers. The port
    is picked before the server binds it; if another process took it meanwhile, retry."""
    env = {**os.environ, "CLAIMWATCH_CONFIG": ""}
    output = ""
    for _attempt in range(3):
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "serve", "--db", str(archive_file), "--port", str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while proc.poll() is None:
            try:
                if httpx.get(f"{base}/-/versions.json", timeout=2).status_code == 200:
                    return proc, base
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                proc.kill()
                raise AssertionError("serve did not start within 30 s")
            time.sleep(0.2)
        output = proc.stdout.read().decode(errors="replace")
        if "address already in use" not in output.lower():
            break
    raise AssertionError(f"serve exited: {output}")


@pytest.fixture
def server(archive_file: Path):
    proc, base = _start_serve(archive_file)
    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            yield client
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


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


def test_read_only(server: httpx.Client, archive_file: Path) -> None:
    r = server.get("/claims.json", params={"sql": "delete from messages"})
    assert r.status_code == 400
    r = server.get("/claims.json", params={"sql": "select count(*) as n from messages", "_shape": "objects"})
    assert r.json()["rows"] == [{"n": 4}]
    r = server.post("/claims/-/query", data={"sql": "delete from messages"})
    assert r.status_code in (400, 403, 404, 405)
    with Archive.open(archive_file, readonly=True) as a:
        assert a.conn.execute("select count(*) from messages").fetchone()[0] == 4
