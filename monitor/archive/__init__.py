"""SQLite archive (see :mod:`monitor.archive.store`)."""

from ..timefmt import now_iso, utcnow
from .store import Archive, ArchiveOpenError, StoreOutcome, StoreResult

__all__ = ["Archive", "ArchiveOpenError", "StoreOutcome", "StoreResult", "now_iso", "utcnow"]
