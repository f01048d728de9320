"""The loaded rule set and its hot reload (SIGHUP or a change in the rules folder).

An invalid new rule set is reported (log and a notice to the default alert
destinations) and the previous rules keep matching.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..config import Config
from ..logs import get_logger
from ..rules import Matcher, RuleSetError, load_rules
from ..rules.loader import format_problems

log = get_logger("claimwatch.rules")


@dataclass
class RulesState:
    """Holds the current compiled matcher; ``reload()`` swaps it only when the new set is valid."""

    cfg: Config
    path: str
    matcher: Matcher | None = None
    loaded_at: str | None = None
    rule_count: int = 0
    fingerprint: str = ""
    last_error: str | None = None
    reloads: int = 0
    on_error: Callable[[str], None] | None = None
    _watch_task: asyncio.Task[None] | None = field(default=None, repr=False)

    def _known_destinations(self) -> set[str]:
        return self.cfg.destination_names()

    def load(self) -> None:
        """First load: raises RuleSetError (the daemon refuses to start)."""
        self._swap(self._build())

    def _build(self) -> tuple[Matcher, int, str]:
        ruleset = load_rules([self.path], known_destinations=self._known_destinations())
        matcher = Matcher(ruleset, default_destinations=tuple(self.cfg.alerts.default))
        fp = hashlib.sha256("".join(sorted(r.id + getattr(r, "hash", "") for r in ruleset.rules)).encode()).hexdigest()
        return matcher, len(ruleset.rules), fp

    def _swap(self, built: tuple[Matcher, int, str]) -> None:
        from ..archive import now_iso

        self.matcher, self.rule_count, self.fingerprint = built
        self.loaded_at = now_iso()
        self.last_error = None

    def reload(self) -> bool:
        """Load the rules again; keep the old set when the new one has errors."""
        try:
            built = self._build()
        except RuleSetError as exc:
            text = format_problems(exc.problems)
            self.last_error = text
            log.error("rules reload failed; keeping the previous rules", problems=text)
            if self.on_error is not None:
                self.on_error(text)
            return False
        except Exception as exc:  # unreadable folder etc.
            self.last_error = str(exc)
            log.error("rules reload failed; keeping the previous rules", error=str(exc))
            if self.on_error is not None:
                self.on_error(str(exc))
            return False
        self._swap(built)
        self.reloads += 1
        log.info("rules reloaded", rules=self.rule_count)
        return True

    def get(self) -> Matcher | None:
        return self.matcher

    async def watch(self, stop: asyncio.Event) -> None:
        """Reload when a file under the rules path changes (watchfiles)."""
        from watchfiles import awatch

        target = Path(self.path)
        if not target.exists():
            return
        async for _changes in awatch(target, stop_event=stop, debounce=300, recursive=True):
            self.reload()

    def info(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "rules": self.rule_count,
            "loaded_at": self.loaded_at,
            "fingerprint": self.fingerprint,
            "reloads": self.reloads,
            "last_error": self.last_error,
        }
