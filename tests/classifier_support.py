"""Hits of a learned classifier for the tests of everything after the matcher: built directly
(:func:`classifier_hit`) and through a small :class:`ClassifierMatcher`, a ``MatcherLike`` that
returns a real matcher's rule hits plus at most one classifier hit per message, shaped as the
matcher's classifier hook makes them (rule ``classifier``, no matches, often no actors,
``tags=("classifier",)``, destinations resolved like a rule's, ``score`` its probability).
clf-core's real classifier is not needed: what it decides is a keyword test here."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from monitor.model import Hit, Message

CLF_HASH = "5eedc1a551f1e7a9"  # the model's digest (16 hex)
CLAIM_WORDS = ("operation", "martyrdom", "fighters", "عملية", "عملیات")
STATEMENT_WORDS = ("condemn", "ministry", "محکوم")


def classifier_hit(kind: str = "claim", score: float = 0.83, *, actors: tuple[str, ...] = (),
                   destinations: tuple[str, ...] = ("slack",), level: str = "medium") -> Hit:
    return Hit(rule_id="classifier", rule_hash=CLF_HASH, level=level, title=f"Learned classifier: {kind}",
               matches=(), destinations=destinations, tags=("classifier",), kind=kind, actors=actors,
               score=score)


def decide(text: str) -> tuple[str, float] | None:
    """The test classifier: (kind, probability) or None. The probability depends on the text
    only, so every path gets the same."""
    low = text.lower()
    if any(w in low for w in CLAIM_WORDS):
        return "claim", round(0.6 + (len(text) % 37) / 100, 4)
    if any(w in low for w in STATEMENT_WORDS):
        return "statement", round(0.55 + (len(text) % 23) / 100, 4)
    return None


class ClassifierMatcher:
    """``inner``'s hits, then a classifier hit when ``decide`` says so (what clf-core's hook
    adds). Everything else (``rules``, ``_rules``, ``prepare`` …) is the inner matcher's, so
    the daemon's rules state and the bus's preparers take it as a matcher."""

    def __init__(self, inner: Any = None, *, destinations: Sequence[str] = ("log",),
                 decide: Callable[[str], tuple[str, float] | None] = decide,
                 actors: Callable[[list[Hit]], tuple[str, ...]] = lambda hits: ()) -> None:
        self.inner = inner
        self.destinations = tuple(destinations)
        self.decide = decide
        self.actors = actors

    def match(self, msg: Message) -> list[Hit]:
        hits = list(self.inner.match(msg)) if self.inner is not None else []
        got = self.decide(msg.text)
        if got is not None:
            kind, score = got
            hits.append(classifier_hit(kind, score, actors=self.actors(hits), destinations=self.destinations))
        return hits

    def prepare(self, *args: Any, **kw: Any) -> "ClassifierMatcher":
        if self.inner is not None and hasattr(self.inner, "prepare"):
            self.inner = self.inner.prepare(*args, **kw)
        return self

    def __getattr__(self, name: str) -> Any:
        inner = self.__dict__.get("inner")
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)
