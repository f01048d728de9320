"""Configs for the bus tests: a files source, rules, a file alert destination, and ``bus:``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from daemon_helpers import write_config


def write_bus_config(tmp: Path, url: str, *, name: str = "c1", spool_max: int | str = "64MB",
                     claim_idle: str | float = "60s", maxlen: int = 1_000_000, inputs: str | None = None,
                     poll: float = 0.05) -> Path:
    """The single-process test config plus ``bus:`` (state and spool under tmp/<name>)."""
    path = write_config(tmp, None, None, poll=poll)
    cfg: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    if inputs is not None:
        cfg["sources"]["files"][0]["path"] = inputs
    cfg["bus"] = {
        "url": url, "stream": "cw-test", "group": "archivers", "name": name, "maxlen": maxlen,
        "claim_idle": claim_idle, "state": str(tmp / name / "state.db"),
        "spool": {"path": str(tmp / name / "spool"), "max_bytes": spool_max},
    }
    out = tmp / f"{name}.yaml"
    out.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return out
