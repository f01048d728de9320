"""SQLite archive (see :mod:`monitor.archive.store`)."""

from .store import Archive, ArchiveOpenError, StoreOutcome, StoreResult, now_iso, utcnow

__all__ = ["Archive", "StoreOutcome", "StoreResult", "now_iso", "utcnow"]
