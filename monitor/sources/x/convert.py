"""X API v2 tweet -> :class:`~monitor.model.Message`: the one converter and page walker of
the file importer and the live collector.

    tweet_to_message(tweet, users, tweets, media) -> Message
    page_items(page, errors) -> list[Item]      # the live collector (earlier versions of edits too)
    page_to_messages(page) -> list[Message]     # the file importer; {"data", "includes", "meta"} or a tweepy Response

Tweets, users and media may be plain v2 dicts or tweepy's own models (``tweepy.Tweet``,
``tweepy.User``, ``tweepy.Media``); dicts are parsed with tweepy's models. Both the paged
form (authors and referenced tweets in ``includes``) and twarc2's flattened form (``author``
embedded, ``referenced_tweets`` expanded in place) are understood:

* text: ``note_tweet.text`` (long posts) if present, else ``text``;
* retweet: the original's full text, original author/id/date in ``forwarded_from``;
* quote: own text, the quoted text in ``extra["quoted_text"]`` (+ ``quoted_id``, ``quoted_author``);
* reply: ``reply_to`` = the replied-to tweet id; ``extra["in_reply_to_user_id"]``;
* ``extra["edit_history_tweet_ids"]``; a later version of an edited post gets ``edit_date``,
  and :func:`fold_edit` (applied by the page walker :func:`page_items`) makes it a new version of the
  original post's message (``message_id`` = the first id of the edit history, the version's
  own id in ``extra["version_id"]`` and ``url``), so the archive keeps both texts;
* no ``created_at``: the date is derived from the snowflake id (``extra["date_from_id"]``).

Bad records raise :class:`~monitor.model.MessageError` naming the field.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

import tweepy

from ...model import Forward, Media, Message, MessageError, make_url, to_utc
from ..surrogates import scrub_message

TWITTER_EPOCH_MS = 1288834974657
_MEDIA_TYPES = {"photo": "photo", "video": "video", "animated_gif": "animation"}
_RT_PREFIX = re.compile(r"^RT @(\w{1,15}):")

Obj = Mapping[str, Any]


def snowflake_time(tweet_id: int | str) -> datetime:
    """Creation time encoded in a tweet id (ids since late 2010), in whole seconds like ``created_at``.
    An id whose time is past year 9999 is a :class:`MessageError` (it was a traceback)."""
    try:
        return datetime.fromtimestamp(((int(tweet_id) >> 22) + TWITTER_EPOCH_MS) // 1000, tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise MessageError(f"id {str(tweet_id)[:40]!r}: not an X post id (its time is out of range)") from None


def _data(obj: Any) -> Any:
    """The raw v2 dict behind a tweepy model (their Mapping interface returns parsed values)."""
    if isinstance(obj, (tweepy.Tweet, tweepy.User, tweepy.Media)):
        return obj.data
    return obj


def _lookup(mapping: Mapping[Any, Any] | None, key: Any) -> Any:
    if not mapping or key is None:
        return None
    found = mapping.get(str(key))
    if found is None:
        try:
            found = mapping.get(int(key))
        except (TypeError, ValueError):
            return None
    return _data(found) if found is not None else None


def _as_tweet(obj: Any) -> tweepy.Tweet:
    """Parse a v2 tweet dict with tweepy (on a copy: tweepy rewrites ``edit_controls`` in place)."""
    if isinstance(obj, tweepy.Tweet):
        return obj
    if not isinstance(obj, Mapping):
        raise MessageError(f"tweet is a JSON {type(obj).__name__}, not an object")
    if obj.get("id") in (None, ""):
        raise MessageError("missing required field 'id'")
    data = dict(obj)
    if "text" not in data:
        note = data.get("note_tweet")
        if isinstance(note, Mapping) and isinstance(note.get("text"), str):
            data["text"] = note["text"]
        else:
            raise MessageError("missing required field 'text'")
    if not isinstance(data["text"], str):
        raise MessageError("field 'text' must be a string")
    if isinstance(data.get("edit_controls"), Mapping):
        data["edit_controls"] = dict(data["edit_controls"])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # tweets from before edit history existed
            try:
                return tweepy.Tweet(data)
            except ValueError:
                # created_at / editable_until in a form tweepy's strptime does not take
                # ("...Z" without milliseconds): parse the date ourselves (see _tweet_date).
                data.pop("created_at", None)
                data.pop("edit_controls", None)
                return tweepy.Tweet(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise MessageError(f"invalid tweet: {type(exc).__name__}: {exc}") from None


def _tweet_date(tweet: tweepy.Tweet, raw: Obj) -> tuple[datetime, bool]:
    """(created_at, derived_from_id)."""
    if tweet.created_at is not None:
        return tweet.created_at, False
    value = raw.get("created_at")
    if value not in (None, ""):
        dt = to_utc(value, "created_at")
        assert dt is not None
        return dt, False
    return snowflake_time(tweet.id), True


def full_text(tweet: Any) -> str:
    """A tweet's complete text: ``note_tweet.text`` for long posts, else ``text``."""
    d = _data(tweet)
    note = d.get("note_tweet")
    if isinstance(note, Mapping) and isinstance(note.get("text"), str) and note["text"]:
        return note["text"]
    text = d.get("text")
    return text if isinstance(text, str) else ""


