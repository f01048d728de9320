"""API pages -> Messages for the collector, on top of :mod:`monitor.sources.x_convert`.

Adds what only the live collector needs: the id of the post *as returned* (it orders
the emission and is the ``since_id`` checkpoint, while an edited post's Message keeps the
original's id), and the earlier versions of an edited post that X includes with the
``edit_history_tweet_ids`` expansion (emitted before the latest one, so the archive keeps
the text as first posted even when the edit happened between two polls).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ...model import Message, MessageError
from .. import x_convert


@dataclass(frozen=True)
class Item:
    post_id: int  # id of the post version X returned
    message: Message
    latest: bool = True  # False: an earlier version of an edited post, from includes


def _index(items: Any, key: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or ():
        if isinstance(item, Mapping) and item.get(key) is not None:
            out[str(item[key])] = item
    return out


def page_items(page: Mapping[str, Any], errors: list[str]) -> list[Item]:
    """Items for every post in ``page["data"]`` (bad posts are described in ``errors``)."""
    data = page.get("data") or []
    if isinstance(data, Mapping):
        data = [data]
    includes = page.get("includes") or {}
    users = _index(includes.get("users"), "id")
    tweets = _index(includes.get("tweets"), "id")
    media = _index(includes.get("media"), "media_key")
    out: list[Item] = []
    for i, raw in enumerate(data):
        tid = raw.get("id") if isinstance(raw, Mapping) else None
        try:
            msg = x_convert.tweet_to_message(raw, users, tweets, media)
            post_id = int(tid)
        except (MessageError, TypeError, ValueError) as exc:
            errors.append(f"data[{i}]" + (f" (post {tid})" if tid else "") + f": {exc}")
            continue
        history = [str(h) for h in raw.get("edit_history_tweet_ids") or ()]
        for old_id in history[:-1]:
            old = tweets.get(old_id)
            if old is None or old_id == str(tid):
                continue
            try:
                out.append(Item(int(old_id), fold_edit(x_convert.tweet_to_message(old, users, tweets, media), tweets),
                                latest=False))
            except (MessageError, ValueError) as exc:
                errors.append(f"includes.tweets (post {old_id}, earlier version of {tid}): {exc}")
        out.append(Item(post_id, fold_edit(msg, tweets)))
    return out


def fold_edit(msg: Message, tweets: Mapping[str, Any] | None = None) -> Message:
    """Make a later version of an edited post a version of the original message.

    The version's own id goes to ``extra["version_id"]`` (and stays in ``url``); the
    date is the original's (from ``tweets`` or its snowflake id), ``edit_date`` this
    version's creation time. Messages that are not later versions are returned as is.
    """
    fold = getattr(x_convert, "fold_edit", None)
    if fold is not None:  # x_convert does it itself
        return fold(msg, tweets)
    history = msg.extra.get("edit_history_tweet_ids") or []
    if len(history) < 2 or str(history[0]) == msg.message_id or msg.message_id not in history:
        return msg
    original = str(history[0])
    orig = (tweets or {}).get(original)
    date = None
    if isinstance(orig, Mapping) and orig.get("created_at"):
        try:
            date = x_convert.to_utc(orig["created_at"], "created_at")
        except MessageError:
            date = None
    extra = {**msg.extra, "version_id": msg.message_id}
    import dataclasses

    return dataclasses.replace(
        msg,
        message_id=original,
        date=date or x_convert.snowflake_time(original),
        edit_date=msg.edit_date or msg.date,
        extra=extra,
    )
