"""Archive schema and migrations (versioned in the ``meta`` table).

Each migration is a function applied once, in order, inside a transaction. Never edit an
existing migration: add a new one.
"""

from __future__ import annotations

import sqlite3
from typing import Callable

Migration = Callable[[sqlite3.Connection], None]


def _m1_initial(conn: sqlite3.Connection) -> None:
    conn.executescript(
        """
        CREATE TABLE IF NOT EXISTS channels (
            platform TEXT NOT NULL,
            channel_id TEXT NOT NULL,
            username TEXT,
            title TEXT,
            kind TEXT,
            access_hash TEXT,
            resolved_from TEXT,
            resolved_at TEXT,
            updated_at TEXT,
            PRIMARY KEY (platform, channel_id)
        );
        CREATE INDEX IF NOT EXISTS idx_channels_username ON channels(platform, username);
        CREATE INDEX IF NOT EXISTS idx_channels_resolved_from ON channels(platform, resolved_from);

        CREATE TABLE IF NOT EXISTS messages (
            id INTEGER PRIMARY KEY,
            platform TEXT NOT NULL,
            channel_id TEXT NOT NULL,
            message_id TEXT NOT NULL,
            channel TEXT,
            channel_title TEXT,
            date TEXT NOT NULL,
            edit_date TEXT,
            author TEXT,
            text TEXT NOT NULL DEFAULT '',
            lang TEXT,
            url TEXT,
            reply_to TEXT,
            forwarded_from TEXT,
            media TEXT,
            grouped_id TEXT,
            extra TEXT,
            raw TEXT NOT NULL,
            raw_sha256 TEXT NOT NULL,
            search_text TEXT NOT NULL DEFAULT '',
            first_seen_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            deleted_at TEXT,
            UNIQUE (platform, channel_id, message_id)
        );
        CREATE INDEX IF NOT EXISTS idx_messages_date ON messages(date);
        CREATE INDEX IF NOT EXISTS idx_messages_channel ON messages(platform, channel_id, date);

        CREATE TABLE IF NOT EXISTS versions (
            id INTEGER PRIMARY KEY,
            message_rowid INTEGER NOT NULL REFERENCES messages(id),
            text TEXT NOT NULL,
            text_sha256 TEXT NOT NULL,
            edit_date TEXT,
            raw TEXT NOT NULL,
            raw_sha256 TEXT NOT NULL,
            record_sha256 TEXT NOT NULL,
            seen_at TEXT NOT NULL,
            UNIQUE (message_rowid, text_sha256)
        );

        -- Hash chain over versions in insertion order (integrity, issue 07).
        CREATE TABLE IF NOT EXISTS chain (
            seq INTEGER PRIMARY KEY,
            version_id INTEGER NOT NULL,
            msg_key TEXT NOT NULL,
            record_sha256 TEXT NOT NULL,
            link_sha256 TEXT NOT NULL
        );

        CREATE TABLE IF NOT EXISTS hits (
            id INTEGER PRIMARY KEY,
            message_rowid INTEGER NOT NULL REFERENCES messages(id),
            rule_id TEXT NOT NULL,
            rule_hash TEXT NOT NULL,
            level TEXT NOT NULL,
            title TEXT,
            tags TEXT,
            matches TEXT NOT NULL,
            text_sha256 TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (message_rowid, rule_id, rule_hash, text_sha256)
        );
        CREATE INDEX IF NOT EXISTS idx_hits_rule ON hits(rule_id, created_at);
        CREATE INDEX IF NOT EXISTS idx_hits_created ON hits(created_at);

        CREATE TABLE IF NOT EXISTS outbox (
            id INTEGER PRIMARY KEY,
            hit_id INTEGER REFERENCES hits(id),
            destination TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT 'alert',
            payload TEXT,
            status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            last_error TEXT,
            created_at TEXT NOT NULL,
            sent_at TEXT,
            dedup_key TEXT UNIQUE
        );
        CREATE INDEX IF NOT EXISTS idx_outbox_status ON outbox(status, next_attempt_at);

        CREATE TABLE IF NOT EXISTS checkpoints (
            source TEXT NOT NULL,
            channel TEXT NOT NULL,
            value TEXT,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (source, channel)
        );

        CREATE TABLE IF NOT EXISTS source_status (
            source TEXT PRIMARY KEY,
            last_message_at TEXT,
            last_poll_at TEXT,
            errors INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            info TEXT,
            updated_at TEXT NOT NULL
        );

        CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(
            search_text, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER IF NOT EXISTS messages_ai AFTER INSERT ON messages BEGIN
            INSERT INTO messages_fts(rowid, search_text) VALUES (new.id, new.search_text);
        END;
        CREATE TRIGGER IF NOT EXISTS messages_ad AFTER DELETE ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text);
        END;
        CREATE TRIGGER IF NOT EXISTS messages_au AFTER UPDATE OF search_text ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text);
            INSERT INTO messages_fts(rowid, search_text) VALUES (new.id, new.search_text);
        END;
        """
    )


