"""The archiver's preparer processes: decode, match and prepare rows beside the writer.

One archiver process does everything per event: decode the entry (JSON -> ``Message``),
match it, prepare its archive row (raw JSON, hashes, the search column), then store it. All
of that shared one GIL, so the archiver stopped at ~5,000 events/s whatever the machine had
free (docs/performance.md, "Bus"). With ``bus.preparers: N`` (default 1) the first three run
in N worker processes (spawned; each loads the same rule set, from the rules cache): the
archiver process sends each entry's event array (the bytes read from the stream) and gets
back per event its prepared row (:func:`monitor.archive.rows.prepare_row`) and its hits.
The archiver process then only stores them (:meth:`monitor.archive.store.Archive.
store_prepared`), in the entries' order, and acknowledges as before.

Nothing changes in what is stored or alerted:

* a row is exactly what the writer would have prepared from the same ``Message``;
* hits count only when the worker matched with the rule set the archiver has at the moment
  the event reaches its matcher stage (compared by fingerprint, as ``status`` shows it):
  each task carries the archiver's fingerprint, a worker whose set differs loads the rules
  again (a reload), and an event matched with another set (a reload in between) is matched
  again in the archiver, from its own decoding of the entry;
* deletions, events that are not valid and whatever the worker could not prepare are decoded
  in the archiver as before (:func:`.codec.decode_entry`), so they are set aside, logged and
  stored the same way;
* if a worker dies, the entries it had are decoded and matched in the archiver (and the pool
  is started again).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

from ..archive.rows import CHANNEL_ID, DATE, MESSAGE_ID, PLATFORM, TEXT, Row, prepare_row
from ..model import Hit, Message, to_utc
from . import codec

# -- in the worker process ------------------------------------------------------
_rules: dict[str, Any] = {}  # the worker's state: args for loading, matcher, fingerprint


def fingerprint(matcher: Any) -> str:
    """The rule set's fingerprint (as :class:`monitor.daemon.rules_state.RulesState` computes it)."""
    keys = [r.id + getattr(r, "hash", "") for r in matcher.rules]
    if getattr(matcher, "classifier", None) is not None:  # its id and model digest (a retrained model is a new set)
        keys.append(matcher.classifier.key)
    return hashlib.sha256("".join(sorted(keys)).encode()).hexdigest()


def init_worker(rules_path: str, known: set[str], defaults: tuple[str, ...], archiver_pid: int) -> None:
    """Pool initializer: load the rule set (from the rules cache when the files are unchanged)."""
    _exit_with_parent(archiver_pid)
    _rules.update(path=rules_path, known=known, defaults=defaults)
    _load()


def _exit_with_parent(parent: int) -> None:
    """End this worker when the archiver (``parent``) is gone (SIGKILLed, say): Linux's
    parent-death signal, and a thread that checks the parent every second. (The pool's
    pipes give no end-of-file: the worker holds both ends of its task queue.)"""
    import os
    import signal
    import threading
    import time

    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # not Linux
        pass
    if os.getppid() != parent:  # the archiver died while this worker was starting
        os._exit(0)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _load() -> None:
    from ..logs import configure_logging
    from ..rules.cache import load_matcher

    configure_logging("WARNING")
    matcher = load_matcher([_rules["path"]], known_destinations=_rules["known"],
                           default_destinations=_rules["defaults"]).prepare()
    _rules["matcher"] = matcher
    _rules["fingerprint"] = fingerprint(matcher)


def prepare_entries(bodies: Sequence[bytes | None], wanted: str) -> tuple[str, list[list[Any]]]:
    """Per entry body (an entry's ``b`` field), per event: (row, hits, the Message if it has
    hits else None), or None where the
    archiver must decode the event itself (a deletion, an event that is not valid, an entry
    of another format). Returns the fingerprint of the rule set that matched."""
    if _rules.get("fingerprint") != wanted:
        try:
            _load()  # the archiver reloaded its rules
        except Exception:  # keep the old set; the archiver matches these events itself
            pass
    matcher = _rules["matcher"]
    out: list[list[Any]] = []
    msgs: list[tuple[list[Any], int, Message]] = []
    # One step at a time over the whole task (decode all, match all, prepare all): ~25 %
    # less CPU than the three steps per event, which keep evicting each other's data.
    for body in bodies:
        items: list[Any] = []
        out.append(items)
        if body is None:
            continue
        try:
            events = codec.loads(body)
        except ValueError:
            continue
        if not isinstance(events, list):
            continue
        for d in events:
            items.append(None)
            if isinstance(d, dict) and d.get("type") == "message":
                try:
                    msgs.append((items, len(items) - 1, codec.event_from_dict(d)))
                except Exception:  # not valid: the archiver decides as before
                    pass
    hits: list[Any] = []
    for _items, _i, msg in msgs:
        try:
            hits.append(matcher.match(msg))
        except Exception:  # matching failed: the archiver matches it (and logs the error)
            hits.append(None)
    for (items, i, msg), found in zip(msgs, hits):
        if found is not None:
            try:  # the Message too when it has hits (the outbox policy reads it; ~1 % of events)
                items[i] = (prepare_row(msg), found, msg if found else None, None)
            except Exception:
                pass
    _prepare_incident_texts(msgs, hits)
    return _rules["fingerprint"], out


