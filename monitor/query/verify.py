"""Recompute the archive's evidence hashes and its hash chain; report what was tampered with.

What is stored (see :mod:`monitor.archive.store`):

* every message row keeps its raw record and ``raw_sha256``;
* every distinct text of a message is a ``versions`` row with its raw record, ``raw_sha256``
  and ``record_sha256 = record_hash(key, text, raw_sha256)``; a version's raw is NULL while
  it is the record the message row holds (same ``raw_sha256``; schema 2), and is then
  checked through the message row;
* ``chain`` links the records in insertion order:
  ``link_sha256 = sha256(previous link + record_sha256)`` from ``GENESIS``. The first chain
  row naming a version is that version's record; a later one naming the same version is a
  raw record that replaced ``messages.raw`` with the same text (new metadata), hashed with
  the same formula from its own raw_sha256.

:func:`verify` walks the chain in ``seq`` order and checks each link, that the version it
names exists and still hashes to the chained record, and that its message row exists and
has the chained key; then that every version is chained, and that every message row's raw
matches its hash and is a chained record, it has a chained version, and its text is one of
its versions' texts.
A manifest written by ``claimwatch export --manifest`` pins the chain head at a length, so a
rewrite of the whole chain, or removal of its newest records, is caught too.

The chain proves what was stored, not who stored it: someone able to write the file can
rebuild every hash after a change. Keep manifests (or the chain head) elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..archive.chain import GENESIS, chain_link
from ..archive.rows import record_hash

MANIFEST_SCHEMA = "claimwatch.manifest/1"


class ManifestError(ValueError):
    """The manifest file is unreadable or lacks a field (the message names the file)."""


@dataclass(frozen=True)
class Problem:
    kind: str  # altered | removed | inserted
    table: str  # chain | versions | messages | manifest | export
    rowid: int | None
    key: str | None
    detail: str

    def __str__(self) -> str:
        where = f"{self.table} row {self.rowid}" if self.rowid is not None else self.table
        key = f" [{self.key}]" if self.key else ""
        return f"{self.kind}: {where}{key}: {self.detail}"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "table": self.table, "rowid": self.rowid, "key": self.key, "detail": self.detail}


@dataclass
class VerifyReport:
    messages: int = 0
    versions: int = 0
    chain: int = 0
    head: str = GENESIS
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    seconds: float = 0.0
    manifest: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    @property
    def records_per_second(self) -> float:
        return (self.chain + self.messages) / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "messages": self.messages,
            "versions": self.versions,
            "chain": self.chain,
            "head": self.head,
            "problem_count": self.problem_count,
            "first_problem": self.first.as_dict() if self.first else None,
            "problems": [p.as_dict() for p in self.problems],
            "seconds": round(self.seconds, 3),
            "notes": self.notes,
        }


class _Marks:
    """A set of small non-negative integers (row ids): a bytearray when ids are dense."""

    def __init__(self, max_id: int, count: int) -> None:
        self.dense = max_id <= 4 * count + 1_000_000
        self.bits = bytearray(max_id + 1) if self.dense else None
        self.ids: set[int] = set()

    def add(self, i: int) -> None:
        if self.bits is not None and 0 <= i < len(self.bits):
            self.bits[i] = 1
        else:
            self.ids.add(i)

    def __contains__(self, i: int) -> bool:
        if self.bits is not None and 0 <= i < len(self.bits):
            return bool(self.bits[i])
        return i in self.ids


def _sha(text: str | None) -> str:
    return hashlib.sha256((text or "").encode("utf-8")).hexdigest()


def load_manifest(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{p}: no such manifest file") from None
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{p}: not a JSON manifest ({exc})") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{p}: not a JSON object")
    for name in ("chain_length", "chain_head"):
        if name not in data:
            raise ManifestError(f"{p}: missing field '{name}'")
    if not isinstance(data["chain_length"], int) or data["chain_length"] < 0:
        raise ManifestError(f"{p}: field 'chain_length' must be a non-negative integer")
    data["_dir"] = str(p.resolve().parent)
    return data


def verify(
    conn: sqlite3.Connection,
    *,
    manifest: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
    max_problems: int = 100,
) -> VerifyReport:
    """Check the whole archive (in one read snapshot). ``progress(done, total)`` is called
    every few thousand rows. Keeps the first ``max_problems`` problems and counts all."""
    t0 = time.perf_counter()
    report = VerifyReport(manifest=manifest)

    def problem(kind: str, table: str, rowid: int | None, key: str | None, detail: str) -> None:
        report.problem_count += 1
        if len(report.problems) < max_problems:
            report.problems.append(Problem(kind, table, rowid, key, detail))

    own_tx = not conn.in_transaction
    if own_tx:
        conn.execute("BEGIN")
    try:
        n_chain, max_seq = conn.execute("SELECT count(*), coalesce(max(seq), 0) FROM chain").fetchone()
        n_versions, max_vid = conn.execute("SELECT count(*), coalesce(max(id), 0) FROM versions").fetchone()
        n_messages, max_mid = conn.execute("SELECT count(*), coalesce(max(id), 0) FROM messages").fetchone()
        report.chain, report.versions, report.messages = n_chain, n_versions, n_messages
        total = n_chain + n_versions + n_messages
        done = 0
        seen_versions = _Marks(max_vid, n_versions)
        has_version = _Marks(max_mid, n_messages)
        text_ok = _Marks(max_mid, n_messages)
        raw_ok = _Marks(max_mid, n_messages)
        reported: set[int] = set()  # message rows already reported during the chain walk
        pin_length = manifest.get("chain_length") if manifest else None
        pin_link: str | None = GENESIS if pin_length == 0 else None

        # 1. the chain, in order
        prev = GENESIS
        expected_seq = 1
        position = 0
        rows = conn.execute(
            "SELECT c.seq, c.version_id, c.msg_key, c.record_sha256, c.link_sha256,"
            " v.id, v.message_rowid, v.text, v.text_sha256, v.raw IS NULL, v.raw, v.raw_sha256, v.record_sha256,"
            " m.id, m.platform, m.channel_id, m.message_id, m.text, m.raw_sha256"
            " FROM chain c LEFT JOIN versions v ON v.id = c.version_id"
            " LEFT JOIN messages m ON m.id = v.message_rowid ORDER BY c.seq"
        )
        for (seq, c_vid, c_key, c_rec, c_link, v_id, v_mrow, v_text, v_tsha, v_shared, v_raw, v_rsha, v_rec,
             m_id, m_plat, m_cid, m_mid, m_text, m_rsha) in rows:
            position += 1
            done += 1
            if progress is not None and not done % 20000:
                progress(done, total)
            if seq != expected_seq:
                missing = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}..{seq - 1}"
                problem("removed", "chain", expected_seq, None, f"chain record(s) {missing} missing before seq {seq}")
            elif chain_link(prev, c_rec) != c_link:
                problem("altered", "chain", seq, c_key, "link does not follow from the previous link and the record hash")
            expected_seq = seq + 1
            prev = c_link
            if position == pin_length:
                pin_link = c_link
            if v_id is None:
                problem("removed", "versions", c_vid, c_key, f"version chained at seq {seq} is missing")
                continue
            first = v_id not in seen_versions
            if first:  # the version's own record
                seen_versions.add(v_id)
                if v_shared and m_id is not None and m_rsha != v_rsha:
                    # Kept in the message row (whose raw is hashed in step 3): only valid
                    # while that row names the same record.
                    problem("altered", "versions", v_id, c_key,
                            "raw record is not stored and its message row holds another one")
                elif not v_shared and _sha(v_raw) != v_rsha:
                    problem("altered", "versions", v_id, c_key, "raw record does not match its raw_sha256")
                elif _sha(v_text) != v_tsha:
                    problem("altered", "versions", v_id, c_key, "text does not match its text_sha256")
                elif record_hash(c_key, v_text, v_rsha) != c_rec or v_rec != c_rec:
                    problem("altered", "versions", v_id, c_key, f"record hash differs from the chained one (seq {seq})")
            if m_id is None:
                problem("removed", "messages", v_mrow, c_key, f"message row of version {v_id} is missing")
                continue
            key = f"{m_plat}:{m_cid}:{m_mid}"
            if key != c_key:
                if first:
                    problem("altered", "messages", m_id, c_key, f"message key is now {key}")
                else:
                    problem("altered", "chain", seq, c_key, f"names version {v_id} of another message ({key})")
                continue
            if not first:
                # A later record naming the version: a raw record (same text, new metadata) that
                # replaced messages.raw. The current one is recomputed from the message row;
                # older ones were overwritten and are covered by their links only.
                if record_hash(c_key, v_text, m_rsha) == c_rec:
                    raw_ok.add(m_id)
                continue
            has_version.add(m_id)
            if v_rsha == m_rsha:
                raw_ok.add(m_id)
            if v_text == m_text:
                text_ok.add(m_id)
            elif v_rsha == m_rsha:
                problem("altered", "messages", m_id, key, f"text differs from version {v_id} of the same raw record")
                reported.add(m_id)
        report.head = prev

        # 2. every version chained
        for v_id, v_mrow in conn.execute("SELECT id, message_rowid FROM versions ORDER BY id"):
            done += 1
            if progress is not None and not done % 20000:
                progress(done, total)
            if v_id not in seen_versions:
                problem("inserted", "versions", v_id, _key(conn, v_mrow), "version is not in the hash chain")

        # 3. every message: raw hash, a chained version, text of one of its versions
        for m_id, plat, cid, mid, raw, rsha in conn.execute(
            "SELECT id, platform, channel_id, message_id, raw, raw_sha256 FROM messages ORDER BY id"
        ):
            done += 1
            if progress is not None and not done % 20000:
                progress(done, total)
            key = f"{plat}:{cid}:{mid}"
            if _sha(raw) != rsha:
                problem("altered", "messages", m_id, key, "raw record does not match its raw_sha256")
            elif m_id not in has_version:
                problem("inserted", "messages", m_id, key, "message has no version in the hash chain")
            elif m_id not in raw_ok:
                problem("altered", "messages", m_id, key, "raw record is not one of its chained records")
            elif m_id not in text_ok and m_id not in reported:
                problem("altered", "messages", m_id, key, "text matches none of its archived versions")
        if progress is not None:
            progress(total, total)

        # 4. incidents (derived tables): every member a live message, counts as stored
        _check_incidents(conn, report, problem)

        # 5. the manifest's pin
        if manifest is not None:
            _check_manifest(manifest, n_chain, pin_link, report, problem)
    finally:
        if own_tx:
            conn.execute("COMMIT")
    report.seconds = time.perf_counter() - t0
    return report


_BANDS = 16  # band keys a family text with a MinHash signature has in family_bands (monitor.incidents.families.BANDS)


def _bands_written_at_mark(conn: sqlite3.Connection) -> bool:
    """Has the archive migration 8 (``_m8_family_bands_once``: the band keys of the texts up to
    ``meta.incidents_bands_written`` only, none written when it is not set)? (A read-only
    verify does not migrate.)"""
    from ..archive.schema import MIGRATIONS, _m8_family_bands_once

    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    return row is not None and int(row[0]) >= MIGRATIONS.index(_m8_family_bands_once) + 1


def _check_incidents(conn: sqlite3.Connection, report: VerifyReport, problem: Any) -> None:
    """Incident tables (derived from hits, docs/incidents.md): members exist, each incident's
    message count matches its members, no member sits in a merged incident, every family text
    with a signature has its band keys in ``family_bands`` (up to the texts written there:
    ``meta.incidents_bands_written``)."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name='incidents'").fetchone() is None:
        return
    for (rowid,) in conn.execute(
        "SELECT im.message_rowid FROM incident_messages im LEFT JOIN messages m ON m.id = im.message_rowid"
        " WHERE m.id IS NULL"
    ):
        problem("incidents", "incident_messages", rowid, None, "incident member is not in the archive")
    for iid, stored, actual, merged in conn.execute(
        "SELECT i.id, i.messages, (SELECT count(*) FROM incident_messages im WHERE im.incident_id = i.id), i.merged_into"
        " FROM incidents i"
    ):
        if merged is not None and actual:
            problem("incidents", "incidents", iid, None, f"merged incident still has {actual} message(s)")
        elif merged is None and stored != actual:
            problem("incidents", "incidents", iid, None, f"incident counts {stored} message(s), has {actual}")
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name='family_bands'").fetchone() is not None:
        # the near-copy index (migration 6): every text with a signature up to the mark
        # (meta.incidents_bands_written, migration 8) has its 16 band keys, no other has any
        # (the newest texts' keys are computed from their signatures); migration 7 staged the
        # newest texts' keys in family_bands_new
        staged = conn.execute("SELECT 1 FROM sqlite_master WHERE name='family_bands_new'").fetchone() is not None
        bands_sql = ("(SELECT band_key, text_id FROM family_bands UNION ALL SELECT band_key, text_id FROM family_bands_new)"
                     if staged else "family_bands")
        row = conn.execute("SELECT value FROM meta WHERE key='incidents_bands_written'").fetchone()
        mark = int(row[0]) if row is not None else 0 if _bands_written_at_mark(conn) else None
        due = "t.signature IS NOT NULL" + (f" AND t.id <= {mark}" if mark is not None else "")
        for tid, expected, bands in conn.execute(
            f"SELECT t.id, CASE WHEN {due} THEN {_BANDS} ELSE 0 END AS expected, coalesce(b.n, 0) FROM family_texts t"
            f" LEFT JOIN (SELECT text_id, count(*) AS n FROM {bands_sql} GROUP BY text_id) b ON b.text_id = t.id"
            f" WHERE coalesce(b.n, 0) <> expected"
        ):
            problem("incidents", "family_bands", tid, None, f"family text has {bands} band key(s), not {expected}")
        for (tid,) in conn.execute(
            f"SELECT DISTINCT b.text_id FROM {bands_sql} b LEFT JOIN family_texts t ON t.id = b.text_id WHERE t.id IS NULL"
        ):
            problem("incidents", "family_bands", tid, None, "band keys of a family text that is not in the archive")
    n = conn.execute("SELECT count(*) FROM incidents WHERE merged_into IS NULL AND messages > 0").fetchone()[0]
    c = conn.execute("SELECT count(*) FROM incident_corrections").fetchone()[0]
    report.notes.append(f"{n} incident(s), {c} analyst correction(s) checked")


