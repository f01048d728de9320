"""Incidents: one timeline per real-world event (docs/incidents.md).

* :mod:`.gazetteer` - places named in a text (cities and countries, EN/AR/FA);
* :mod:`.families` - near-duplicate texts (fingerprints, MinHash/LSH);
* :mod:`.assign` - incremental assignment, called by the archive as hits are stored;
* :mod:`.corrections` - merge, detach, rebuild;
* :mod:`.query` - listing, timeline, Markdown.
"""

from __future__ import annotations

from typing import Any


class LazyTracker:
    """The archive's incident tracker, made when the first hit is stored: a process that stores
    no hit never imports numpy nor reads the gazetteer. Everything else is the
    :class:`~.assign.IncidentTracker`'s."""

    def __init__(self, cfg: Any = None) -> None:
        self._cfg = cfg
        self._tracker: Any = None

    @property
    def tracker(self) -> Any:
        if self._tracker is None:
            from .assign import IncidentTracker, Settings

            self._tracker = IncidentTracker(Settings.from_config(self._cfg))
        return self._tracker

    def on_hits(self, *args: Any, **kw: Any) -> Any:
        return self.tracker.on_hits(*args, **kw)

    def flush(self, conn: Any) -> None:  # called before every commit: nothing to do until a hit
        if self._tracker is not None:
            self._tracker.flush(conn)

    def discard(self) -> None:
        if self._tracker is not None:
            self._tracker.discard()

    def prepare_texts(self, texts: Any) -> Any:
        """The texts' preparation for assignment (:func:`.assign.prepare_texts`), in a process
        forked from the writer: with the tracker's gazetteer, or the kept one it will load."""
        if self._tracker is not None:
            return self._tracker.prepare_texts(texts)
        from .assign import prepare_texts

        return prepare_texts(texts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tracker, name)


def configure(archive: Any, cfg: Any = None) -> LazyTracker | None:
    """Give a writable archive the incident settings of ``cfg`` (``incidents:``); switched off
    with ``incidents.enabled: false``."""
    inc = getattr(cfg, "incidents", None)
    if inc is not None and not inc.enabled:
        archive.incidents = None
        return None
    tracker = LazyTracker(cfg)
    archive.incidents = tracker
    return tracker


def __getattr__(name: str) -> Any:
    if name in ("IncidentTracker", "Settings"):
        from . import assign

        return getattr(assign, name)
    raise AttributeError(name)


__all__ = ["IncidentTracker", "LazyTracker", "Settings", "configure"]