def _user(users: Mapping[Any, Any] | None, user_id: Any, embedded: Any = None) -> tuple[str | None, str | None]:
    """(username, display name) of a user from ``users`` or an embedded (flattened) object."""
    u = _lookup(users, user_id)
    if u is None and isinstance(embedded, Mapping) and embedded:
        u = embedded
    if u is None:
        return None, None
    if isinstance(u, tweepy.User):
        return u.username, u.name
    try:
        parsed = tweepy.User(u)
        return parsed.username, parsed.name
    except (KeyError, TypeError, ValueError):  # partial user object
        return u.get("username"), u.get("name")


def _referenced(raw: Obj, tweets: Mapping[Any, Any] | None, ref_id: int) -> Obj | None:
    """A referenced tweet: from ``tweets`` (includes) or expanded in place (twarc flatten)."""
    found = _lookup(tweets, ref_id)
    if found is not None:
        return found
    for ref in raw.get("referenced_tweets") or ():
        if isinstance(ref, Mapping) and str(ref.get("id")) == str(ref_id) and "text" in ref:
            return ref
    return None


def _media(raw: Obj, media: Mapping[Any, Any] | None) -> tuple[Media, ...]:
    attachments = raw.get("attachments")
    if not isinstance(attachments, Mapping):
        return ()
    embedded = {m.get("media_key"): m for m in attachments.get("media") or () if isinstance(m, Mapping)}
    out = []
    for key in attachments.get("media_keys") or ():
        m = _lookup(media, key) or embedded.get(key) or {}
        mtype = str(m.get("type") or "unknown")
        url = m.get("url")
        out.append(
            Media(
                type=_MEDIA_TYPES.get(mtype, mtype),
                file_name=url.rsplit("/", 1)[-1] if isinstance(url, str) and url else None,
            )
        )
    return tuple(out)


def tweet_to_message(
    tweet: Obj | tweepy.Tweet,
    users: Mapping[Any, Obj | tweepy.User] | None = None,
    tweets: Mapping[Any, Obj | tweepy.Tweet] | None = None,
    media: Mapping[Any, Obj | tweepy.Media] | None = None,
) -> Message:
    """Convert one X API v2 tweet (dict or ``tweepy.Tweet``) to a Message.

    ``users``/``tweets``/``media``: the response's ``includes`` keyed by id (media by
    media_key), as dicts or tweepy models. Raises MessageError naming a missing field.
    """
    raw = _data(tweet)
    t = _as_tweet(tweet)
    if not isinstance(raw, Mapping):  # pragma: no cover - _as_tweet rejected it
        raise MessageError("tweet is not an object")
    author_id = t.author_id
    embedded_author = raw.get("author")
    if author_id is None and isinstance(embedded_author, Mapping) and embedded_author.get("id"):
        author_id = embedded_author["id"]
    if author_id in (None, ""):
        raise MessageError("missing required field 'author_id'")
    username, name = _user(users, author_id, embedded_author)
    date, date_from_id = _tweet_date(t, raw)
    tid = str(t.id)

    text = full_text(raw)
    extra: dict[str, Any] = {}
    history = raw.get("edit_history_tweet_ids")
    edit_date = None
    if isinstance(history, Sequence) and not isinstance(history, str):
        extra["edit_history_tweet_ids"] = [str(i) for i in history]
        if len(history) > 1 and str(history[0]) != tid:
            edit_date = date  # a later version of an edited post
    if date_from_id:
        extra["date_from_id"] = True
    forwarded = None
    reply_to = None
    for ref in t.referenced_tweets or ():
        rtype = ref.type
        if rtype == "retweeted":
            orig = _referenced(raw, tweets, ref.id)
            if orig is not None:
                text = full_text(orig)
                o_author = orig.get("author_id") or (orig.get("author") or {}).get("id")
                o_user, _ = _user(users, o_author, orig.get("author"))
                o_date = orig.get("created_at")
                forwarded = Forward(
                    name=o_user,
                    id=str(o_author) if o_author else None,
                    message_id=str(ref.id),
                    date=to_utc(o_date, "retweeted created_at") if o_date else snowflake_time(ref.id),
                )
            else:  # original not included: keep the (truncated) "RT @user: ..." text
                m = _RT_PREFIX.match(t.text)
                forwarded = Forward(name=m.group(1) if m else None, message_id=str(ref.id))
                extra["retweet_text_truncated"] = True
        elif rtype == "quoted":
            extra["quoted_id"] = str(ref.id)
            quoted = _referenced(raw, tweets, ref.id)
            if quoted is not None:
                extra["quoted_text"] = full_text(quoted)
                q_author = quoted.get("author_id") or (quoted.get("author") or {}).get("id")
                q_user, _ = _user(users, q_author, quoted.get("author"))
                if q_user:
                    extra["quoted_author"] = q_user
        elif rtype == "replied_to":
            reply_to = str(ref.id)
    if t.in_reply_to_user_id is not None:
        extra["in_reply_to_user_id"] = str(t.in_reply_to_user_id)
    if reply_to is None and raw.get("in_reply_to_status_id"):
        reply_to = str(raw["in_reply_to_status_id"])

    msg = Message(
        platform="x",
        channel_id=str(author_id),
        message_id=tid,
        date=date,
        text=text,
        channel=username,
        channel_title=name,
        edit_date=edit_date,
        author=username,
        lang=t.lang,
        url=make_url("x", username, str(author_id), tid),
        reply_to=reply_to,
        forwarded_from=forwarded,
        media=_media(raw, media),
        extra=extra,
        raw=raw,
    )
    return scrub_message(msg)


