"""Build and run the Datasette app over an archive (read-only)."""

from __future__ import annotations

import copy
import os
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


PASSWORD_ENV = "CLAIMWATCH_WEB_PASSWORD_HASH"
ACCOUNT = "analyst"


def build_datasette(
    db_path: str | Path,
    *,
    settings: dict[str, Any] | None = None,
    allow_sql: bool = False,
    titles: dict[str, str] | None = None,
    media_dir: str | Path | None = None,
    password_hash: str | None = None,
):
    """A Datasette instance serving ``db_path`` read-only (mode=ro connections, query_only).

    Arbitrary SQL (``?sql=``, the query editor) is refused unless ``allow_sql``; canned
    queries and claimwatch's pages work either way. With ``password_hash`` (from
    ``claimwatch serve --hash-password``), every page but ``/-/login`` and ``/-/healthz``
    needs the ``analyst`` account (datasette-auth-passwords)."""
    from datasette.app import Datasette

    path = Path(db_path)
    if not path.exists():
        raise FileNotFoundError(f"archive not found: {path}")
    _register_plugin()
    merged = copy.deepcopy(DEFAULT_SETTINGS)
    merged.update(settings or {})
    meta = load_metadata(path.stem)
    if not allow_sql:
        meta["allow_sql"] = False
    if password_hash:
        meta["allow"] = {"id": ACCOUNT}
        meta.setdefault("plugins", {})["datasette-auth-passwords"] = {f"{ACCOUNT}_password_hash": password_hash}
    template_dir = str(resources.files("monitor.web").joinpath("templates"))
    ds = Datasette(files=[str(path)], metadata=meta, settings=merged, template_dir=template_dir,
                   secret=os.environ.get("DATASETTE_SECRET") or None)
    ds.claimwatch = {"titles": dict(titles or {}), "media_dir": str(media_dir) if media_dir else None,
                     "allow_sql": allow_sql, "password": bool(password_hash)}
    return ds


def _quiet_client_errors() -> None:
    """Datasette prints every exception a request raises as a rich traceback with the local
    variables of each frame (the request's scope and headers, cookies included) when rich is
    installed, also a 404 for an unknown message, a search syntax error (400) or a refused
    ``?sql=`` (403): some 60 lines per request in the server's log. Without rich it prints a
    plain traceback for server errors (5xx) only, which is what this keeps."""
    import datasette.handle_exception as handler

    handler.rich = None


def serve(db_path: str | Path, *, host: str = "127.0.0.1", port: int = 8001, log_level: str = "warning",
          **options: Any) -> None:
    """Serve until interrupted (uvicorn)."""
    import uvicorn

    ds = build_datasette(db_path, **options)
    _quiet_client_errors()  # after datasette.app: imported first, the module would register no handler
    uvicorn.run(ds.app(), host=host, port=port, log_level=log_level, lifespan="on")
