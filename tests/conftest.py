"""Shared fixtures: real SQLite archives in tmp dirs, sample paths."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from monitor.archive import Archive

# compiled rule sets are cached on disk (monitor/rules/cache.py): never in the user's cache
os.environ["CLAIMWATCH_CACHE_DIR"] = tempfile.mkdtemp(prefix="claimwatch-test-cache-")

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
RULES = ROOT / "rules"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "archive.db"


@pytest.fixture
def archive(db_path: Path):
    a = Archive.open(db_path)
    yield a
    a.close()


@pytest.fixture(autouse=True)
def _reset_logging():
    """CLI commands configure structlog globally (level filter, output); undo it after
    each test so one test's configuration never hides another's log lines."""
    yield
    import structlog

    structlog.reset_defaults()