def _m2_shared_version_raw(conn: sqlite3.Connection) -> None:
    """``versions.raw`` may be NULL: "the same record as ``messages.raw`` of my message".

    A new message's raw record was stored twice (message row and first version). From now
    on the version row leaves it NULL while the message row holds the same record
    (``raw_sha256`` equal); the archive copies it into the version row before the message
    row's raw is replaced. Existing duplicates are dropped here (rebuild of ``versions``
    with the same ids and constraints).
    """
    if not conn.in_transaction:
        conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        """
        CREATE TABLE versions_m2 (
            id INTEGER PRIMARY KEY,
            message_rowid INTEGER NOT NULL REFERENCES messages(id),
            text TEXT NOT NULL,
            text_sha256 TEXT NOT NULL,
            edit_date TEXT,
            raw TEXT,
            raw_sha256 TEXT NOT NULL,
            record_sha256 TEXT NOT NULL,
            seen_at TEXT NOT NULL,
            UNIQUE (message_rowid, text_sha256)
        )
        """
    )
    conn.execute(
        "INSERT INTO versions_m2(id, message_rowid, text, text_sha256, edit_date, raw, raw_sha256,"
        " record_sha256, seen_at)"
        " SELECT v.id, v.message_rowid, v.text, v.text_sha256, v.edit_date,"
        " CASE WHEN v.raw_sha256 = m.raw_sha256 AND v.raw = m.raw THEN NULL ELSE v.raw END,"
        " v.raw_sha256, v.record_sha256, v.seen_at"
        " FROM versions v LEFT JOIN messages m ON m.id = v.message_rowid ORDER BY v.id"
    )
    conn.execute("DROP TABLE versions")
    conn.execute("ALTER TABLE versions_m2 RENAME TO versions")


def _m3_hit_kind_actors(conn: sqlite3.Connection) -> None:
    """``hits.kind`` (the rule's kind: claim | statement | denial | report | watch; existing
    hits are ``watch``) and ``hits.actors`` (JSON list of actor ids, NULL when none)."""
    conn.execute("ALTER TABLE hits ADD COLUMN kind TEXT NOT NULL DEFAULT 'watch'")
    conn.execute("ALTER TABLE hits ADD COLUMN actors TEXT")
    conn.execute("CREATE INDEX IF NOT EXISTS idx_hits_kind ON hits(kind, created_at)")


