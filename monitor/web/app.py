"""Build and run the Datasette app over an archive (read-only)."""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

DEFAULT_SETTINGS = {
    "sql_time_limit_ms": 5000,  # the per-day aggregates scan the whole archive
    "default_page_size": 50,
    "allow_download": False,
    "suggest_facets": False,
}
_PLACEHOLDER = "archive"


def load_metadata(db_name: str) -> dict[str, Any]:
    """The packaged metadata.yml with its database section keyed by ``db_name``."""
    text = resources.files("monitor.web").joinpath("metadata.yml").read_text(encoding="utf-8")
    meta = yaml.safe_load(text)
    dbs = meta.get("databases", {})
    if _PLACEHOLDER in dbs and db_name != _PLACEHOLDER:
        dbs[db_name] = dbs.pop(_PLACEHOLDER)
    return meta


def _register_plugin() -> None:
    from datasette.plugins import pm

    from . import plugin

    if not pm.is_registered(plugin):
        pm.register(plugin, name="claimwatch")


def build_datasette(db_path: str | Path, *, settings: dict[str, Any] | None = None):
    """A Datasette instance serving ``db_path`` read-only (mode=ro connections, query_only)."""
    from datasette.app import Datasette

    path = Path(db_path)
    if not path.exists():
        raise FileNotFoundError(f"archive not found: {path}")
    _register_plugin()
    merged = copy.deepcopy(DEFAULT_SETTINGS)
    merged.update(settings or {})
    return Datasette(files=[str(path)], metadata=load_metadata(path.stem), settings=merged)


def serve(db_path: str | Path, *, host: str = "127.0.0.1", port: int = 8001, log_level: str = "warning") -> None:
    """Serve until interrupted (uvicorn)."""
    import uvicorn

    ds = build_datasette(db_path)
    uvicorn.run(ds.app(), host=host, port=port, log_level=log_level, lifespan="on")
