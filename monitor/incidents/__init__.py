"""Incidents: one timeline per real-world event (docs/incidents.md).

* :mod:`.gazetteer` - places named in a text (cities and countries, EN/AR/FA);
* :mod:`.families` - near-duplicate texts (fingerprints, MinHash/LSH);
* :mod:`.assign` - incremental assignment, called by the archive as hits are stored;
* :mod:`.corrections` - merge, detach, rebuild;
* :mod:`.query` - listing, timeline, Markdown.
"""

from __future__ import annotations

from typing import Any

from .assign import IncidentTracker, Settings


def configure(archive: Any, cfg: Any = None) -> IncidentTracker | None:
    """Give a writable archive the incident settings of ``cfg`` (``incidents:``); switched off
    with ``incidents.enabled: false``."""
    inc = getattr(cfg, "incidents", None)
    if inc is not None and not inc.enabled:
        archive.incidents = None
        return None
    tracker = IncidentTracker(Settings.from_config(cfg))
    archive.incidents = tracker
    return tracker


__all__ = ["IncidentTracker", "Settings", "configure"]
