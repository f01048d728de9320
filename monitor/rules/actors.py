"""Actors: the groups, governments, militaries, media wings and persons rules talk about.

An actor file is a YAML file under a rules path whose top-level mapping has ``actors:``::

    actors:
      - id: houthis                 # [a-z0-9-]+, unique
        type: group                 # group | government | military | media | person
        title: Houthis (Ansar Allah)
        names:                      # rule terms, per language
          en: [Houthis, Ansar Allah, Yahya Saree]
          ar: [الحوثيين, أنصار الله]
        accounts: ["telegram:army21ye", "x:@army21ye"]
        member_of: null             # optional parent actor id

Rules reference an actor instead of repeating its names: a term ``@actor:houthis`` expands to
all its names, and a ``sources:`` entry ``@actor:iran`` to its accounts (and those of its
members). Every hit is tagged with the actors whose names occur in the message text, the
actors whose accounts posted it, and their parents (``member_of``): see :class:`ActorTagger`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable

from ..model import Message
from .source_filter import SourcePattern
from .terms import Term

ACTOR_TYPES = ("group", "government", "military", "media", "person")
ACTOR_KEYS = ("id", "type", "title", "names", "accounts", "member_of", "description")
REF_PREFIX = "@actor:"
_GLOB_CHARS = set("*?[")
MAX_CACHED_CHANNELS = 10_000  # posted_by answers remembered per (platform, channel, id, title)


@dataclass(frozen=True, eq=False)
class Actor:
    id: str
    type: str
    title: str
    names: tuple[tuple[str, tuple[Term, ...]], ...] = ()  # (language, terms) as written
    accounts: tuple[SourcePattern, ...] = ()
    member_of: str | None = None
    description: str = ""
    file: str = ""
    line: int = 1
    col: int = 1
    member_pos: tuple[int, int] = (1, 1)  # line, col of member_of in the file

    @property
    def terms(self) -> tuple[Term, ...]:
        """All names of every language, each once (in file order)."""
        seen: dict[str, Term] = {}
        for _lang, terms in self.names:
            for t in terms:
                seen.setdefault(t.raw, t)
        return tuple(seen.values())

    def fingerprint(self) -> str:
        """What a rule that references this actor depends on (folded into the rule's hash)."""
        parts = [self.id, *(t.raw for t in self.terms), "|", *(str(a) for a in self.accounts)]
        return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


def ancestors(actors: dict[str, Actor], actor_id: str) -> list[str]:
    """``actor_id``'s parents via ``member_of``, nearest first (stops on a cycle)."""
    out: list[str] = []
    seen = {actor_id}
    parent = actors[actor_id].member_of if actor_id in actors else None
    while parent is not None and parent in actors and parent not in seen:
        out.append(parent)
        seen.add(parent)
        parent = actors[parent].member_of
    return out


def descendants(actors: dict[str, Actor], actor_id: str) -> list[str]:
    """The actor and every actor that is (transitively) a member of it."""
    out = [actor_id]
    for other in actors:
        if other != actor_id and actor_id in ancestors(actors, other):
            out.append(other)
    return out


class ActorTagger:
    """Which actors a message names or was posted by (with their parents).

    Names are compiled into a separate :class:`~monitor.rules.matcher.Matcher`: one synthetic
    ``any`` rule per actor, so names match exactly as rule terms do (normalisation, whole
    words, wildcards, proclitics). Accounts are looked up by channel username, id and title.
    """

    def __init__(self, actors: Iterable[Actor], names: bool = True) -> None:
        from .condition import single_condition
        from .matcher import Matcher
        from .ruleset import Rule, RuleSet, Selection

        self.actors: dict[str, Actor] = {a.id: a for a in actors}
        rules = []
        for a in self.actors.values():
            terms = a.terms
            if terms and names:  # (the rules' Matcher finds names in its own scan: names=False)
                sel = Selection("names", "any", "text", terms, line=a.line, col=a.col)
                rules.append(Rule(id=a.id, title=a.title, level="info", selections=(sel,),
                                  condition=single_condition("names"), file=a.file, line=a.line))
        self._names = Matcher(RuleSet(rules=rules), default_destinations=()) if rules else None
        self._exact: dict[tuple[str, str], set[str]] = {}
        self._globs: list[tuple[SourcePattern, str]] = []
        for a in self.actors.values():
            for acc in a.accounts:
                if acc.glob is None:
                    continue
                if _GLOB_CHARS.isdisjoint(acc.glob):
                    self._exact.setdefault((acc.platform, acc.glob.lower()), set()).add(a.id)
                else:
                    self._globs.append((acc, a.id))
        self._up = {aid: ancestors(self.actors, aid) for aid in self.actors}

    def __len__(self) -> int:
        return len(self.actors)

    def posted_by(self, msg: Message) -> frozenset[str]:
        """Actors one of whose accounts posted ``msg`` (remembered per channel)."""
        key = (msg.platform, msg.channel, msg.channel_id, msg.channel_title)
        cache = self.__dict__.setdefault("_posted", {})
        got = cache.get(key)
        if got is None:
            if len(cache) >= MAX_CACHED_CHANNELS:
                cache.clear()
            got = cache[key] = frozenset(self._posted_by(msg))
        return got

    def _posted_by(self, msg: Message) -> set[str]:
        found: set[str] = set()
        if self._exact:
            for value in (msg.channel, msg.channel_id, msg.channel_title):
                if value:
                    got = self._exact.get((msg.platform, str(value).lstrip("@").lower()))
                    if got:
                        found |= got
        for pattern, aid in self._globs:
            if aid not in found and pattern.matches(msg):
                found.add(aid)
        return found

    def named_in(self, msg: Message) -> set[str]:
        """Actors whose names occur in the message text."""
        if self._names is None or not msg.text:
            return set()
        return {h.rule_id for h in self._names.match(msg)}

    def tag(self, msg: Message, named: set[str] | None = None) -> tuple[str, ...]:
        """Ids of the actors of ``msg`` (named or posting, plus their parents), sorted;
        ``named``: the actors already found named in its text."""
        found = (self.named_in(msg) if named is None else named) | self.posted_by(msg)
        for aid in list(found):
            found.update(self._up.get(aid, ()))
        return tuple(sorted(found))

    def title(self, actor_id: str) -> str:
        a = self.actors.get(actor_id)
        return a.title if a is not None else actor_id