def _prepare_incident_texts(msgs: list[tuple[list[Any], int, Message]], hits: list[Any]) -> None:
    """The texts of the messages with hits, prepared for incident assignment (words, places,
    signatures: :func:`monitor.incidents.assign.prepare_texts`, with the kept gazetteer) and
    sent with their rows: the archiver's writer is given them (:meth:`Prepared.incident`)."""
    texts = [(items, i, items[i][0][TEXT] or "") for (items, i, _m), found in zip(msgs, hits)
             if found and items[i] is not None]
    if not texts:
        return
    try:
        from ..incidents.assign import prepare_texts

        distinct = list(dict.fromkeys(t for _items, _i, t in texts))
        got = dict(zip(distinct, prepare_texts(distinct)))
    except Exception:  # the writer prepares them itself, as before
        return
    for items, i, text in texts:
        items[i] = (*items[i][:3], got[text])


# -- in the archiver --------------------------------------------------------------
_current: list[Any] = [None, ""]  # the archiver's matcher and its fingerprint (computed once per set)

@dataclass(slots=True, eq=False)
class Prepared:
    """A message event prepared by a worker: its row and hits (matched with ``fingerprint``).

    ``decoded()`` gives the event's ``Message`` (decoded here from the entry, once, only when
    needed: for the outbox policy of a hit, or to match it again)."""

    row: Row
    hits: list[Hit]
    message: Message | None  # sent along by the worker when it has hits
    fingerprint: str
    entry: "EntryEvents"
    index: int
    incident: Any = None  # its text prepared for incident assignment when it has hits (or None)

    def hits_for(self, matcher: Any) -> list[Hit]:
        """The hits under ``matcher`` (the archiver's set now): the worker's when it matched
        with the same set, else matched here."""
        if matcher is not _current[0]:
            _current[:] = [matcher, fingerprint(matcher)]
        if _current[1] == self.fingerprint:
            return self.hits
        return matcher.match(self.decoded())

    @property
    def key_tuple(self) -> tuple[str, str, str]:
        row = self.row
        return (row[PLATFORM], row[CHANNEL_ID], row[MESSAGE_ID])

    @property
    def date(self) -> datetime | None:  # for the daemon's status (the latest event's date)
        return to_utc(self.row[DATE])

    def decoded(self) -> Message:
        if self.message is not None:
            return self.message
        event = self.entry.event(self.index)
        if not isinstance(event, Message):  # cannot happen: the worker built a Message from it
            raise codec.BusRecordError(f"event {self.index} is not a message here")
        return event


class EntryEvents:
    """An entry's fields and, once asked for, its events as :func:`.codec.decode_entry` reads them."""

    __slots__ = ("fields", "_events", "_items")

    def __init__(self, fields: Any) -> None:
        self.fields = fields
        self._events: list[Any] | None = None
        self._items: list[Any] | None = None

    def event(self, index: int) -> Any:
        """One event of the entry (decoding only that one)."""
        if self._events is not None:
            return self._events[index]
        if self._items is None:
            body = entry_body(self.fields)
            if body is None:
                return self.events()[index]
            self._items = codec.loads(body)
        return codec.event_from_dict(dict(self._items[index]))

    def events(self) -> list[Any]:
        if self._events is None:
            self._events = codec.decode_entry(self.fields)[0]
        return self._events


def entry_body(fields: Any) -> bytes | None:
    """The ``b`` field's bytes (None for an entry of the one-event format)."""
    body = fields.get(b"b")
    if body is None:
        body = fields.get("b")
    if isinstance(body, str):
        body = body.encode("utf-8")
    return body
