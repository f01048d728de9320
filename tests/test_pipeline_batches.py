"""The daemon's writer: a backlog is written in bigger transactions, every message kept."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from monitor.archive import Archive
from monitor.daemon.pipeline import DEEP_BATCH_FACTOR, Pipeline
from monitor.model import Message
from monitor.query.verify import verify
from monitor.sources.base import Envelope

T = datetime(2024, 1, 4, tzinfo=timezone.utc)


async def test_backlog_is_written_in_bigger_batches_with_checkpoints(db_path: Path) -> None:
    with Archive.open(db_path) as archive:
        commits: list[int] = []
        pipe = Pipeline(archive, lambda: None, batch_size=100, batch_wait=0.001,
                        on_stored=lambda r: commits.append(r.new + r.unchanged))
        n = 2000
        for i in range(n):  # queued before the stages start: a deep backlog
            msg = Message("telegram", "-1003", str(i), T, f"text {i}", raw={"i": i})
            await pipe.emit(Envelope(msg, "files", checkpoint=("feed", str(i)) if i % 50 == 49 else None))
        pipe.start()
        await pipe.close()
        assert sum(commits) == n
        assert max(commits) > 100 and max(commits) <= 100 * DEEP_BATCH_FACTOR
        assert archive.conn.execute("SELECT count(*) FROM messages").fetchone() == (n,)
        assert archive.get_checkpoint("files", "feed") == str(n - 1)
        assert verify(archive.conn).ok
