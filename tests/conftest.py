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


@pytest.fixture(scope="session", autouse=True)
def _gazetteer_cache(tmp_path_factory: pytest.TempPathFactory):
    """The compiled gazetteer (monitor.incidents.gazetteer) is cached in a folder of the test
    session, not in the user's ~/.cache (CLI subprocesses inherit it)."""
    import os

    old = os.environ.get("CLAIMWATCH_CACHE_DIR")
    os.environ["CLAIMWATCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("CLAIMWATCH_CACHE_DIR", None)
    else:
        os.environ["CLAIMWATCH_CACHE_DIR"] = old
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


@pytest.fixture
def redis_server(tmp_path: Path):
    """A real redis-server on a free loopback port (see tests/redis_helpers.py)."""
    from redis_helpers import RedisServer, require_redis_server

    server = RedisServer(require_redis_server(), tmp_path / "redis")
    server.start()
    yield server
    server.stop()