def _m5_incidents(conn: sqlite3.Connection) -> None:
    """Incidents (issue 10): one timeline per real-world event, kept up to date as hits are
    stored (:mod:`monitor.incidents`). ``incident_messages`` holds each message with hits once;
    ``families`` group copies of one text (first-seen message, members); ``family_texts`` holds
    the exact-copy keys and MinHash signatures of those texts (their LSH band keys: ``family_bands``,
    migration 6);
    ``incident_facets`` the places and actors an incident names (with mention counts);
    ``incident_threads`` the Slack ``ts`` / email ``Message-ID`` of each incident's first
    alert per destination (later alerts continue that thread; ``idx_outbox_hit`` finds the
    alerts of a repost family's other messages);
    ``incident_corrections`` the analysts' merges and detaches (keyed by message keys, so they
    survive a rebuild)."""
    conn.executescript(
        """
        CREATE TABLE IF NOT EXISTS incidents (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL DEFAULT '',
            start_at TEXT NOT NULL,
            end_at TEXT NOT NULL,
            first_message_rowid INTEGER REFERENCES messages(id),
            places TEXT NOT NULL DEFAULT '[]',
            actors TEXT NOT NULL DEFAULT '[]',
            counts TEXT NOT NULL DEFAULT '{}',
            messages INTEGER NOT NULL DEFAULT 0,
            channels INTEGER NOT NULL DEFAULT 0,
            merged_into INTEGER REFERENCES incidents(id),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS idx_incidents_end ON incidents(end_at);
        CREATE INDEX IF NOT EXISTS idx_incidents_start ON incidents(start_at);

        CREATE TABLE IF NOT EXISTS families (
            id INTEGER PRIMARY KEY,
            incident_id INTEGER NOT NULL REFERENCES incidents(id),
            first_message_rowid INTEGER NOT NULL REFERENCES messages(id),
            first_date TEXT NOT NULL,
            members INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX IF NOT EXISTS idx_families_incident ON families(incident_id);

        CREATE TABLE IF NOT EXISTS incident_messages (
            message_rowid INTEGER PRIMARY KEY REFERENCES messages(id),
            incident_id INTEGER NOT NULL REFERENCES incidents(id),
            family_id INTEGER REFERENCES families(id),
            date TEXT NOT NULL,
            platform TEXT NOT NULL,
            channel_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            rules TEXT NOT NULL DEFAULT '[]',
            actors TEXT NOT NULL DEFAULT '[]',
            places TEXT NOT NULL DEFAULT '[]',
            how TEXT NOT NULL,
            origin TEXT,
            added_at TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS idx_incident_messages_incident ON incident_messages(incident_id, date);
        CREATE INDEX IF NOT EXISTS idx_incident_messages_channel ON incident_messages(incident_id, platform, channel_id);
        CREATE INDEX IF NOT EXISTS idx_incident_messages_family ON incident_messages(family_id, date);

        CREATE TABLE IF NOT EXISTS family_texts (
            id INTEGER PRIMARY KEY,
            fingerprint TEXT NOT NULL UNIQUE,
            family_id INTEGER NOT NULL REFERENCES families(id),
            signature BLOB,
            message_rowid INTEGER REFERENCES messages(id)
        );
        CREATE INDEX IF NOT EXISTS idx_family_texts_family ON family_texts(family_id);

        CREATE TABLE IF NOT EXISTS incident_facets (
            incident_id INTEGER NOT NULL REFERENCES incidents(id),
            facet TEXT NOT NULL,
            value TEXT NOT NULL,
            mentions INTEGER NOT NULL DEFAULT 0,
            located INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (incident_id, facet, value)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS idx_incident_facets_value ON incident_facets(facet, value, incident_id);

        CREATE INDEX IF NOT EXISTS idx_outbox_hit ON outbox(hit_id);
        CREATE TABLE IF NOT EXISTS incident_threads (
            incident_id INTEGER NOT NULL REFERENCES incidents(id),
            destination TEXT NOT NULL,
            ref TEXT NOT NULL,
            outbox_id INTEGER,
            created_at TEXT NOT NULL,
            PRIMARY KEY (incident_id, destination)
        );

        CREATE TABLE IF NOT EXISTS incident_corrections (
            id INTEGER PRIMARY KEY,
            action TEXT NOT NULL,
            message_key TEXT NOT NULL,
            other_key TEXT NOT NULL,
            created_at TEXT NOT NULL,
            note TEXT
        );
        """
    )


def _m6_family_bands(conn: sqlite3.Connection) -> None:
    """``family_bands``: the LSH band keys of every family text with a MinHash signature (16
    rows a text: ``band_key`` the band's two values and number mixed into a signed 64-bit int,
    :meth:`monitor.incidents.families.Signature.band_keys`). A writing process keeps the band
    index of the texts of its recent incidents in memory and looks the others up here (before,
    it kept ~200 bytes a text in memory for every evicted text). Filled from the stored
    signatures of an existing archive."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS family_bands ("
        " band_key INTEGER NOT NULL, text_id INTEGER NOT NULL REFERENCES family_texts(id),"
        " PRIMARY KEY (band_key, text_id)) WITHOUT ROWID"
    )
    if conn.execute("SELECT 1 FROM family_texts WHERE signature IS NOT NULL LIMIT 1").fetchone() is None:
        return
    from ..incidents.families import band_key_matrix  # numpy: only when there are signatures

    last = 0
    while True:
        rows = conn.execute("SELECT id, signature FROM family_texts WHERE signature IS NOT NULL AND id > ?"
                            " ORDER BY id LIMIT 10000", (last,)).fetchall()
        if not rows:
            break
        keys = band_key_matrix([blob for _id, blob in rows]).tolist()
        conn.executemany("INSERT OR IGNORE INTO family_bands(band_key, text_id) VALUES (?, ?)",
                         sorted((k, tid) for (tid, _b), ks in zip(rows, keys) for k in ks))
        last = rows[-1][0]


def _m7_family_bands_new(conn: sqlite3.Connection) -> None:
    """``family_bands_new``: the band keys of the newest family texts, as ``family_bands``
    holds them, moved there in bulk (:meth:`monitor.incidents.assign.IncidentTracker._write_bands`).
    A batch's random band keys written straight into the large ``family_bands`` changed nearly
    every page of it, so the whole table went through the WAL at each commit; into this small
    table they change few pages, and the move writes each page of ``family_bands`` once for
    many batches. A text's band keys are in one of the two tables."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS family_bands_new ("
        " band_key INTEGER NOT NULL, text_id INTEGER NOT NULL REFERENCES family_texts(id),"
        " PRIMARY KEY (band_key, text_id)) WITHOUT ROWID"
    )