def fold_edit(msg: Message, tweets: Mapping[Any, Obj | tweepy.Tweet] | None = None) -> Message:
    """Make a later version of an edited post a version of the original post's message.

    ``message_id`` becomes the edit history's first id; the version's own id goes to
    ``extra["version_id"]`` (and stays in ``url``); ``date`` is the original's (from
    ``tweets``, else its snowflake id) and ``edit_date`` this version's time. Other messages
    are returned unchanged (so folding twice is harmless).
    """
    history = msg.extra.get("edit_history_tweet_ids") or []
    if len(history) < 2 or str(history[0]) == msg.message_id or msg.message_id not in [str(h) for h in history]:
        return msg
    original = str(history[0])
    orig = _lookup(tweets, original)
    date = None
    if isinstance(orig, Mapping) and orig.get("created_at"):
        try:
            date = to_utc(orig["created_at"], "created_at")
        except MessageError:
            date = None
    return dataclasses.replace(
        msg,
        message_id=original,
        date=date or snowflake_time(original),
        edit_date=msg.edit_date or msg.date,
        extra={**msg.extra, "version_id": msg.message_id},
    )


def _index(items: Any, key: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or ():
        d = _data(item)
        if isinstance(d, Mapping) and d.get(key) is not None:
            out[str(d[key])] = item
    return out


@dataclasses.dataclass(frozen=True)
class Item:
    """One post of a page, for the live collector."""

    post_id: int  # id of the post version X returned (orders the emission; the since_id)
    message: Message  # an edited post's Message keeps the original's id (fold_edit)
    latest: bool = True  # False: an earlier version of an edited post, from includes


def page_items(
    page: Obj | tweepy.Response, errors: list[str] | None = None, *, earlier: bool = True, noun: str = "post"
) -> list[Item]:
    """THE page walker: every post of one API response page (a v2 dict or a tweepy
    ``Response``), edits folded into the original's message (:func:`fold_edit`).

    ``earlier``: also the earlier versions of an edited post that X includes with the
    ``edit_history_tweet_ids`` expansion, before the latest (the live collector: the
    archive keeps the text as first posted even when the edit happened between two polls).
    A bad post raises MessageError ("data[i] (<noun> <id>): reason"); with ``errors`` (a
    list) the reason is appended there instead and the other posts are returned.
    """
    if isinstance(page, tweepy.Response):
        data, includes = page.data, page.includes or {}
    elif isinstance(page, Mapping):
        data, includes = page.get("data"), page.get("includes") or {}
    else:
        raise MessageError(f"page is a JSON {type(page).__name__}, not an object")
    if data is None:
        return []
    if isinstance(data, (Mapping, tweepy.Tweet)):  # single-tweet lookup
        data = [data]
    if not isinstance(includes, Mapping):
        raise MessageError("'includes' is not an object")
    users = _index(includes.get("users"), "id")
    tweets = _index(includes.get("tweets"), "id")
    media = _index(includes.get("media"), "media_key")
    out: list[Item] = []
    for i, item in enumerate(data):
        raw = _data(item)
        tid = raw.get("id") if isinstance(raw, Mapping) else None
        try:
            msg = tweet_to_message(item, users, tweets, media)
            post_id = int(tid) if earlier else 0
        except (MessageError, TypeError, ValueError) as exc:
            reason = f"data[{i}]" + (f" ({noun} {tid})" if tid else "") + f": {exc}"
            if errors is None:
                raise MessageError(reason) from None
            errors.append(reason)
            continue
        if earlier:
            history = [str(h) for h in raw.get("edit_history_tweet_ids") or ()]
            for old_id in history[:-1]:
                old = tweets.get(old_id)
                if old is None or old_id == str(tid):
                    continue
                try:
                    previous = tweet_to_message(old, users, tweets, media)
                    out.append(Item(int(old_id), fold_edit(previous, tweets), latest=False))
                except (MessageError, ValueError) as exc:
                    errors_of = f"includes.tweets ({noun} {old_id}, earlier version of {tid}): {exc}"
                    if errors is None:
                        raise MessageError(errors_of) from None
                    errors.append(errors_of)
        out.append(Item(post_id, fold_edit(msg, tweets)))
    return out


def page_to_messages(page: Obj | tweepy.Response, *, errors: list[str] | None = None) -> list[Message]:
    """The Messages of one page as the file importer reads it (:func:`page_items` without
    earlier versions)."""
    return [item.message for item in page_items(page, errors, earlier=False, noun="tweet")]
