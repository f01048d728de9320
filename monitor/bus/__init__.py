"""Past one process: collectors publish events to a Redis stream, archivers consume them.

``claimwatch run --role collector`` runs the sources only and publishes every message, edit
and deletion (:mod:`.codec`) with ``XADD`` (:mod:`.publisher`); while Redis cannot be
reached it appends to a bounded on-disk spool (:mod:`.spool`) and drains it in order later.
``claimwatch run --role archiver`` reads the stream with a consumer group
(:mod:`.consumer`), stores, matches and queues alerts in one SQLite transaction and only
then acknowledges. ``--role all`` (the default) is the single process, without Redis.
"""

from __future__ import annotations

ROLES = ("all", "collector", "archiver")
