"""API pages -> Messages for the collector, on top of :mod:`monitor.sources.x_convert`.

Edited posts are folded into the original's message by ``x_convert.fold_edit`` (as the
file importer does). Added here is what only the live collector needs: the id of the post
*as returned* (it orders the emission and is the ``since_id`` checkpoint, while an edited
post's Message keeps the original's id), and the earlier versions of an edited post that X
includes with the ``edit_history_tweet_ids`` expansion (emitted before the latest one, so
the archive keeps the text as first posted even when the edit happened between two polls).
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
                earlier = x_convert.tweet_to_message(old, users, tweets, media)
                out.append(Item(int(old_id), x_convert.fold_edit(earlier, tweets), latest=False))
            except (MessageError, ValueError) as exc:
                errors.append(f"includes.tweets (post {old_id}, earlier version of {tid}): {exc}")
        out.append(Item(post_id, x_convert.fold_edit(msg, tweets)))
    return out