def _m8_family_bands_once(conn: sqlite3.Connection) -> None:
    """The newest texts' band keys are no longer staged in ``family_bands_new`` (every band
    row was written twice: there, then moved): a writer keeps them in memory and writes them
    to ``family_bands`` once, in bulk, with ``meta.incidents_bands_written``, the last text id
    whose keys are there (the keys of the texts after it are computed from their stored
    signatures; :meth:`monitor.incidents.assign.IncidentTracker._write_bands`). The staged
    rows move to ``family_bands``; every text's keys are then there."""
    conn.execute("INSERT OR IGNORE INTO family_bands(band_key, text_id) SELECT band_key, text_id FROM family_bands_new"
                 " ORDER BY band_key, text_id")
    conn.execute("DROP TABLE family_bands_new")
    conn.execute("INSERT INTO meta(key, value) SELECT 'incidents_bands_written', coalesce(max(id), 0) FROM family_texts"
                 " WHERE true ON CONFLICT(key) DO UPDATE SET value=excluded.value")


def _m9_short_fingerprints(conn: sqlite3.Connection) -> None:
    """The exact-copy keys of ``family_texts`` (``fingerprint``, unique and indexed) are the first
    16 hex characters of the SHA-256 of a text's words (64 bits), no longer 32
    (:func:`monitor.incidents.families.fingerprint`): the keys are random, so each commit of a
    writer's new texts changed nearly every page of their index (a third of the pages its
    commits wrote on the incident bench); at half the size it has half the pages. The stored
    keys are cut to 16; forward keys (``fwd:...``) stay. (A cut key that would collide with
    another, which 64 bits make unlikely, is left long: no new copy finds that text by it.)
    The index is rebuilt, packed."""
    conn.execute("UPDATE OR IGNORE family_texts SET fingerprint = substr(fingerprint, 1, 16)"
                 " WHERE length(fingerprint) > 16 AND fingerprint NOT LIKE 'fwd:%'")
    conn.execute("REINDEX family_texts")


def _m10_hit_score(conn: sqlite3.Connection) -> None:
    """``hits.score`` (REAL): a learned classifier's probability for its hit (``Hit.score``;
    rule ``classifier``, no matches, often no actors: docs/architecture.md, "Hits without
    terms"); NULL for a rule's hit, so every existing hit keeps NULL. Schema version 9.
    (Idempotent: an archive whose version was set back keeps its column.)"""
    if not any(row[1] == "score" for row in conn.execute("PRAGMA table_info(hits)")):
        conn.execute("ALTER TABLE hits ADD COLUMN score REAL")


MIGRATIONS: list[Migration] = [_m1_initial, _m2_shared_version_raw, _m3_hit_kind_actors, _m5_incidents, _m6_family_bands,
                               _m7_family_bands_new, _m8_family_bands_once, _m9_short_fingerprints, _m10_hit_score]
SCHEMA_VERSION = len(MIGRATIONS)


def current_version(conn: sqlite3.Connection) -> int:
    conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to SCHEMA_VERSION; returns the number of migrations applied."""
    version = current_version(conn)
    if version > SCHEMA_VERSION:
        raise RuntimeError(
            f"archive schema version {version} is newer than this claimwatch supports ({SCHEMA_VERSION})"
        )
    applied = 0
    for number in range(version + 1, SCHEMA_VERSION + 1):
        with conn:
            MIGRATIONS[number - 1](conn)
            conn.execute(
                "INSERT INTO meta(key, value) VALUES('schema_version', ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (str(number),),
            )
        applied += 1
    return applied
