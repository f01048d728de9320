"""Optional media download to a content-addressed store (never on by default).

Configured with ``download_media: {types: [photo], max_size: 20MB, dir: data/media}``.
A file is stored as ``<dir>/<sha256[:2]>/<sha256><ext>``: the same picture reposted by
fifty channels is stored once, and the name proves the content. Only the configured
media types up to ``max_size`` are fetched; the Media entry of the message records the
SHA-256 and the path.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import uuid
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from ...config import MediaDownloadConfig
from ...logs import get_logger
from ...model import Media
from .errors import flood_seconds

if TYPE_CHECKING:  # pragma: no cover
    from .gateway import TelegramGateway

log = get_logger("claimwatch.telegram.media")

_EXT_BY_TYPE = {"photo": ".jpg", "voice": ".ogg", "sticker": ".webp"}
_REMEMBER = 2048  # media already stored, by Telegram file id (edits, reposts)


def media_file_id(tl_media: Any) -> int | None:
    """Telegram's id of the photo/document of a MessageMedia*, if any."""
    obj = getattr(tl_media, "photo", None) or getattr(tl_media, "document", None)
    value = getattr(obj, "id", None)
    return value if isinstance(value, int) else None


def _hash_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


class _FloodWait(Exception):
    def __init__(self, seconds: int, reason: str) -> None:
        super().__init__(reason)
        self.seconds = seconds
        self.reason = reason


class MediaStore:
    def __init__(self, cfg: MediaDownloadConfig, *, max_flood_wait: float = 300.0) -> None:
        self.max_flood_wait = max_flood_wait
        self.flood_skipped = 0  # media not downloaded because of a long flood wait
        self.cfg = cfg
        self.dir = Path(cfg.dir)
        self.types = {t.lower() for t in cfg.types}
        self._known: OrderedDict[int, tuple[str, str]] = OrderedDict()

    def wanted(self, media: Media) -> bool:
        if media.type.lower() not in self.types:
            return False
        return media.size is None or media.size <= self.cfg.max_size

    def _extension(self, media: Media) -> str:
        if media.file_name and Path(media.file_name).suffix:
            return Path(media.file_name).suffix.lower()[:12]
        if media.mime:
            ext = mimetypes.guess_extension(media.mime)
            if ext:
                return ext
        return _EXT_BY_TYPE.get(media.type, "")

    async def store(self, gateway: "TelegramGateway", tl_msg: Any, media: Media, *,
                    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> Media:
        """Download ``media`` of ``tl_msg`` if wanted; returns it with sha256/path set, or
        unchanged when not wanted or the download failed (the message is never lost).

        A flood wait (a premium download limit included) up to ``max_flood_wait`` seconds is
        waited out and the download retried once; a longer one is reported (logged as an
        error, counted in :attr:`flood_skipped`), never skipped silently."""
        for attempt in (1, 2):
            try:
                return await self._store(gateway, tl_msg, media)
            except _FloodWait as fw:
                if attempt == 1 and fw.seconds <= self.max_flood_wait:
                    log.warning("media download under a flood wait; waiting", seconds=fw.seconds,
                                message_id=getattr(tl_msg, "id", None))
                    await sleep(fw.seconds)
                    continue
                self.flood_skipped += 1
                log.error("media not downloaded: flood wait too long", seconds=fw.seconds,
                          message_id=getattr(tl_msg, "id", None), error=fw.reason)
                return media
        return media  # pragma: no cover

    async def _store(self, gateway: "TelegramGateway", tl_msg: Any, media: Media) -> Media:
        if not self.wanted(media):
            return media
        file_id = media_file_id(getattr(tl_msg, "media", None))
        if file_id is not None and file_id in self._known:
            sha, path = self._known[file_id]
            self._known.move_to_end(file_id)
            return replace(media, sha256=sha, path=path)
        self.dir.mkdir(parents=True, exist_ok=True)
        ext = self._extension(media)
        tmp = self.dir / f".part-{uuid.uuid4().hex}{ext}"
        got = tmp
        try:
            written = await gateway.download_media(tl_msg, str(tmp))
            got = Path(written) if written else tmp
            if not got.exists():
                log.warning("media download returned nothing", message_id=getattr(tl_msg, "id", None))
                return media
            sha, size = await asyncio.to_thread(_hash_file, got)
            if size > self.cfg.max_size:
                got.unlink(missing_ok=True)
                log.info("media larger than max_size; not kept", size=size, max_size=self.cfg.max_size)
                return media
            final = self.dir / sha[:2] / f"{sha}{ext}"
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                got.unlink(missing_ok=True)
            else:
                os.replace(got, final)
        except Exception as exc:  # a failed download must not lose the message
            for p in {tmp, got}:
                p.unlink(missing_ok=True)
            seconds = flood_seconds(exc)
            if seconds is not None:
                raise _FloodWait(seconds, f"{type(exc).__name__}: {exc}") from None
            log.warning("media download failed", message_id=getattr(tl_msg, "id", None), error=str(exc))
            for p in {tmp, got}:
                p.unlink(missing_ok=True)
            return media
        if file_id is not None:
            self._known[file_id] = (sha, str(final))
            if len(self._known) > _REMEMBER:
                self._known.popitem(last=False)
        return replace(media, sha256=sha, path=str(final), size=media.size if media.size is not None else size)