def _key(conn: sqlite3.Connection, message_rowid: int) -> str | None:
    row = conn.execute(
        "SELECT platform || ':' || channel_id || ':' || message_id FROM messages WHERE id=?", (message_rowid,)
    ).fetchone()
    return row[0] if row else None


def _check_manifest(
    manifest: dict[str, Any], n_chain: int, pin_link: str | None, report: VerifyReport, problem: Callable[..., None]
) -> None:
    length, head = manifest["chain_length"], manifest["chain_head"]
    if n_chain < length:
        problem("removed", "manifest", None, None, f"the chain has {n_chain} records, the manifest pinned {length}")
    elif pin_link != head:
        problem("altered", "manifest", None, None, f"chain record {length} is not the manifest's head {head[:16]}…")
    else:
        report.notes.append(f"chain head at record {length} matches the manifest")
    name, digest = manifest.get("file"), manifest.get("file_sha256")
    if name and digest:
        path = Path(name)
        if not path.is_absolute():
            path = Path(manifest.get("_dir", ".")) / path
        if not path.exists():
            report.notes.append(f"exported file {path} not found: its hash was not checked")
        else:
            h = hashlib.sha256()
            with path.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            if h.hexdigest() != digest:
                problem("altered", "export", None, None, f"{path} does not match the manifest's file_sha256")
            else:
                report.notes.append(f"exported file {path.name} matches the manifest")
