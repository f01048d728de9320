"""The hash chain: every version record (and every raw record that replaced a message row's
raw) is linked to the one before it, so ``claimwatch verify`` can tell a changed or removed
record. The archive's write paths call these inside their transaction."""

from __future__ import annotations

import sqlite3

from ..model import sha256_hex
from .rows import EDIT_DATE, RAW_SHA, RECORD_SHA, TEXT, TEXT_SHA, Row, record_hash

GENESIS = "0" * 64
INSERT_VERSION = (
    "INSERT INTO versions(message_rowid, text, text_sha256, edit_date, raw, raw_sha256, record_sha256, seen_at)"
    " VALUES (?,?,?,?,?,?,?,?)"
)
INSERT_CHAIN = "INSERT INTO chain(version_id, msg_key, record_sha256, link_sha256) VALUES (?,?,?,?)"


def chain_link(previous: str, record_sha256: str) -> str:
    return sha256_hex(previous + record_sha256)


class ChainWriter:
    """Versions and chain links (a part of :class:`~monitor.archive.store.Archive`)."""

    conn: sqlite3.Connection
    _last_link: str | None

    def _add_version(self, rowid: int, key: str, row: Row, raw_json: str | None, now: str) -> bool:
        """Add a version (and its chain record) unless this text has one. ``raw_json`` None:
        the record is the one the message row holds (``messages.raw``), not stored twice."""
        raw_sha = row[RAW_SHA]
        text = row[TEXT]
        rec = row[RECORD_SHA] or record_hash(key, text, raw_sha)
        cur = self.conn.execute(
            "INSERT OR IGNORE" + INSERT_VERSION[len("INSERT"):],
            (rowid, text, row[TEXT_SHA], row[EDIT_DATE], raw_json, raw_sha, rec, now),
        )
        if cur.rowcount != 1:
            return False
        link = chain_link(self._previous_link(), rec)
        self.conn.execute(INSERT_CHAIN, (cur.lastrowid, key, rec, link))
        self._last_link = link
        return True

    def _chain_raw(self, rowid: int, key: str, row: Row) -> None:
        """Chain a raw record that replaced ``messages.raw`` without adding a version (same text,
        new metadata such as views): its record hash uses the same formula and names the version
        holding that text, so ``claimwatch verify`` can check the message row's current raw."""
        found = self.conn.execute(
            "SELECT id FROM versions WHERE message_rowid=? AND text_sha256=?", (rowid, row[TEXT_SHA])
        ).fetchone()
        if found is None:  # every stored text has a version; nothing to link to otherwise
            return
        rec = record_hash(key, row[TEXT], row[RAW_SHA])
        link = chain_link(self._previous_link(), rec)
        self.conn.execute(
            "INSERT INTO chain(version_id, msg_key, record_sha256, link_sha256) VALUES (?,?,?,?)",
            (found[0], key, rec, link),
        )
        self._last_link = link

    def _previous_link(self) -> str:
        if self._last_link is None:
            row = self.conn.execute("SELECT link_sha256 FROM chain ORDER BY seq DESC LIMIT 1").fetchone()
            self._last_link = row[0] if row else GENESIS
        return self._last_link
