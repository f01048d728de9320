"""The long-running service: ``claimwatch run``."""

from .pipeline import Pipeline
from .service import Daemon, build_sources

__all__ = ["Daemon", "Pipeline", "build_sources"]
