"""The compiled matcher: one scan per message finds the words of every rule, then only the
rules that can be true are evaluated.

Compilation (on load and on every reload):

* Every distinct word of every term becomes ONE pattern: whole words go into a dict, wildcard
  words into a small Aho-Corasick automaton with the keys ``" word"`` (``word*``), ``"word "``
  (``*word``) and ``"word"`` (``*word*``), matched against a form framed by spaces.
* Morphology is on the message side (:mod:`monitor.rules.morphology`): each word of the
  message is reduced to the forms a term can match (proclitics, enclitic pronouns, Persian
  suffixes stripped), and those forms are looked up. A word's lookup result (the set of term
  words it matches) is cached per field, so a word already seen costs one dict lookup.
  Persian words written in two pieces (``بیانیه ای``, ``می شود``) are joined first.
* ``regex:`` selections are RE2 programs (linear time), each run only when a candidate rule
  asks about it and the letter runs it needs
  (:func:`~monitor.rules.regexes.required_literal_sets`) are in the text: those runs are
  marked on the words that hold them when the word is first looked up, so a message's scan
  knows which are present. (One RE2 ``FilteredRE2`` over all of a field's regexes cost
  20 - 60 µs per message it ran on; a regex alone costs 1 - 5 µs.)
* Each rule gets an anchor, its "fast pattern": from the selections its condition requires
  (:func:`~monitor.rules.condition.necessary_selections`) the cheapest set by estimated word
  frequency (:mod:`monitor.rules.anchors`), and from each of those the rarest word of each
  term. A rule is evaluated only when one of its anchor words was found, so a rule
  ``claim and common_word`` costs nothing on the many messages that only have the common word.
  An anchor word taken from a phrase (a watch list's multi-word name) makes the rule a
  candidate only when every word of that phrase was found.
  Rules whose condition can be true with nothing found (``not denial``) are evaluated always.

* Each rule also gets "gates" (:func:`required_sets`): further sets of words its condition
  needs besides the anchor (the other groups of a ``near``, the other side of an ``and``), so a
  candidate rule whose other needed words are all absent is dropped with one set test.

Per message: ``scan_text`` (one translation pass), a split into words and one cached lookup
per word, the anchor lookup, the gates, then the rule's condition (a Python expression in
which one-word ``any`` selections are set tests on the found words; other selections are
evaluated lazily and memoised per message). Positions (phrases, ``near``) are computed only
when a candidate rule needs them, and character spans in the original text only for hits.
"""

from __future__ import annotations

import copyreg
import dataclasses
from array import array
from bisect import bisect_left
import re
import sys
import time
from functools import partial
from itertools import accumulate, chain, compress, count, groupby, islice, repeat
from operator import add, attrgetter, call, contains, getitem, itemgetter, ne
from typing import Any, Callable, Iterable, Sequence

import ahocorasick

try:  # RE2's programs asked directly (see _Regexes.search_utf8)
    from re2 import _Anchor

    _UNANCHORED = _Anchor.UNANCHORED
except (ImportError, AttributeError):  # pragma: no cover - another version of google-re2
    _UNANCHORED = None


def _private_match_works() -> bool:
    """Whether the private call of :meth:`_Regexes.search_utf8` answers as ``search`` does on
    this version of google-re2 (probes with a match, a miss and non-ASCII text); if not, the
    public ``search`` is used."""
    if _UNANCHORED is None:
        return False
    try:
        import re2

        probe = getattr(re2.compile("b+c"), "_regexp", None)
        match = getattr(probe, "Match", None)
        if match is None:
            return False
        for text, expected in (("aabbc", True), ("abd", False), ("كرمان bc", True), ("ب", False)):
            data = text.encode("utf-8")
            if (match(_UNANCHORED, data, 0, len(data))[0][0] >= 0) != expected:
                return False
        return True
    except Exception:  # noqa: BLE001 - any other behaviour means: use the public API
        return False


if not _private_match_works():  # pragma: no cover - another version of google-re2
    _UNANCHORED = None

from ..model import Hit, Match, Message, make_url
from .anchors import REGEX_COST, rarest_word, word_cost
from .condition import cost_free, fold_necessary, run_program
from ..gcpause import paused_gc
from .language import is_persian, language_not_persian
from .morphology import MERGE_TOKENS, fast_word_forms, merged_pairs
from .scan import c_token_starts, new_word_cache, scan_words, word_spans
from ..text import OffsetMap, normalize, scan_text, text_span
from .regexes import (
    compile_regex, required_literal, required_literal_sets,
)
from .ruleset import FIELDS, Rule, RuleSet, Selection
from .lists import ListTerms, PendingListTerms, number_lists
from .terms import EXACT, INFIX, PREFIX, SUFFIX, Term, Word

MAX_MATCHES_PER_HIT = 100
_TOKEN = re.compile(r"\S+")
_second = itemgetter(1)
_NOTHING: frozenset[int] = frozenset()
_NO_WORDS: frozenset[int] = frozenset()
_NO_GROUPS: list[list[int]] = []  # never changed
_TERM_WORDS = itemgetter(1)  # Term.words
_FIRST = itemgetter(0)
_SECOND = itemgetter(1)
_PIECES: frozenset[int] = frozenset({-1})
_FIELD_ORDER = {f: i for i, f in enumerate(FIELDS)}
_PIECE = -1  # in a word's lookup result: the word is a Persian piece (ها، ای، می ...), see merged_pairs
MAX_CACHED_WORDS = 200_000  # per field: words whose lookup is remembered (then it starts over, before the next message)
MAX_CACHED_WORD_CHARS = 64


class _Lookup(dict):
    """word of the message (as :func:`scan_text` gives it) -> ids of the term words it matches.

    A word seen for the first time is looked up by its forms (:func:`fast_word_forms`) in the
    dict of whole words and, in ONE automaton pass over its forms framed by spaces, both for
    the wildcard words (``auto``) and for the letter runs the field's regexes need (``gates``:
    counted only inside the first form, the token itself; see :meth:`_both`)."""

    def __init__(self, exact: dict[str, int], auto: "ahocorasick.Automaton | None", persian: bool = False) -> None:
        super().__init__()
        self.exact = exact
        self.auto = auto
        self.persian = persian  # the words of Persian messages (see morphology.word_forms)
        self._gates: "ahocorasick.Automaton | None" = None
        self.both: "ahocorasick.Automaton | None" = self._both()
        # the "hot" ids (see _FieldIndex.hot_ids: words rules are anchored on, phrase keys)
        # and the cached tokens whose value holds one: a message none of whose tokens is hot
        # has no candidate from its words (see _Scan); the "gated" tokens: those whose value
        # holds a letter set an anchor regex needs (``gate_needs``: the sets each such regex
        # needs, by the smallest id): a message with no hot token has a candidate from them
        # only when every set of one anchor regex is among its tokens'
        self.hot_ids: frozenset[int] | None = None
        self.hot: set[str] = set()
        self.gated_ids: frozenset[int] = _NOTHING
        self.gate_needs: dict[int, tuple[frozenset[int], ...]] = {}
        self.gated: set[str] = set()
        # the C pass's own cache of the words above (keyed by their characters, with their hot
        # and gated marks): cleared with this dict, see clear()
        self.words_c = new_word_cache(MAX_CACHED_WORDS, MAX_CACHED_WORD_CHARS)
        # True when this dict, ``hot`` or ``gated`` holds MAX_CACHED_WORDS words: the cache starts
        # over (clear()) before the next message's look-ups, never in the middle of a message
        # (whose words looked up before would lose their hot and gated marks)
        self.full = False

    def clear(self) -> None:
        """Forget the cached words, here, in the C pass's cache and in ``hot`` and ``gated``."""
        dict.clear(self)
        if self.words_c is not None:
            self.words_c.clear()
        self.hot.clear()
        self.gated.clear()
        self.full = False

    def persian_twin(self) -> "_Lookup":
        """A lookup over the same words for Persian messages (its own cache)."""
        twin = _Lookup(self.exact, None, persian=True)
        twin.auto = self.auto
        twin._gates = self._gates
        twin.both = self.both
        twin.hot_ids = self.hot_ids
        twin.gated_ids = self.gated_ids
        twin.gate_needs = self.gate_needs
        return twin

    def set_hot_ids(
        self, ids: "frozenset[int] | None", gate_needs: "dict[int, tuple[frozenset[int], ...]] | None" = None,
    ) -> None:
        """Set the hot ids and the anchor regexes' letter sets (see above); the cached words are
        forgotten (classified again when next seen)."""
        self.hot_ids = ids
        self.gate_needs = gate_needs or {}
        self.gated_ids = frozenset().union(*chain.from_iterable(self.gate_needs.values()))
        self.clear()
        self.hot = set()
        self.gated = set()

    def may_run_regex(self, gates: "set[int]") -> bool:
        """Whether every letter set of one anchor regex is in ``gates``."""
        needs = self.gate_needs
        for g in needs.keys() & gates:
            for need in needs[g]:
                if need <= gates:
                    return True
        return False

    # the letter runs the field's regexes need (see _FieldIndex._build_regexes): a token
    # holding one gets the (negative) ids of their sets
    @property
    def gates(self) -> "ahocorasick.Automaton | None":
        return self._gates

    @gates.setter
    def gates(self, value: "ahocorasick.Automaton | None") -> None:
        self._gates = value
        self.both = self._both()

    def _both(self) -> "ahocorasick.Automaton | None":
        """One automaton with the keys of ``auto`` and of ``gates``; a key's value is
        ``(wildcard word ids, regex letter-set ids)`` (a run and a ``*word*`` key can be the
        same string). None when neither has a key."""
        auto, gates = self.auto, self._gates
        if auto is None and gates is None:
            return None
        values: dict[str, tuple[list[int], list[int]]] = {}
        if auto is not None:
            for key, wid in auto.items():
                values.setdefault(key, ([], []))[0].append(wid)
        if gates is not None:
            for key, ids in gates.items():
                values.setdefault(key, ([], []))[1].extend(ids)
        both = ahocorasick.Automaton()
        for key, (wids, ids) in values.items():
            both.add_word(key, (tuple(wids), tuple(ids)))
        both.make_automaton()
        return both

    def __missing__(self, token: str) -> frozenset[int]:
        forms = fast_word_forms(token, self.persian)  # the folded token first
        first = forms[0]
        exact = self.exact
        if len(forms) == 1:
            w = exact.get(first)
            got = [] if w is None else [w]
            framed = " " + first + " "
        else:
            got = [exact[f] for f in forms if f in exact]
            framed = " " + "  ".join(forms) + " "
        both = self.both
        if both is not None:
            # a run ending at or before it lies in the first form (the token); a whole word of a
            # regex (" w ", see regexes.required_literal_sets) ends on the space after it
            inside = len(first) + 1
            for end, (wids, ids) in both.iter(framed):
                if wids:
                    got.extend(wids)
                if ids and end <= inside:
                    got.extend(ids)
        if token in MERGE_TOKENS:
            got.append(_PIECE)
        value = frozenset(got) if got else _NOTHING
        # the cache never starts over here, in the middle of a message (its earlier words,
        # already looked up, would lose their hot and gated marks): see start_over_if_full
        # (``full`` is read before the next message's look-ups: _Scan calls clear())
        if len(token) <= MAX_CACHED_WORD_CHARS:
            self[token] = value
            if len(self) >= MAX_CACHED_WORDS:
                self.full = True
        if got:
            hot_ids = self.hot_ids
            if hot_ids is not None:
                if not hot_ids.isdisjoint(got):
                    hot = self.hot
                    hot.add(token)
                    if len(hot) >= MAX_CACHED_WORDS:  # long tokens (not cached) could fill it
                        self.full = True
                if not self.gated_ids.isdisjoint(got):
                    gated = self.gated
                    gated.add(token)
                    if len(gated) >= MAX_CACHED_WORDS:
                        self.full = True
        return value


def field_value(msg: Message, field: str) -> str:
    """The text a selection with ``field:`` is matched against."""
    if field == "text":
        return msg.text or ""
    if field == "channel":
        return "\n".join(dict.fromkeys(v for v in (msg.channel, msg.channel_title) if v))
    if field == "author":
        return msg.author or ""
    if field == "forwarded_from":
        fw = msg.forwarded_from
        return "\n".join(v for v in (fw.name, fw.id) if v) if fw else ""
    if field == "url":
        return msg.url or make_url(msg.platform, msg.channel, msg.channel_id, msg.message_id) or ""
    raise KeyError(field)


class _FieldIndex:
    """Words and regexes of all selections on one field, compiled."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.words: list[Word] = []
        self.word_ids: dict[Word, int] = {}
        self.automaton: ahocorasick.Automaton | None = None
        self.regexes: list[str] = []
        self.regex_ids: dict[str, int] = {}
        self.compiled: list = []
        # word id -> indexes (ascending) of the rules anchored on it; emptied by build() into
        # key_rules, where rules anchored on the same words share one tuple
        self.triggers: dict[int, list[int]] = {}
        self.regex_triggers: dict[int, list[int] | tuple[int, ...]] = {}  # regex id -> rule indexes
        # word id -> [word ids of a phrase it anchors, rule indexes (a tuple, ascending), word ids
        # of the next phrase, its rule indexes, ...] (flat): those rules are candidates only when
        # every word of the phrase was found; emptied by build() into key_phrases (tuples)
        self.phrase_triggers: dict[int, list] = {}
        self.has_triggers = False
        # id(a selection's shared tuple of term word ids) -> its terms by first word (see
        # _Sel.found_terms; built on first use, not pickled; the tuples live as long as this)
        self.first_terms: dict[int, tuple[dict[int, int | tuple[int, ...]], frozenset[int]]] = {}

    def word_id(self, word: Word) -> int:
        wid = self.word_ids.get(word)  # a Word is a (text, kind) tuple: equal words, one id
        if wid is None:
            wid = self.word_ids[word] = len(self.words)
            self.words.append(word)
        return wid

    def regex_id(self, pattern: str) -> int:
        rid = self.regex_ids.get(pattern)
        if rid is None:
            rid = self.regex_ids[pattern] = len(self.regexes)
            self.regexes.append(pattern)
        return rid

    def __getstate__(self) -> dict:
        # the RE2 programs and the word-lookup cache are rebuilt on load (see monitor.rules.cache);
        # word_ids (needed only while compiling) is rebuilt from words when asked for; the
        # phrase anchors go flat (see _PhraseIndex)
        state = dict(self.__dict__)
        for k in ("compiled", "lookup", "lookup_fa", "word_ids", "first_terms", "phrase_keys", "term_keys", "term_raws", "_anchor_plan"):
            state.pop(k, None)
        if "key_phrases" in state:
            state["key_phrases"] = _PhraseIndex.flat(state["key_phrases"])
        words = state.get("words")
        if words:  # their texts (the same strings as exact's keys) and kinds: remade in C on load
            state["words"] = [w.text for w in words]
            kinds = bytes([_KIND_CODES[w.kind] for w in words])
            state["word_kinds"] = None if not any(kinds) else kinds
        lookup = self.__dict__.get("lookup")
        if lookup is not None and "regex_gates" in state:  # read back as they are (see __setstate__)
            state["lookup_both"] = lookup.both
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if "word_kinds" in state:
            kinds = self.__dict__.pop("word_kinds")
            kinds = repeat(EXACT) if kinds is None else map(_KINDS.__getitem__, kinds)
            self.words = list(map(_tuple_new, repeat(Word), zip(self.words, kinds)))
        self.compiled = []
        self.first_terms = {}
        if hasattr(self, "exact"):
            phrases = self.key_phrases
            if isinstance(phrases, tuple):  # the flat form
                self.key_phrases = phrases = _PhraseIndex.of(phrases)
                self.phrase_keys = frozenset(phrases.words)
            else:
                self.phrase_keys = frozenset(phrases)
            if "lookup_both" in state:  # the regexes' letter sets and the lookup's automaton as built
                both = self.__dict__.pop("lookup_both")
                if self.regexes:
                    self.compiled = _Regexes(self.regexes)
                self.lookup = lookup = _Lookup(self.exact, None)
                lookup.auto = self.automaton
                lookup._gates = self.regex_gates
                lookup.both = both
                self.lookup_fa = None
            else:
                self._build_regexes()
                self.lookup = self._new_lookup()

    def _new_lookup(self) -> "_Lookup":
        """The word lookup over ``exact``, the wildcard automaton and the regexes' letter runs
        (its joint automaton built once)."""
        self.lookup_fa = None
        lookup = _Lookup(self.exact, None)
        lookup.auto = self.automaton
        lookup.gates = self.regex_gates
        return lookup

    def lookup_of(self, persian: bool) -> "_Lookup":
        """The word lookup for a message's words: Persian messages have their own (their
        words lose fewer proclitics, see :func:`~monitor.rules.morphology.word_forms`)."""
        if not persian:
            return self.lookup
        twin = self.__dict__.get("lookup_fa")
        if twin is None:
            twin = self.lookup_fa = self.lookup.persian_twin()
        return twin

    def __getattr__(self, name: str):  # noqa: ANN204 - only for attributes left out of the pickle
        if name == "word_ids" and "words" in self.__dict__:
            self.word_ids = {w: i for i, w in enumerate(self.words)}
            return self.word_ids
        if name == "term_keys":  # see _terms_key (made on first use, not pickled: keyed by id)
            self.term_keys = {}
            return self.term_keys
        if name == "term_raws":  # see _terms_key
            self.term_raws = {}
            return self.term_raws
        raise AttributeError(name)

    def build(self) -> None:
        """The word dict, the wildcard automaton, the rules each word triggers, the lookup cache."""
        words = self.words
        exact = list(map(EXACT.__eq__, map(_SECOND, words)))  # Word.kind: C-level passes (watch)
        self.exact: dict[str, int] = dict(zip(compress(map(_FIRST, words), exact), compress(count(), exact)))
        auto = ahocorasick.Automaton()
        if len(self.exact) < len(words):
            for wid, word in enumerate(words):
                if word.kind != EXACT:
                    auto.add_word(word.key(), wid)
        if len(auto):
            auto.make_automaton()
            self.automaton: ahocorasick.Automaton | None = auto
        else:
            self.automaton = None
        shared: dict[tuple[int, ...], tuple[int, ...]] = {}
        key_rules: list[tuple[int, ...] | None] = [None] * len(self.words)
        for w, rs in self.triggers.items():
            t = tuple(rs)
            key_rules[w] = shared.setdefault(t, t)
        self.key_rules = key_rules
        # word id -> (phrase word ids, rule indexes, phrase word ids, rule indexes, ...): flat,
        # one tuple per word (200,000 names: 200,000 fewer objects to pickle and read back)
        # registered flat (see _register_anchors): one tuple per word, made in C (watch)
        triggers = self.phrase_triggers
        key_phrases: dict[int, tuple] = dict(zip(triggers.keys(), map(tuple, triggers.values())))
        self.key_phrases = key_phrases
        self.phrase_keys = frozenset(key_phrases)
        self.regex_triggers = {r: tuple(rs) for r, rs in self.regex_triggers.items()}
        self.has_triggers = bool(self.triggers or self.regex_triggers or key_phrases)
        self.triggers = {}
        self.phrase_triggers = {}
        self._build_regexes()
        self.lookup = self._new_lookup()

    def _build_regexes(self) -> None:
        # The letters each regex needs (regexes.required_literal_sets: for each set, one of
        # its runs must be in the text's words): every set gets a negative id, which the word
        # lookup adds to a token holding one of its runs (once per distinct word: cached), so a
        # message's scan knows at no extra cost which sets it satisfies (_Scan.gates_found).
        # A regex whose sets are not all satisfied cannot match: it is not run (regex_need[rid]:
        # its set ids, None when it has none: always run when asked about).
        set_ids: dict[tuple[str, ...], int] = {}
        need: list[frozenset[int] | None] = []
        for pattern in self.regexes:
            sets = required_literal_sets(pattern)
            need.append(frozenset([set_ids.setdefault(s, -2 - len(set_ids)) for s in sets]) if sets else None)
        self.regex_need: tuple[frozenset[int] | None, ...] = tuple(need)
        self.gate_ids: frozenset[int] = frozenset(set_ids.values())
        by_run: dict[str, list[int]] = {}
        for s, i in set_ids.items():
            for run in s:
                by_run.setdefault(run, []).append(i)
        auto = None
        if by_run:
            auto = ahocorasick.Automaton()
            for run, ids in by_run.items():
                auto.add_word(run, tuple(ids))
            auto.make_automaton()
        self.regex_gates = auto
        lookup = self.__dict__.get("lookup")
        if lookup is not None:
            lookup.gates = auto
            lookup.set_hot_ids(None)  # the gate ids may have changed: classified again when next needed
            self.lookup_fa = None  # made again from lookup when next needed
        # (regex id, the letter sets it needs or None, rules anchored on it) per anchor regex
        self.regex_anchors: tuple[tuple[int, frozenset[int] | None, tuple[int, ...]], ...] = tuple(
            (r, need[r], tuple(rs)) for r, rs in self.regex_triggers.items()
        )
        if self.regexes:
            self.compiled = _Regexes(self.regexes)

    def hot_ids(self) -> frozenset[int]:
        """The ids a word's lookup value may hold that can make a rule a candidate by itself:
        the words rules are anchored on (``key_rules``) and the words that key anchor phrases.
        A message none of whose words holds one has no candidate from its words (see
        :class:`_Scan`); from its anchor regexes with letters only when all of one's letter
        sets were found (see :meth:`gate_needs`)."""
        # a word's rules are a non-empty tuple, None when it anchors none: compress reads the
        # truth at C level; the phrase keys' set is copied as a table, not rebuilt
        return self.phrase_keys.union(compress(count(), self.key_rules))

    def gate_needs(self) -> "dict[int, tuple[frozenset[int], ...]]":
        """The letter sets each anchor regex with letters needs (all of them must be found for
        it to run; the other regexes run only when a candidate rule asks), by the smallest id."""
        needs: dict[int, list[frozenset[int]]] = {}
        for _, need, _ in self.regex_anchors:
            if need and need not in needs.setdefault(min(need), []):
                needs[min(need)].append(need)
        return {g: tuple(v) for g, v in needs.items()}

    @property
    def pattern_count(self) -> int:
        return len(self.exact) + (len(self.automaton) if self.automaton is not None else 0)

    def memory_estimate(self) -> int:
        """Bytes of the compiled patterns (an estimate: dict, automaton, regex programs)."""
        n = sys.getsizeof(self.exact) + sum(sys.getsizeof(k) + 28 for k in self.exact)
        n += sum(sys.getsizeof(w) + 100 for w in self.words)
        if self.automaton is not None:
            n += self.automaton.get_stats()["total_size"]
        n += sum(8_000 + 40 * len(p) for p in self.regexes)  # RE2 programs, roughly
        return n

    @property
    def eager(self) -> bool:
        return self.has_triggers


_KINDS = (EXACT, PREFIX, SUFFIX, INFIX)
_KIND_CODES = {k: i for i, k in enumerate(_KINDS)}
_tuple_new = tuple.__new__


class _PhraseIndex(dict):
    """A field's ``key_phrases`` read back from a pickle: word id -> the flat ``(phrase word
    ids, rule indexes, ...)`` tuple, decoded from one flat array when first asked for (through
    ``[]``: the matcher asks only for the words in ``phrase_keys``). 200,000 names: ~60,000
    words and ~200,000 phrases that a read-back no longer makes as objects."""

    __slots__ = ("words", "starts", "data", "rule_sets")

    @staticmethod
    def flat(phrases: "dict[int, tuple]") -> tuple:
        """``(words, starts, data, rule sets)``: the sorted word ids (``uint32`` bytes), where
        each word's entries start in ``data`` (``uint32``: the number of entries, then per entry
        the phrase's length, its word ids and the index of its rule tuple in ``rule sets``)."""
        if isinstance(phrases, _PhraseIndex):  # read back and pickled again: its flat form is whole
            return (phrases.words.tobytes(), phrases.starts.tobytes(), phrases.data.tobytes(), phrases.rule_sets)
        words = sorted(phrases)
        starts = array("I")
        data = array("I")
        index: dict[int, int] = {}  # id(rule tuple) -> its index
        rule_sets: list[tuple[int, ...]] = []
        for w in words:
            entries = phrases[w]
            starts.append(len(data))
            data.append(len(entries) // 2)
            for i in range(0, len(entries), 2):
                wids, rules = entries[i], entries[i + 1]
                k = index.get(id(rules))
                if k is None:
                    k = index[id(rules)] = len(rule_sets)
                    rule_sets.append(rules)
                data.append(len(wids))
                data.extend(wids)
                data.append(k)
        return (array("I", words).tobytes(), starts.tobytes(), data.tobytes(), tuple(rule_sets))

    @classmethod
    def of(cls, flat: tuple) -> "_PhraseIndex":
        out = cls()
        out.words, out.starts, out.data = array("I"), array("I"), array("I")
        out.words.frombytes(flat[0])
        out.starts.frombytes(flat[1])
        out.data.frombytes(flat[2])
        out.rule_sets = flat[3]
        return out

    def __missing__(self, word: int) -> tuple:
        words = self.words
        i = bisect_left(words, word)
        if i == len(words) or words[i] != word:
            raise KeyError(word)
        data, rule_sets = self.data, self.rule_sets
        at = self.starts[i]
        got: list = []
        for _ in range(data[at]):
            n = data[at + 1]
            got += (tuple(data[at + 2 : at + 2 + n]), rule_sets[data[at + 2 + n]])
            at += n + 2
        value = self[word] = tuple(got)
        return value

    def __reduce__(self) -> tuple:
        return (_PhraseIndex.of, (_PhraseIndex.flat(self),))


class _Regexes(list):
    """Each regex of a field compiled on first use (or by :meth:`Matcher.prepare`):
    ``compiled[regex id]``; :meth:`search` says whether it matches a normalised text."""

    def __init__(self, patterns: list[str]) -> None:
        super().__init__([None] * len(patterns))
        self.patterns = patterns
        self.programs: list = [None] * len(patterns)  # see search_utf8

    def search(self, i: int, text: str) -> bool:
        return self[i].search(text) is not None

    def search_utf8(self, i: int, data: bytes) -> bool:
        """:meth:`search` of ``data.decode()``, asking RE2's program directly: the text of a
        message is encoded once for all its regexes, and no match object is made (the
        ``re2`` module's ``search`` encodes the text, maps the offsets back and builds a
        match object each time: ~2 of a regex's ~4 µs)."""
        match = self.programs[i]
        if match is None:
            compiled = self[i]
            match = getattr(getattr(compiled, "_regexp", None), "Match", None)
            if match is None or _UNANCHORED is None:  # another version of the module
                return compiled.search(data.decode("utf-8")) is not None
            self.programs[i] = match
        return match(_UNANCHORED, data, 0, len(data))[0][0] >= 0

    def __getitem__(self, i):  # noqa: ANN001, ANN204
        got = list.__getitem__(self, i)
        if got is None:
            got = compile_regex(self.patterns[i])
            self[i] = got
        return got

    def __reduce__(self):  # noqa: ANN204 - never pickled with the programs
        return (_Regexes, (self.patterns,))


class _Alts:
    """Alternative terms (an ``any`` list or one ``near`` group) compiled for the per-message
    questions "is one of them here" and "where do they start".

    One-word terms are one frozenset (tested against the message's found words at C speed);
    phrases are indexed by their first word, so only phrases whose first word was found are
    followed. Interned per field by content: rules that use the same actor or list share one
    object, and its per-message answers are computed once (memo on the :class:`_Scan`)."""

    __slots__ = ("uid", "singles", "by_first", "keys", "_terms")
    LAZY_MIN = 64  # alternatives with this many terms are pickled as their terms (see __reduce__)

    def __init__(self, uid: int, term_wids: "frozenset[tuple[int, ...]]") -> None:
        self.uid = uid
        self._build(term_wids)

    def __reduce__(self) -> tuple:
        """Large alternatives (a watch list's names) are pickled as their terms (the phrases'
        tuples are the selection's, already in the pickle): read back, the per-first-word
        index and the sets are built when a message first asks (a few hundred µs for 200
        names), not for every list of the set on every read-back."""
        try:
            terms = object.__getattribute__(self, "_terms")
        except AttributeError:
            terms = None
            if len(self.singles) + sum(map(len, self.by_first.values())) >= self.LAZY_MIN:
                terms = (*((w,) for w in sorted(self.singles)), *chain.from_iterable(self.by_first.values()))
        if terms is not None:
            return (_lazy_alts, (self.uid, terms))
        state = {k: object.__getattribute__(self, k) for k in ("uid", "singles", "by_first", "keys")}
        return (copyreg.__newobj__, (_Alts,), (None, state))

    def _build(self, term_wids: "frozenset[tuple[int, ...]]") -> None:
        terms = sorted(term_wids)
        lens = list(map(len, terms))
        if 1 in lens:
            self.singles = frozenset([w[0] for w, n in zip(terms, lens) if n == 1])
            terms = [w for w, n in zip(terms, lens) if n > 1]
        else:
            self.singles = _NOTHING
        # phrases by first word (ascending), each group in sorted order: sorted, so contiguous
        self.by_first = {k: tuple(g) for k, g in groupby(terms, _FIRST)}
        self.keys = frozenset(self.by_first)

    def present(self, scan: "_Scan") -> bool:
        found = scan.found
        if not self.singles.isdisjoint(found):
            return True
        if self.keys:
            by_first = self.by_first
            # the phrases all of whose words were found (term_spans would say [] at once
            # otherwise), picked at C level: a phrase's words are tested in one call
            issuperset = found.issuperset
            for k in self.keys.intersection(found):
                for p in filter(issuperset, by_first[k]):
                    if scan.term_spans(p):
                        return True
        return False

    def starts(self, scan: "_Scan") -> list[int]:
        found = scan.found
        out: set[int] = set()
        for w in self.singles.intersection(found):
            out.update([s for s, _ in scan.occurrences(w)])
        if self.keys:
            by_first = self.by_first
            for k in self.keys.intersection(found):
                for p in by_first[k]:
                    out.update([s for s, _ in scan.term_spans(p)])
        return sorted(out)


class _LazyAlts(_Alts):
    """An :class:`_Alts` read back from its terms (see :meth:`_Alts.__reduce__`): its sets are
    built when first asked for. (Only this class has a ``__getattr__``: the unpickler's look-up
    of ``__setstate__`` on each of the ~15,000 small alternatives read back by their slots
    stays in C.)"""

    __slots__ = ()

    def __getattr__(self, name: str):  # noqa: ANN204 - only while unset
        if name in ("singles", "by_first", "keys"):
            try:
                terms = object.__getattribute__(self, "_terms")
            except AttributeError:
                raise AttributeError(name) from None
            self._build(frozenset(terms))
            del self._terms
            return object.__getattribute__(self, name)
        raise AttributeError(name)


def _lazy_alts(uid: int, terms: "Sequence[tuple[int, ...]]") -> _Alts:
    """An :class:`_Alts` read back from its terms (any sequence of word-id tuples); its sets
    are built on first use."""
    out = _LazyAlts.__new__(_LazyAlts)
    out.uid = uid
    out._terms = terms
    return out


class _Sel:
    """A selection compiled against its field's word and regex ids."""

    __slots__ = (
        "sel", "field", "op", "singles", "phrases", "term_wids", "regex_ids", "within", "groups", "name", "cost",
        "anchors", "anchor_terms", "anchor_regex", "alts", "galts", "uid", "first_terms", "first_keys",
    )

    def __init__(self, sel: Selection, index: _FieldIndex, intern: "_Interner") -> None:
        self.sel = sel
        self.name = sel.name
        self.field = sel.field
        self.op = sel.op
        self.within = sel.within
        terms = intern.terms(index, sel.terms)  # word ids and (rarest word, its cost) of each term
        self.term_wids: tuple[tuple[int, ...], ...] = terms.wids
        all_op = sel.op == "all"
        # empty sets are one shared object (_NOTHING): pickled once, not 30,000 times
        self.singles = frozenset(w[0] for w in self.term_wids if len(w) == 1) or _NOTHING if all_op else _NOTHING
        self.phrases = tuple(w for w in self.term_wids if len(w) > 1) if all_op else ()
        self.regex_ids = frozenset(index.regex_id(p) for p in sel.regexes) if sel.regexes else _NOTHING
        self.groups = [list(g) for g in sel.groups] if sel.groups else _NO_GROUPS  # one shared empty list: pickled once
        self.first_terms: dict[int, int | tuple[int, ...]] | None = None  # for _explain, built on first use (_first_index)
        self.first_keys: frozenset[int] = _NOTHING
        self.alts: _Alts | None = None
        self.galts: tuple[_Alts, ...] = ()
        if sel.op == "any":
            self.alts = intern.alts_of(sel.field, self.term_wids)
            key: tuple = (sel.field, "any", self.alts.uid)
        elif sel.op == "near":
            self.galts = tuple(intern.alts(sel.field, [self.term_wids[t] for t in g]) for g in sel.groups)
            key = (sel.field, "near", sel.within, tuple(g.uid for g in self.galts))
        elif sel.op == "all":
            key = (sel.field, "all", frozenset(self.term_wids))
        else:
            key = (sel.field, "regex", self.regex_ids)
        self.uid = intern.selection(key)
        # anchor words: the rarest word of each term (any), of the cheapest term (all) or of
        # each alternative of the cheapest group (near)
        # anchor_terms: for each anchor word, the words of the phrase it was taken from (all
        # of them must be found for the phrase to match) or None for a one-word term; None
        # when every anchor is a one-word term. Both are dropped once the rule is registered.
        self.anchor_terms: tuple[tuple[int, ...] | None, ...] | None = None
        if sel.op == "regex":
            self.cost = REGEX_COST * len(sel.regexes)
            self.anchor_regex = True
            self.anchors: tuple[int, ...] = tuple(self.regex_ids)
        else:
            self.anchor_regex = False
            rarest = terms.rarest  # (word index, cost) per term
            if sel.op == "any":
                self.cost, self.anchors, self.anchor_terms = terms.any_anchors()
            elif sel.op == "near":
                costs = [sum(rarest[t][1] for t in g) for g in sel.groups]
                g = sel.groups[costs.index(min(costs))]
                self.cost = min(costs)
                self.anchors = tuple([self.term_wids[t][rarest[t][0]] for t in g])
                self.anchor_terms = _phrases_of([self.term_wids[t] for t in g])
            else:
                costs = [c for _, c in rarest]
                t = costs.index(min(costs))
                self.cost = costs[t]
                self.anchors = (self.term_wids[t][rarest[t][0]],)
                self.anchor_terms = _phrases_of([self.term_wids[t]])

    def found_terms(self, found: set[int], index: "_FieldIndex") -> list[int]:
        """Indexes (ascending) of the terms whose first word was found."""
        if self.first_terms is None:
            term_wids = self.term_wids
            # built on first use, once per shared tuple of terms (a list's 200 names are
            # referenced by 10 rules: one dict, not ten; a few terms too: one set
            # intersection answers then, not a test per term)
            shared = index.first_terms
            got = shared.get(id(self.term_wids))
            if got is None:
                first = _first_index(self.term_wids)
                got = shared[id(self.term_wids)] = (first, frozenset(first))
            self.first_terms, self.first_keys = got
        keys = self.first_keys.intersection(found)
        if not keys:
            return []
        first = self.first_terms
        out: list[int] = []
        for k in keys:
            t = first[k]
            if t.__class__ is int:
                out.append(t)
            else:
                out.extend(t)
        if len(out) > 1:
            out.sort()
        return out


def _first_index(term_wids: "Sequence[tuple[int, ...]]") -> dict[int, "int | tuple[int, ...]"]:
    """First word id -> the index of the term that starts with it, or the indexes (ascending,
    a tuple) when several do. Built by C-level passes (a list of 3,000 actor names is indexed
    when a message first asks: a Python loop over its terms cost ~1 ms)."""
    firsts = list(map(itemgetter(0), term_wids))
    last = dict(zip(firsts, count()))  # each first word -> its last term
    if len(last) == len(firsts):  # every first word starts one term
        return last
    first = dict(zip(reversed(firsts), range(len(firsts) - 1, -1, -1)))  # -> its first term
    multi = set(compress(last.keys(), map(ne, last.values(), map(first.__getitem__, last.keys()))))
    groups: dict[int, list[int]] = {}
    for t in compress(count(), map(multi.__contains__, firsts)):
        groups.setdefault(firsts[t], []).append(t)
    for k, ts in groups.items():
        last[k] = tuple(ts)
    return last


def _phrases_of(term_wids: "Sequence[tuple[int, ...]]") -> tuple[tuple[int, ...] | None, ...] | None:
    """Per term: its word ids when it has several words, else None; None when none has."""
    if max(map(len, term_wids), default=0) <= 1:
        return None
    return tuple([w if len(w) > 1 else None for w in term_wids])


class _Terms:
    """A tuple of terms compiled against a field: each term's word ids (``wids``, a tuple
    shared by content) and rarest word ``(index, cost)`` (``rarest``)."""

    __slots__ = ("wids", "rarest", "_any")

    def __init__(self, wids: tuple[tuple[int, ...], ...], rarest: tuple[tuple[int, float], ...]) -> None:
        self.wids = wids
        self.rarest = rarest
        self._any: tuple | None = None

    def any_anchors(self) -> tuple[float, tuple[int, ...], tuple[tuple[int, ...] | None, ...] | None]:
        """An ``any`` selection's cost (the sum of its terms' costs), anchor words (the
        rarest word of each term) and the phrase of each anchor (see :func:`_phrases_of`)."""
        if self._any is None:
            rarest = self.rarest
            self._any = (  # C-level passes (a list's 200 names); the same sum, in the same order
                sum(map(_SECOND, rarest)),
                tuple(map(getitem, self.wids, map(_FIRST, rarest))),
                _phrases_of(self.wids),
            )
        return self._any


class _Interner:
    """Shares compiled alternatives and selection keys between rules (see :class:`_Alts`)."""

    def __init__(self) -> None:
        self._alts: dict[tuple[str, frozenset[tuple[int, ...]]], _Alts] = {}
        self._alts_by_wids: dict[tuple[str, int], _Alts] = {}  # (field, id(shared wids tuple))
        self._sels: dict[tuple, int] = {}
        # (field, id(terms tuple)) -> compiled: the selections that reference one list share
        # its tuple (see loader._terms), so a list of 200 names referenced by 10 rules is
        # compiled once; other tuples by their terms' ids
        self._tuples: dict[tuple, _Terms] = {}
        self._shared: dict[tuple, tuple] = {}
        self._cost: dict[Word, float] = {}
        self._by_id: dict[str, list[float]] = {}  # field -> the cost of each word id (see _id_costs)
        # (field, id(a list's terms)) -> each word of each term as its id in the field, given
        # before any rule is compiled (see Matcher._seed_lists)
        self.seeded: dict[tuple[str, int], Sequence[int]] = {}

    def _id_costs(self, index: _FieldIndex) -> list[float]:
        """The cost of each word of ``index`` by its id (the words given ids since the last
        call priced now: :func:`~monitor.rules.anchors.word_cost`, once per word)."""
        got = self._by_id.get(index.name)
        if got is None:
            got = self._by_id[index.name] = []
        words = index.words
        if len(got) < len(words):
            costs = self._cost
            for w in words[len(got):]:
                c = costs.get(w)
                if c is None:
                    c = costs[w] = word_cost(w)
                got.append(c)
        return got

    def shared(self, value: tuple) -> tuple:
        """One tuple per content (the selections that reference the same list share it)."""
        return self._shared.setdefault(value, value)

    def terms(self, index: _FieldIndex, terms: tuple[Term, ...]) -> _Terms:
        key = (index.name, id(terms))
        got = self._tuples.get(key)
        if got is None and isinstance(terms, ListTerms):  # a list's flat form (no Term objects)
            wids, rarest = self._compile_flat(index, terms)
            got = self._tuples[key] = _Terms(self.shared(wids), rarest)
        if got is None:
            key2 = (index.name, tuple(map(id, terms)))
            got = self._tuples.get(key2)
            if got is None:
                wids, rarest = self._compile(index, terms)
                got = _Terms(self.shared(wids), rarest)
                self._tuples[key2] = got
            self._tuples[key] = got
        return got

    def _compile(
        self, index: _FieldIndex, terms: tuple[Term, ...]
    ) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, float], ...]]:
        """Word ids and rarest word (as :func:`~monitor.rules.anchors.rarest_word`: the first
        cheapest) of each term, the words of all terms looked up at once."""
        if isinstance(terms, ListTerms):
            return self._compile_flat(index, terms)
        per_term = list(map(_TERM_WORDS, terms))
        flat = list(chain.from_iterable(per_term))
        word_ids = index.word_ids
        costs = self._cost
        distinct = dict.fromkeys(flat)
        if not word_ids.keys() >= distinct.keys():  # new words: ids in order of first occurrence
            word_id = index.word_id
            for w in distinct:
                if w not in word_ids:
                    word_id(w)
        missing = set(distinct).difference(costs)  # (not keys() - keys(): that walks all of costs)
        if missing:
            for w in missing:
                costs[w] = word_cost(w)
        wid = word_ids.__getitem__
        cost = costs.__getitem__
        if len(flat) == len(per_term):  # one word each
            return tuple(zip(map(wid, flat))), tuple(zip(repeat(0), map(cost, flat)))
        wids = tuple([tuple(map(wid, words)) for words in per_term])
        rarest: list[tuple[int, float]] = []
        append = rarest.append
        for words in per_term:
            if len(words) == 1:
                append((0, cost(words[0])))
            else:
                c = list(map(cost, words))
                m = min(c)
                append((c.index(m), m))
        return wids, tuple(rarest)

    def _compile_flat(
        self, index: _FieldIndex, terms: ListTerms
    ) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, float], ...]]:
        """:meth:`_compile` of a watch list's terms from their flat form (see
        :meth:`~monitor.rules.lists.ListTerms.flat`): the distinct words looked up once, then
        each term's word ids and (first) cheapest word by C-level passes over the numbers. The
        same ids, in the same order, and the same results."""
        words, ids, counts = terms.flat()
        gids = self.seeded.get((index.name, id(terms)))  # numbered before the rules (watch)
        if gids is None:
            gl = list(map(index.word_ids.get, words))
            if None in gl:  # new words: ids in order of first occurrence
                word_id = index.word_id
                gl = [word_id(w) if g is None else g for g, w in zip(gl, words)]
            gids = list(map(gl.__getitem__, ids))
        pre = getattr(terms, "_pre", None)  # each term's rarest word, from the lists' child (watch)
        if pre is not None:
            return (tuple(zip(gids)) if len(ids) == len(counts) else tuple(map(tuple, map(islice, repeat(iter(gids)), counts)))), pre
        cs = list(map(self._id_costs(index).__getitem__, gids))  # by word id: no second look-up by word
        if len(ids) == len(counts):  # one word each
            return tuple(zip(gids)), tuple(zip(repeat(0), cs))
        it = iter(gids)
        wids = tuple(map(tuple, map(islice, repeat(it), counts)))
        rarest: list[tuple[int, float]] = []
        append = rarest.append
        at = 0
        for k in counts:
            if k == 1:
                append((0, cs[at]))
            else:
                c = cs[at : at + k]
                m = min(c)
                append((c.index(m), m))
            at += k
        return wids, tuple(rarest)

    def alts_of(self, field: str, term_wids: tuple[tuple[int, ...], ...]) -> _Alts:
        """:meth:`alts` of a shared ``wids`` tuple (by identity first)."""
        key = (field, id(term_wids))
        got = self._alts_by_wids.get(key)
        if got is None:
            got = self._alts_by_wids[key] = self.alts(field, term_wids)
        return got

    def alts(self, field: str, term_wids: "Sequence[tuple[int, ...]]") -> _Alts:
        key = (field, frozenset(term_wids))
        got = self._alts.get(key)
        if got is None:
            got = self._alts[key] = _Alts(len(self._alts), key[1])
        return got

    def selection(self, key: tuple) -> int:
        uid = self._sels.get(key)
        if uid is None:
            uid = self._sels[key] = len(self._sels)
        return uid


class _Sources:
    """A rule's ``sources:`` compiled: whole platforms, literal channel names in a dict,
    globs tried one by one. Interned, so rules with the same accounts share the answer."""

    __slots__ = ("uid", "platforms", "exact", "globs", "literals")

    def __init__(self, uid: int, patterns: tuple) -> None:
        self.uid = uid
        self.platforms = frozenset(p.platform for p in patterns if p.glob is None)
        self.exact: set[tuple[str, str]] = set()
        self.globs: dict[str, list] = {}  # platform -> patterns the dict cannot answer
        self.literals: dict[str, list] = {}  # platform -> the dict's patterns (for non-ASCII values)
        for p in patterns:
            if p.glob is None:
                continue
            if p.glob.isascii() and not any(c in p.glob for c in "*?["):
                self.exact.add((p.platform, p.glob.lower()))
                self.literals.setdefault(p.platform, []).append(p)
            else:
                self.globs.setdefault(p.platform, []).append(p)

    def matches(self, msg: Message) -> bool:
        platform = msg.platform
        if platform in self.platforms:
            return True
        exact = self.exact
        ascii_only = True
        for value in (msg.channel, msg.channel_id, msg.channel_title):
            if value:
                v = str(value).lstrip("@")
                if not v.isascii():
                    ascii_only = False
                elif (platform, v.lower()) in exact:
                    return True
        for p in self.globs.get(platform, ()):
            if p.matches(msg):
                return True
        if not ascii_only:  # re's case folding of non-ASCII text: ask each literal pattern
            for p in self.literals.get(platform, ()):
                if p.matches(msg):
                    return True
        return False


MAX_CONDITION_DEPTH = 40  # deeper conditions run as bytecode (run_program), not as a Python function


def _at_least(truth: Callable[[int], bool], need: int, idxs: tuple[int, ...]) -> bool:
    got = 0
    left = len(idxs)
    for i in idxs:
        if truth(i):
            got += 1
            if got >= need:
                return True
        left -= 1
        if got + left < need:
            return False
    return got >= need


def condition_source(tree: tuple, index: dict[str, int]) -> str | None:
    """A condition as a Python expression of ``t(i)`` calls (same short-circuit order as its
    bytecode), or None when it is nested too deeply to compile that way."""

    def expr(node: tuple, depth: int) -> str:
        if depth > MAX_CONDITION_DEPTH:
            raise RecursionError
        kind = node[0]
        if kind == "sel":
            return f"t({index[node[1]]})"
        if kind == "not":
            return f"(not {expr(node[1], depth + 1)})"
        if kind in ("and", "or"):
            return "(" + f" {kind} ".join(expr(n, depth + 1) for n in node[1]) + ")"
        need, names = node[1], node[2]
        return f"_at_least(t, {int(need)}, {tuple(index[n] for n in names)!r})"

    try:
        return expr(tree, 0)
    except RecursionError:
        return None


_CONDITION_FUNCTIONS: dict[str, Callable[[Callable[[int], bool]], bool]] = {}


def _condition_function(source: str | None) -> Callable[[Callable[[int], bool]], bool] | None:
    """The condition as a function (one per distinct source: 10,000 rules have a few shapes,
    ``(t(0) and t(1)) or t(2)``, and ``eval`` costs ~50 µs)."""
    if source is None:
        return None
    fn = _CONDITION_FUNCTIONS.get(source)
    if fn is None:
        if len(_CONDITION_FUNCTIONS) >= 10_000:
            _CONDITION_FUNCTIONS.clear()
        fn = _CONDITION_FUNCTIONS[source] = eval(f"lambda t: {source}", {"_at_least": _at_least})  # noqa: S307 - built from the parsed tree
    return fn


class _CondRef:
    """A condition function in a pickle: read back as :func:`_condition_function` of ``source``
    (one object per source, so a pickle holds each shape's once)."""

    __slots__ = ("source",)

    def __init__(self, source: str | None) -> None:
        self.source = source

    def __reduce__(self) -> tuple:
        return (_condition_function, (self.source,))


_COND_REFS: dict[str | None, _CondRef] = {}


def _cond_ref(source: str | None) -> _CondRef:
    got = _COND_REFS.get(source)
    if got is None:
        if len(_COND_REFS) >= 10_000:
            _COND_REFS.clear()
        got = _COND_REFS[source] = _CondRef(source)
    return got


class _Rule:
    __slots__ = (
        "rule", "sels", "program", "positive", "sources", "languages", "hit", "cond_src", "test", "gates", "fast", "explain",
    )

    def __reduce_ex__(self, protocol: object) -> tuple:
        """``object.__new__`` and the slots, set by the unpickler in C (no Python call per rule
        read back); the condition function as a reference that is read back as
        :func:`_condition_function` of its source (once per shape in a pickle)."""
        state = {k: getattr(self, k) for k in self.__slots__ if k not in ("test", "fast", "explain")}
        state["test"] = _cond_ref(self.cond_src)
        state["fast"] = state["explain"] = None
        return (copyreg.__newobj__, (_Rule,), (None, state))

    def __init__(
        self, rule: Rule, sels: list[_Sel], default_destinations: tuple[str, ...], sources: "_Sources | None",
        shapes: dict | None = None,
    ) -> None:
        self.rule = rule
        self.sels = sels
        # the program and the Python source of a condition depend only on its text and the
        # selection names in order (the tree is parsed from them): rules of one shape share them
        shape = (rule.condition.source, tuple([s.name for s in sels]))
        got = shapes.get(shape) if shapes is not None else None
        if got is None:
            index = {s.name: i for i, s in enumerate(sels)}
            got = (rule.condition.program(index), condition_source(rule.condition.tree, index))
            if shapes is not None:
                shapes[shape] = got
        self.program, self.cond_src = got
        self.test = _condition_function(self.cond_src)
        self.fast: tuple | None = None  # (condition with inlined word tests, uses the text's words): first use
        self.explain: tuple | None = None  # see _explain_plan: on the first hit whose matches are read
        self.positive = [i for i, s in enumerate(sels) if s.name in rule.condition.positive]
        self.sources = sources
        self.languages = rule.languages
        self.gates: tuple[tuple[frozenset[int], tuple[str, ...]], ...] | None = None  # see _rule_gates
        self.hit = dict(
            rule_id=rule.id,
            rule_hash=rule.hash,
            level=rule.level,
            title=rule.title,
            destinations=tuple(rule.alert) or default_destinations,
            throttle_seconds=rule.throttle,
            tags=tuple(rule.tags),
            kind=rule.kind,
            score=None,  # a rule's hit has no probability (the classifier's hit has: monitor/rules/classifier.py); _lazy_hit must set every slot
        )


_CALL = re.compile(r"\bt\((\d+)\)")
# inlined condition source (with its parameter names) -> a factory taking the word sets: the
# rules of one shape share one compiled function (``eval`` costs ~0.3 ms, 10,000 rules 3 s)
_FAST_FACTORIES: dict[str, Callable[..., Callable]] = {}


def _fast_test(cr: _Rule) -> tuple[Callable[[Callable[[int], bool], "set[int] | frozenset[int]"], bool], bool]:
    """The rule's condition as ``f(t, found)``: a selection on the text is tested in place
    where the found words decide it or rule it out (``found``: the text's found words):

    * an ``any`` of one-word terms only -> ``not singles.isdisjoint(found)`` (what
      :meth:`_Alts.present` answers); with phrases, one none of whose single words and phrase
      first words was found is false without a call, otherwise ``t`` decides;
    * a ``near``: false without a call when its smallest group has none of its single words
      and phrase first words found (what :func:`_evaluate` would find), else ``t`` (one group
      only: the source stays short, each shape's ``eval`` cheap);
    * an ``all``: false without a call unless every word of its terms was found; ``t``
      decides only when it has phrases (their order), else the subset test is the answer.

    Every other selection goes through ``t`` (memoised per message). Returns ``(f, whether f
    uses found)``."""
    if cr.cond_src is None:  # nested too deeply for a Python expression
        program = cr.program
        return (lambda t, found: run_program(program, t)), False
    # what the inlining below depends on: the source and, per selection, its inlined form
    # (see _inline_code). Rules of one shape (10,000 generated rules: a few dozen) share the
    # rewritten source (no regex substitution per rule)
    shape = (cr.cond_src, tuple([_inline_code(s) for s in cr.sels]))
    got = _FAST_SHAPES.get(shape)
    if got is None:
        got = _fast_shape(cr.cond_src, shape[1])
        if len(_FAST_SHAPES) >= 10_000:
            _FAST_SHAPES.clear()
        _FAST_SHAPES[shape] = got
    factory, sel_of_param = got
    if factory is None:
        test = cr.test
        return (lambda t, found: test(t)), False
    sels = cr.sels
    return factory(*[_inline_value(sels[i], part) for i, part in sel_of_param]), True


def _inline_code(s: _Sel) -> "int | tuple":
    """How :func:`_fast_test` inlines selection ``s``: 0 not at all; an ``any``: 1 + no phrase
    keys + 2 * no single words; a ``near``: ``("n", its smallest group, that group's code)``;
    an ``all``: ``("a", whether it has phrases)``."""
    if s.field != "text":
        return 0
    alts = s.alts
    if alts is not None:
        return 1 + (not alts.keys) + 2 * (not alts.singles)
    if s.op == "near" and s.galts:
        g = _smallest_group(s.galts)
        alts = s.galts[g]
        return ("n", g, 1 + (not alts.keys) + 2 * (not alts.singles))
    if s.op == "all" and s.term_wids:
        return ("a", bool(s.phrases))
    return 0


def _inline_value(s: _Sel, part: "tuple") -> frozenset[int]:
    """The word set of one parameter of :func:`_fast_shape`: ``("s",)`` / ``("k",)`` an
    ``any``'s single words / phrase keys, ``("s", g)`` / ``("k", g)`` those of a ``near``'s
    group ``g``, ``("a",)`` every word of an ``all``'s terms."""
    kind = part[0]
    if kind == "a":
        return frozenset(chain.from_iterable(s.term_wids))
    alts = s.alts if len(part) == 1 else s.galts[part[1]]
    return alts.singles if kind == "s" else alts.keys  # type: ignore[union-attr]


def _smallest_group(galts: "tuple[_Alts, ...]") -> int:
    """The index of the ``near`` group with the fewest alternatives (the first of equals); a
    large one read back unbuilt is counted by its terms (not built for the count)."""
    sizes = []
    for a in galts:
        try:
            sizes.append(len(object.__getattribute__(a, "_terms")))
        except AttributeError:
            sizes.append(len(a.singles) + sum(map(len, a.by_first.values())))
    return sizes.index(min(sizes))


# (condition source, per selection its inlined form, see _inline_code) -> (factory or None,
# per parameter: (selection index, which word set, see _inline_value)); see _fast_test
_FAST_SHAPES: dict[tuple, tuple] = {}


def _alts_test(code: int, s: str, k: str, then: str) -> str:
    """The inlined test of alternatives with single words ``s`` and phrase keys ``k`` (their
    code as in :func:`_inline_code`): ``then`` decides when only a phrase key was found."""
    if code == 2:  # no phrase keys
        return f"not {s}.isdisjoint(found)"
    if code == 3:  # no single words
        return f"(not {k}.isdisjoint(found) and {then})"
    return f"(not {s}.isdisjoint(found) or (not {k}.isdisjoint(found) and {then}))"


def _fast_shape(cond_src: str, codes: tuple) -> tuple:
    """The factory of :func:`_fast_test` for a condition source and its selections' inlined
    forms, and the word set each of its parameters takes."""
    params: list[str] = []
    sel_of_param: list[tuple[int, tuple]] = []

    def param(name: str, i: int, part: tuple) -> str:
        if name not in params:  # a selection named twice in the condition: one parameter
            params.append(name)
            sel_of_param.append((i, part))
        return name

    def inline(m: re.Match[str]) -> str:
        i = int(m.group(1))
        code = codes[i]
        if code == 0:
            return m.group(0)
        if isinstance(code, int):  # any
            s = param(f"s{i}", i, ("s",)) if code != 3 else ""
            k = param(f"k{i}", i, ("k",)) if code != 2 else ""
            return f"({_alts_test(code, s, k, f't({i})')})"
        if code[0] == "n":  # near: its smallest group needs a word found, then t decides
            _, g, gc = code
            s = param(f"s{i}", i, ("s", g)) if gc != 3 else ""
            k = param(f"k{i}", i, ("k", g)) if gc != 2 else ""
            return f"({_alts_test(gc, s, k, 'True')} and t({i}))"
        a = param(f"a{i}", i, ("a",))  # all: every word of its terms found
        return f"({a} <= found and t({i}))" if code[1] else f"({a} <= found)"

    source = _CALL.sub(inline, cond_src)
    if not params:
        return None, ()
    factory = _FAST_FACTORIES.get(source)
    if factory is None:
        if len(_FAST_FACTORIES) >= 10_000:
            _FAST_FACTORIES.clear()
        factory = _FAST_FACTORIES[source] = eval(  # noqa: S307 - built from the parsed tree
            f"lambda {', '.join(params)}: lambda t, found: {source}", {"_at_least": _at_least}
        )
    return factory, tuple(sel_of_param)


class _Scan:
    """One field of one message: the term words found; positions and spans on demand.

    Positions are word (token) indexes of :func:`scan_text`; a match covers tokens
    ``[start, end)``: one token, or two for a Persian word written in two pieces."""

    __slots__ = (
        "index", "text", "st", "tokens", "sets", "extra", "found", "_positions", "_bounds", "_regex", "_spans",
        "_present", "_starts", "gates_found", "_norm", "_utf8", "matched", "cold",
    )

    def __init__(self, index: _FieldIndex, text: str, persian: bool = False, lazy: bool = False) -> None:
        self.index = index
        self.text = text
        self._present: dict[int, bool] | None = None  # memos, made on first use
        self._starts: dict[int, list[int]] | None = None
        self._positions: dict[int, list[tuple[int, int]]] | None = None
        self._bounds: list[int] | None = None  # start offsets of the first tokens (see _start)
        self._regex: dict[int, bool] | None = None  # regex id -> matches (see regex_match)
        self._norm: str | None = None  # normalize(text), for the regexes
        self._utf8: bytes | None = None  # the same, encoded
        self.matched: dict[tuple[str, int], tuple[int, tuple[Match, ...]]] | None = None  # see _term_match_objects
        self._spans = None
        self.extra: list[tuple[int, frozenset[int]]] = []
        self.gates_found: frozenset[int] | set[int] = _NOTHING  # ids of the regex letter sets found
        # lazy=True: when no word of the text (nor a Persian word joined from two of them) is
        # hot (see _FieldIndex.hot_ids), ``found`` is left unset (None) and ``cold`` is True: no
        # word can make a rule a candidate and no anchor regex with letters can match;
        # :meth:`warm` computes ``found`` and ``gates_found``
        self.cold = False
        if not index.words or not text:
            self.st = ""
            self.tokens: list[str] = []
            self.sets: list[frozenset[int]] = []
            self.found: set[int] = set()
            return
        lookup = index.lookup_of(persian) if persian else index.lookup
        if lazy and lookup.hot_ids is None:
            lookup.set_hot_ids(index.hot_ids(), index.gate_needs())
        if lookup.full:  # the word cache starts over between messages (see _Lookup.full)
            lookup.clear()
        # the scan text, its words, their look-ups, the non-empty ones and whether a token is a
        # Persian piece (1), hot (2) or gated (4), in one C pass (see scan.scan_words)
        self.st, self.tokens, self.sets, nonempty, flags, gvals = st, tokens, sets, nonempty, flags, gvals = scan_words(
            text, lookup, MERGE_TOKENS, lookup.hot, lookup.gated, lookup.words_c,
        )
        pieces = flags & 1  # a token's value then holds _PIECE
        if pieces:  # the Persian words written in two pieces, joined and looked up
            extra = self.extra
            for i, joined in merged_pairs(tokens):
                ws = lookup[joined] - _PIECES
                if ws:
                    extra.append((i, ws))
        if lazy and not flags & 2 and (
            not self.extra or all(map(lookup.hot_ids.isdisjoint, map(_SECOND, self.extra)))
        ) and (
            # no anchor regex with letters can run: no token holds one of their letter sets,
            # or those found complete none of their needs
            (not flags & 4 and not self.extra)
            or not lookup.may_run_regex(set().union(
                *gvals, *map(_SECOND, self.extra),
            ))
        ):
            self.cold = True
            self.found = None  # type: ignore[assignment] - see warm()
            return
        self.found = found = set().union(*nonempty)
        if pieces:
            found.discard(_PIECE)
            for _, ws in self.extra:
                found |= ws
        gate_ids = index.gate_ids
        if gate_ids and not found.isdisjoint(gate_ids):
            self.gates_found = found & gate_ids
            found -= gate_ids

    def warm(self) -> None:
        """Compute ``found`` of a cold scan: the union of its words' values (none of them is a
        Persian piece) and the regex letter sets set apart, as :meth:`__init__` does."""
        if self.found is None:
            self.found = found = set().union(*filter(None, self.sets))
            if self.extra or _PIECE in found:
                found.discard(_PIECE)
                for _, ws in self.extra:
                    found |= ws
            gate_ids = self.index.gate_ids
            if gate_ids and not found.isdisjoint(gate_ids):
                self.gates_found = found & gate_ids
                found -= gate_ids

    @property
    def scanned(self) -> bool:
        """False when the field has no words to find (its text was not looked at)."""
        return bool(self.st) or not self.text

    def has_letters(self, letters: str) -> bool:
        """Whether ``letters`` (no spaces) occur in :attr:`st`."""
        return letters in self.st

    def occurrences(self, wid: int) -> list[tuple[int, int]]:
        """Sorted (start, end) token spans where word ``wid`` was found."""
        pos = self._positions
        if pos is None:
            pos = self._positions = {}
        got = pos.get(wid)
        if got is None:
            # the token spans whose lookup holds wid, found at C level (scan.word_spans)
            got = word_spans(self.sets, wid)
            if self.extra:
                got.extend((i, i + 2) for i, ws in self.extra if wid in ws)
                got.sort()
            pos[wid] = got
        return got

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Characters of the original text covered by tokens ``[start, end)``."""
        last = end - 1
        s, e = self._start(start), self._start(last) + len(self.tokens[last])
        offsets = self._spans or self.offsets()
        if offsets.identity:  # no character of the text changes length in normalisation
            return s, e
        return text_span(self.text, offsets, s, e)

    def _token_layout(self) -> tuple[list[int], Any, Any]:
        """The tokens' start offsets (memoised), the tokens and the offset map: what turning
        token spans into characters of the original text needs."""
        pos = self._bounds
        if pos is None:
            pos = self._bounds = self.starts_of_tokens()
        return pos, self.tokens, self._spans or self.offsets()

    def char_spans(self, spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
        """``(start, end, term)`` token spans -> the same with :meth:`span`'s characters of the
        original text, all at once (the token offsets and the offset map looked up once)."""
        if not spans:
            return []
        pos, tokens, offsets = self._token_layout()
        if offsets.identity:  # no character of the text changes length in normalisation
            return [(pos[s], pos[e - 1] + len(tokens[e - 1]), raw) for s, e, raw in spans]
        text = self.text
        return [(*text_span(text, offsets, pos[s], pos[e - 1] + len(tokens[e - 1])), raw) for s, e, raw in spans]

    def span_matches(self, name: str, field: str, spans: "list[tuple[tuple[int, int], str]]") -> tuple[Match, ...]:
        """``Match(name, term, ...)`` for each ``((start, end), term)`` token span, with
        :meth:`span`'s characters of the original text (as :meth:`char_spans`)."""
        if not spans:
            return ()
        pos, tokens, offsets = self._token_layout()
        new = _new_match
        if offsets.identity:  # no character of the text changes length in normalisation
            return tuple([new(name, raw, pos[s], pos[e - 1] + len(tokens[e - 1]), field) for (s, e), raw in spans])
        text = self.text
        span = offsets.text_span
        return tuple([new(name, raw, *span(text, pos[s], pos[e - 1] + len(tokens[e - 1])), field) for (s, e), raw in spans])

    def term_matches(self, name: str, field: str, spans: "list[tuple[int, int]]", raw: str) -> tuple[Match, ...]:
        """:meth:`span_matches` of token spans ``spans`` (distinct, sorted) of one term ``raw``."""
        if not spans:
            return ()
        pos, tokens, offsets = self._token_layout()
        if len(spans) == 1:  # most hits: one Match made here, without a call per field
            s, e = spans[0]
            start, end = pos[s], pos[e - 1] + len(tokens[e - 1])
            if offsets._orig:  # not the identity (see OffsetMap.identity)
                start, end = offsets.text_span(self.text, start, end)
            m = _object_new(Match)
            _set_selection(m, name)
            _set_term(m, raw)
            _set_start(m, start)
            _set_end(m, end)
            _set_field(m, field)
            return (m,)
        new = _new_match
        if offsets.identity:
            return tuple([new(name, raw, pos[s], pos[e - 1] + len(tokens[e - 1]), field) for s, e in spans])
        text = self.text
        span = offsets.text_span
        return tuple([new(name, raw, *span(text, pos[s], pos[e - 1] + len(tokens[e - 1])), field) for s, e in spans])

    def _start(self, k: int) -> int:
        """Offset of token ``k`` in :attr:`st` (see :meth:`starts_of_tokens`)."""
        pos = self._bounds
        if pos is None:
            pos = self._bounds = self.starts_of_tokens()
        return pos[k]

    def starts_of_tokens(self) -> list[int]:
        """The offsets of all tokens in :attr:`st`, by C-level passes: :attr:`st` holds only
        letters, digits and spaces, so its tokens are the non-empty pieces between single
        spaces, and a piece starts one character after the end of the piece before it.
        (Spans need them: computed once per message with a hit whose matches are read.)"""
        if c_token_starts is not None:  # one C pass (scan.token_starts)
            got = c_token_starts(self.st)
        else:
            lengths = list(map(len, self.st.split(" ")))
            got = list(compress(accumulate(map(add, lengths, repeat(1)), initial=0), lengths))
        if len(got) != len(self.tokens):  # other characters between the words: find each one
            got = []
            find = self.st.find
            at = 0
            for tok in self.tokens:
                at = find(tok, at)
                got.append(at)
                at += len(tok)
        return got

    def present(self, alts: _Alts) -> bool:
        """Whether one of the alternatives occurs (memo per message: shared between rules)."""
        memo = self._present
        if memo is None:
            memo = self._present = {}
        v = memo.get(alts.uid)
        if v is None:
            v = memo[alts.uid] = alts.present(self)
        return v

    def starts(self, alts: _Alts) -> list[int]:
        """Sorted token indexes where one of the alternatives starts (memo per message)."""
        memo = self._starts
        if memo is None:
            memo = self._starts = {}
        v = memo.get(alts.uid)
        if v is None:
            v = memo[alts.uid] = alts.starts(self)
        return v

    def term_spans(self, wids: tuple[int, ...]) -> list[tuple[int, int]]:
        """(start, end) token spans where the term (consecutive words) matches; for a start
        with several ends, the longest."""
        found = self.found
        for w in wids:
            if w not in found:
                return []
        first = self.occurrences(wids[0])
        if len(wids) == 1:
            return first
        nexts = []
        for w in wids[1:]:
            by_start: dict[int, list[int]] = {}
            for s, e in self.occurrences(w):
                by_start.setdefault(s, []).append(e)
            nexts.append(by_start)
        best: dict[int, int] = {}
        for s, e in first:
            ends = [e]
            for by_start in nexts:
                ends = [e2 for e1 in ends for e2 in by_start.get(e1, ())]
                if not ends:
                    break
            else:
                best[s] = max(max(ends), best.get(s, 0))
        return sorted(best.items())

    def bounds(self) -> list[tuple[int, int]]:
        """Character offsets (in the normalised text) of every token."""
        tokens = self.tokens
        if not tokens:
            return []
        self._start(0)
        return [(s, s + len(t)) for s, t in zip(self._bounds or (), tokens)]

    def may_match(self, rid: int) -> bool:
        """False when regex ``rid`` cannot match: a set of letters it needs is not in the
        text's words (see :meth:`_FieldIndex._build_regexes`)."""
        need = self.index.regex_need[rid]
        return need is None or need <= self.gates_found or not self.scanned

    def regex_match(self, rid: int) -> bool:
        """Whether regex ``rid`` matches the normalised text (memo per message). Only the
        regexes asked about run, and none whose needed letters are absent."""
        memo = self._regex
        if memo is None:
            memo = self._regex = {}
        else:
            v = memo.get(rid)
            if v is not None:
                return v
        if not self.text or not self.may_match(rid):
            v = False
        else:
            data = self._utf8
            if data is None:
                norm = self._norm
                if norm is None:
                    norm = self._norm = normalize(self.text)
                data = self._utf8 = norm.encode("utf-8")
            v = self.index.compiled.search_utf8(rid, data)
        memo[rid] = v
        return v

    def offsets(self) -> OffsetMap:
        """Positions of the normalised text in the original."""
        if self._spans is None:
            self._spans = OffsetMap(self.text)
        return self._spans


def _near_window(starts: list[list[int]], within: int) -> list[int] | None:
    """One start per group, all within ``within`` words of each other (first such window)."""
    if any(not s for s in starts):
        return None
    events = sorted((p, t) for t, ps in enumerate(starts) for p in ps)
    k = len(starts)
    counts = [0] * k
    have = 0
    lo = 0
    for hi, (p, t) in enumerate(events):
        if counts[t] == 0:
            have += 1
        counts[t] += 1
        while events[lo][0] < p - within:
            lt = events[lo][1]
            counts[lt] -= 1
            if counts[lt] == 0:
                have -= 1
            lo += 1
        if have == k:
            chosen: dict[int, int] = {}
            for q, tt in events[lo : hi + 1]:
                chosen.setdefault(tt, q)
            return [chosen[t2] for t2 in range(k)]
    return None


MAX_GATES = 4  # per rule


def required_sets(tree: tuple, cost: Callable[[str], float]) -> list[frozenset[str]]:
    """Sets of selection names such that, for the condition to be true, at least one selection
    of EACH set must be true (a conjunction of necessary sets, cheapest first; empty when none
    is known). :func:`~monitor.rules.condition.necessary_selections` gives one such set (the
    rule's anchor); the others let a candidate rule be dropped with a set test (a "gate")."""

    def set_cost(s: frozenset[str]) -> float:
        return sum(map(cost, s))  # (the same additions, in the same order, as a generator's)

    def cheapest(sets: list[frozenset[str]]) -> list[frozenset[str]]:
        if len(sets) == 1:  # nothing to compare (watch)
            return sets
        return sorted(set(sets), key=lambda s: (set_cost(s), sorted(s)))[:MAX_GATES + 1]

    def union_of_best(subs: list[list[frozenset[str]]]) -> list[frozenset[str]]:
        # (a and b) or c: {a, c} and {b, c} are both necessary; the products are bounded
        if not subs or any(not x for x in subs):
            return []
        out: list[frozenset[str]] = [frozenset()]
        for x in subs:
            out = cheapest([o | s for o in out for s in x])
        return out

    return fold_necessary(tree, cost, leaf=lambda names: [names], empty=[],
                          best=lambda parts: cheapest([s for p in parts for s in p]), union=union_of_best)


class _GateWords(frozenset):
    """A gate's words made of shared parts: the anchor words of a large selection (a watch
    list's, one frozenset per list, however many rules use it) and the rule's other words.
    Equal to the plain frozenset and tested alike; pickled as the union of its parts, so a
    cache entry holds each list's anchor words once and reading it back joins them in C
    (10,000 rules + 200,000 names: 1.3 million fewer ints to unpickle). Read back, it is a
    plain frozenset."""

    __slots__ = ("parts",)

    def __reduce__(self) -> tuple:
        return (frozenset.union, self.parts)


GATE_PART_MIN = 32  # a selection with this many anchor words gives a gate a shared part


def _gate_words(parts: "list[frozenset[int]]", words: "set[int]") -> frozenset[int]:
    if not parts:
        return frozenset(words)
    if words:
        parts = [*parts, frozenset(words)]
    out = _GateWords(chain.from_iterable(parts))
    out.parts = tuple(parts)
    return out


def _rule_gates(
    rule: Rule, by_name: dict[str, _Sel], anchor_names: frozenset[str] | None,
    required: "list[frozenset[str]] | None" = None, shared: "dict[int, tuple] | None" = None,
) -> tuple[tuple[frozenset[int], tuple[str, ...]], ...] | None:
    """Cheap necessary tests of a rule besides its anchor: (text word ids, letters) pairs; the
    rule can only be true when, for every pair, one of the words was found in the text or one
    of the letter runs occurs in its scan text. Only sets of ``text`` selections qualify.
    ``shared``: id(a selection's anchor tuple) -> (the tuple, its frozenset), kept by the
    caller across rules (see :class:`_GateWords`)."""
    gates: list[tuple[frozenset[int], tuple[str, ...]]] = []

    def add(words: "set[int] | frozenset[int]", letters: "set[str] | tuple[str, ...]") -> None:
        gate = (words if isinstance(words, frozenset) else frozenset(words), tuple(sorted(letters)))
        if gate not in gates and len(gates) < MAX_GATES:
            gates.append(gate)

    if required is None:
        required = required_sets(rule.condition.tree, lambda n: by_name[n].cost)
    for names in required:
        if len(names) == 1:
            sel = by_name[next(iter(names))]
            if sel.field == "text" and sel.op in ("near", "all") and sel.anchors:
                # every group of a near, every term of an all is needed: one gate each (the
                # rarest word of each of its terms), except the anchor's own
                if sel.op == "near":
                    parts = [[sel.term_wids[t][rarest_word(sel.sel.terms[t])[0]] for t in g] for g in sel.groups]
                else:
                    parts = [[w[rarest_word(t)[0]]] for w, t in zip(sel.term_wids, sel.sel.terms)]
                for words in parts:
                    if frozenset(words) != frozenset(sel.anchors):
                        add(words, ())
                continue
        if names == anchor_names:
            continue
        words: set[int] = set()
        parts: list[frozenset[int]] = []
        letters: set[str] = set()
        for n in names:
            sel = by_name[n]
            if sel.field != "text":
                break
            if sel.anchor_regex:
                lits = [required_literal(p) for p in sel.sel.regexes]
                if not lits or None in lits:
                    break
                letters.update(lits)  # type: ignore[arg-type]
            elif sel.anchors:
                anchors = sel.anchors
                if shared is not None and len(anchors) >= GATE_PART_MIN:
                    got = shared.get(id(anchors))
                    if got is None or got[0] is not anchors:
                        got = shared[id(anchors)] = (anchors, frozenset(anchors))
                    if got[1] not in parts:
                        parts.append(got[1])
                else:
                    words.update(anchors)
            else:
                break
        else:
            add(_gate_words(parts, words), letters)
    return tuple(gates) or None


def by_name_cost(by_name: dict[str, _Sel]) -> Callable[[str], float]:
    """A selection's estimated cost by name (see :class:`_Sel`): a dict's look-up, no
    Python call per name (the anchor and gate sets ask for it thousands of times: watch)."""
    return {n: s.cost for n, s in by_name.items()}.__getitem__


class Matcher:
    """All rules of a :class:`RuleSet`, compiled; ``match(msg)`` returns the hits."""

    classifier: Any = None  # the set's learned classifier (monitor/rules/classifier.py)

    def __init__(self, ruleset: RuleSet, default_destinations: Sequence[str] = ("console",)) -> None:
        with paused_gc():
            self._compile(ruleset, default_destinations)

    def _compile(self, ruleset: RuleSet, default_destinations: Sequence[str]) -> None:
        self.ruleset = ruleset
        self.default_destinations = tuple(default_destinations)
        self.fields: dict[str, _FieldIndex] = {}
        self._rules: list[_Rule] = []
        self._unanchored: list[int] = []
        intern = _Interner()
        self._seed_lists(ruleset, intern)
        shapes: dict[tuple, tuple] = {}  # (condition text, selection names) -> (program, source)
        # (id(condition tree), selection names and costs) -> (anchor names, required sets, the tree)
        necessary: dict[tuple, tuple] = {}
        free_trees: dict[int, bool] = {}  # id(condition tree) -> condition.cost_free of it
        source_sets: dict[tuple, _Sources] = {}
        gate_parts: dict[int, tuple] = {}  # id(a large anchor tuple) -> (it, its frozenset): see _GateWords
        # (id(target dict), id(anchors tuple)) -> (target, anchors, rule indexes ascending)
        anchor_groups: dict[tuple[int, int], tuple[dict, tuple[int, ...], list[int]]] = {}
        for rule in ruleset.rules:
            if not rule.enabled:
                continue
            sels = [_Sel(s, self._field(s.field), intern) for s in rule.selections]
            sources = None
            if rule.sources:
                skey = tuple(str(p) for p in rule.sources)
                sources = source_sets.get(skey)
                if sources is None:
                    sources = source_sets[skey] = _Sources(len(source_sets), rule.sources)
            compiled = _Rule(rule, sels, self.default_destinations, sources, shapes)
            ri = len(self._rules)
            self._rules.append(compiled)
            by_name = {s.name: s for s in sels}
            # the anchor and the gates' sets depend only on the condition and the selections'
            # costs: rules of one shape with equal costs (a third of 10,000 generated ones) share them
            tree = rule.condition.tree
            free = free_trees.get(id(tree))
            if free is None:
                free = free_trees[id(tree)] = cost_free(tree)
            # a tree whose anchor and gates do not depend on the costs: shared by its shape (watch)
            nkey = (id(tree), tuple([s.name for s in sels]) if free else tuple([(s.name, s.cost) for s in sels]))
            got = necessary.get(nkey)
            if got is None:
                cost = by_name_cost(by_name)
                got = necessary[nkey] = (
                    rule.condition.necessary(cost), required_sets(rule.condition.tree, cost), rule.condition.tree,
                )
            anchor_names, required, _tree = got
            if anchor_names is None:
                self._unanchored.append(ri)
            else:
                for name in anchor_names:
                    sel = by_name[name]
                    index = self.fields[sel.field]
                    target = index.regex_triggers if sel.anchor_regex else index.triggers
                    # the rules anchored on one tuple of words (a list's, shared) are collected
                    # first and registered per word once, below
                    gkey = (id(target), id(sel.anchors))
                    group = anchor_groups.get(gkey)
                    if group is None:
                        anchor_groups[gkey] = (target, sel.anchors, [ri], index.phrase_triggers, sel.anchor_terms)
                    elif group[2][-1] != ri:
                        group[2].append(ri)
            compiled.gates = _rule_gates(rule, by_name, anchor_names, required, gate_parts)
            for sel in sels:
                sel.anchors = ()
                sel.anchor_terms = None
        _register_anchors(anchor_groups.values())
        # actors: their names go into the text field's words, so tagging a hit reuses the
        # message's scan (which actors' names were found), computed only for messages with hits
        self.actors = None
        self._actor_single: dict[int, tuple[str, ...]] = {}
        self._actor_phrases: dict[int, tuple[tuple[str, tuple[int, ...]], ...]] = {}
        if getattr(ruleset, "actors", None):
            from .actors import ActorTagger

            self.actors = ActorTagger(ruleset.actors, names=False)
            text_index = self._field("text")
            single: dict[int, list[str]] = {}
            phrases: dict[int, list[tuple[str, tuple[int, ...]]]] = {}
            for actor in ruleset.actors:
                for term in actor.terms:
                    wids = tuple(text_index.word_id(w) for w in term.words)
                    if len(wids) == 1:
                        single.setdefault(wids[0], []).append(actor.id)
                    else:
                        phrases.setdefault(wids[0], []).append((actor.id, wids))
            self._actor_single = {k: tuple(dict.fromkeys(v)) for k, v in single.items()}
            self._actor_phrases = {k: tuple(v) for k, v in phrases.items()}
        self._actor_phrase_keys = frozenset(self._actor_phrases)
        self._actor_single_keys = frozenset(self._actor_single)
        for index in self.fields.values():
            index.build()
        self._eager = [(name, idx) for name, idx in self.fields.items() if idx.eager]
        self._eager_text = self.fields["text"] if any(n == "text" for n, _ in self._eager) else None
        self._eager_other = [(n, i) for n, i in self._eager if n != "text"]
        self.rule_count = len(self._rules)
        spec = getattr(ruleset, "classifier", None)
        if spec is not None and spec.enabled:
            from .classifier import Classifier  # NumPy: imported only for a set with a classifier

            self.classifier = Classifier(spec, self.default_destinations)
        else:
            self.classifier = None

    def _seed_lists(self, ruleset: RuleSet, intern: _Interner) -> None:
        """Give each field the words of the watch lists its selections reference (by
        ``@list:``, a selection holding the list's own terms) as its first ids: the lists in
        their files' order, each word where it first occurs (see
        :class:`~monitor.rules.lists.ListNumbering`), before any rule is compiled. Where the
        lists' child numbered exactly these lists (``_gids``), its numbers are the ids (no
        word looked up per list: 440,000 at 10,000 rules); otherwise they are numbered here,
        the same way, so a set compiles to the same ids with the lists forked or not. Only
        the order of the field's words changes (rule words follow the lists'): the same
        words, anchors and hits."""
        refs: dict[str, dict[int, ListTerms]] = {}
        for rule in ruleset.rules:
            if rule.enabled:
                for sel in rule.selections:
                    terms = sel.terms
                    if isinstance(terms, ListTerms) and not isinstance(terms, PendingListTerms):
                        refs.setdefault(sel.field, {})[id(terms)] = terms
        if not refs:
            return
        order = {id(wl.terms): i for i, wl in enumerate(getattr(ruleset, "lists", None) or ())}
        last = len(order)
        for field, by_id in refs.items():
            # in the lists' order (any list not in the set's lists after them, as referenced)
            terms_in_order = sorted(by_id.values(), key=lambda t: order.get(id(t), last))
            pre = [getattr(t, "_gids", None) for t in terms_in_order]
            numbering = pre[0][0] if pre[0] is not None else None
            if numbering is not None and numbering.count == len(pre) and all(p is not None and p[0] is numbering for p in pre):
                table = numbering.table
                numbers: list = [p[1] for p in pre]
            else:
                table, numbers = number_lists([t.flat()[:2] for t in terms_in_order])
            index = self._field(field)
            if index.words:  # pragma: no cover - a field is empty before the rules are compiled
                continue
            index.words.extend(table)
            index.word_ids.update(zip(table, count()))
            for t, gids in zip(terms_in_order, numbers):
                intern.seeded[(field, id(t))] = gids

    def prepare(self, pause: float = 0.0) -> "Matcher":
        """Compile what is otherwise compiled on first use (the fields' regexes), e.g. in
        the thread that reads a reloaded set back, so no message pays for it; ``pause``:
        seconds to sleep after each regex (yielding the GIL to the event loop)."""
        for index in self.fields.values():
            compiled = index.compiled
            for i in range(len(compiled)):
                if list.__getitem__(compiled, i) is None:
                    compiled[i]  # noqa: B018 - compiles it
                    if pause:
                        time.sleep(pause)  # off the event loop: let it run between two compilations
        return self

    def regexes_compiled(self) -> tuple[int, int]:
        """(compiled so far, all) of the fields' regexes: how much of :meth:`prepare`'s work
        is still to do."""
        done = total = 0
        for index in self.fields.values():
            compiled = index.compiled
            total += len(compiled)
            done += sum(1 for i in range(len(compiled)) if list.__getitem__(compiled, i) is not None)
        return done, total

    def actors_of(self, msg: Message, scan: "_Scan | None" = None) -> tuple[str, ...]:
        """Ids of the actors ``msg`` names or was posted by (with their parents)."""
        if self.actors is None:
            return ()
        if scan is None:
            scan = _Scan(self.fields["text"], msg.text or "", is_persian(msg))
        return self.actors.tag(msg, self._named_in(scan))

    def _named_in(self, scan: "_Scan") -> set[str]:
        """Actors whose names occur in the scanned text."""
        found = scan.found
        named: set[str] = set()
        single = self._actor_single
        for w in self._actor_single_keys.intersection(found):
            named.update(single[w])
        for k in self._actor_phrase_keys.intersection(found):
            for aid, wids in self._actor_phrases[k]:
                if aid not in named and scan.term_spans(wids):
                    named.add(aid)
        return named

    def _field(self, name: str) -> _FieldIndex:
        index = self.fields.get(name)
        if index is None:
            index = self.fields[name] = _FieldIndex(name)
        return index

    @property
    def rules(self) -> list[Rule]:
        return [r.rule for r in self._rules]

    def stats(self) -> dict[str, int]:
        """Sizes of the compiled set (for logs and the bench)."""
        return {
            "rules": self.rule_count,
            "unanchored_rules": len(self._unanchored),
            "terms": self._term_count(),
            "words": sum(len(i.words) for i in self.fields.values()),
            "patterns": sum(i.pattern_count for i in self.fields.values()),
            "regexes": sum(len(i.regexes) for i in self.fields.values()),
            "memory_bytes": sum(i.memory_estimate() for i in self.fields.values()) + 3_000 * self.rule_count,
        }

    def _term_count(self) -> int:
        """Distinct (field, term words) of the rules (a list's tuple of terms counted once)."""
        seen: set[tuple[str, int]] = set()
        out: set[tuple[str, tuple]] = set()
        for r in self._rules:
            for s in r.rule.selections:
                key = (s.field, id(s.terms))
                if s.terms and key not in seen:
                    seen.add(key)
                    field = s.field
                    words = s.terms.word_tuples() if isinstance(s.terms, ListTerms) else map(_TERM_WORDS, s.terms)
                    out.update(zip(repeat(field), words))
        return len(out)

    # -- matching -------------------------------------------------------------------------
    def candidates(self, msg: Message) -> tuple[list[int], dict[str, _Scan]]:
        cands, scans, _ = self._candidates(msg, True)
        return cands, scans

    def _candidates(self, msg: Message, warm: bool = False) -> tuple[list[int], dict[str, _Scan], list[str | None]]:
        """The candidate rules, the fields' scans and the message's language if it was needed
        (``[language]``; ``[]`` when not asked yet, see :func:`_regex_candidates`). A scan
        whose words are all cold (see :class:`_Scan`) is given its ``found`` when there are
        candidates (or ``warm``); without candidates nothing reads it."""
        scans: dict[str, _Scan] = {}
        got: list[frozenset[int]] = []
        text_index = self._eager_text
        persian = is_persian(msg)
        lang: list[str | None] = ["fa"] if persian else []  # message_language(msg), when known
        cold: list[_Scan] = []
        if text_index is not None:
            scan = scans["text"] = _Scan(text_index, msg.text or "", persian, True)
            found = scan.found
            if scan.cold:
                cold.append(scan)
            elif found:
                got = list(filter(None, map(text_index.key_rules.__getitem__, found)))
                if text_index.phrase_keys:
                    _phrase_candidates(text_index, found, got)
            if text_index.regex_anchors:
                _regex_candidates(text_index, scan, got, self._rules, msg, lang)
        for name, index in self._eager_other:
            scan = scans[name] = _Scan(index, field_value(msg, name), persian, True)
            if scan.cold:
                cold.append(scan)
            elif scan.found:
                got.extend(filter(None, map(index.key_rules.__getitem__, scan.found)))
                if index.phrase_keys:
                    _phrase_candidates(index, scan.found, got)
            if index.regex_anchors:
                _regex_candidates(index, scan, got, self._rules, msg, lang)
        if not got:
            cands = self._unanchored
        else:
            cands = sorted(set(self._unanchored).union(*got))
        if cold and (cands or warm):
            for scan in cold:
                scan.warm()
        return cands, scans, lang

    def match(self, msg: Message, classifier: bool = True) -> list[Hit]:
        """The hits of every rule on ``msg`` (in rule order), then the set's learned
        classifier's if it has one (and ``classifier``; see :meth:`_classified`)."""
        cands, scans, lang = self._candidates(msg)
        if not cands:
            return [] if self.classifier is None or not classifier else self._classified(msg, [])
        hits: list[Hit] = []
        actors: tuple[str, ...] | None = None  # computed once, for the first hit
        memo: dict[int, bool] = {}
        memo_get = memo.get
        rules = self._rules
        fields = self.fields

        def scan_of(field: str) -> _Scan:
            s = scans.get(field)
            if s is None:
                s = scans[field] = _Scan(fields[field], field_value(msg, field), is_persian(msg))
            return s

        sources_memo: dict[int, bool] = {}
        sels: list[_Sel] = []

        def truth(i: int) -> bool:
            sel = sels[i]
            v = memo_get(sel.uid)
            if v is None:
                scan = scans.get(sel.field) or scan_of(sel.field)
                alts = sel.alts
                # an 'any' selection's uid is its alternatives': no second memo on the scan
                v = memo[sel.uid] = alts.present(scan) if alts is not None else _evaluate(sel, scan)
            return v

        text_scan = scans.get("text")
        for ri in cands:
            cr = rules[ri]
            gates = cr.gates  # cheapest first: set tests on the text's words
            if gates is not None:
                if text_scan is None:
                    text_scan = scan_of("text")
                found = text_scan.found
                for words, letters in gates:
                    if words.isdisjoint(found) and not (letters and any(map(text_scan.has_letters, letters))):
                        break
                else:
                    gates = None
                if gates is not None:
                    continue
            src = cr.sources
            if src is not None:
                ok = sources_memo.get(src.uid)
                if ok is None:
                    ok = sources_memo[src.uid] = src.matches(msg)
                if not ok:
                    continue
            if cr.languages is not None:
                if not lang:  # not Persian (see _candidates)
                    lang.append(language_not_persian(msg))
                if lang[0] not in cr.languages:
                    continue
            sels = cr.sels
            fast = cr.fast
            if fast is None:
                fast = cr.fast = _fast_test(cr)
            if fast[1]:  # it tests words of the text in place
                if text_scan is None:
                    text_scan = scan_of("text")
                found = text_scan.found
            else:
                found = _NO_WORDS
            if fast[0](truth, found):
                if actors is None:
                    actors = self.actors_of(msg, scan_of("text")) if self.actors is not None else ()
                hits.append(_lazy_hit(cr.hit, actors, partial(_matches, cr, memo, scans.get, scan_of)))
        return hits if self.classifier is None or not classifier else self._classified(msg, hits)

    def _classified(self, msg: Message, hits: list[Hit]) -> list[Hit]:
        """``hits`` and the classifier's hit on ``msg`` when it has one (its actors: the rule
        hits', else the message's, found only then)."""
        hit = self.classifier.hit(msg, hits, partial(self.actors_of, msg))  # type: ignore[union-attr]
        if hit is not None:
            hits.append(hit)
        return hits



def _matches(
    cr: _Rule, memo: dict[int, bool], scanned: Callable[[str], "_Scan | None"], scan_of: Callable[[str], _Scan],
) -> tuple[Match, ...]:
    """The matches of a hit of rule ``cr`` (its true positive selections explained, spans in
    the original text); ``memo``: the message's selection truths (selection uid -> bool);
    ``scanned(field)``: the field's scan if made, ``scan_of(field)`` makes it.

    Each span is reported once per selection (terms that normalise alike, كرمان and کرمان,
    find the same words: the first term's match is kept), sorted by field, start, end and
    selection; at most :data:`MAX_MATCHES_PER_HIT`. A selection's matches come deduplicated
    and sorted from :func:`_selection_matches` (for ``any`` and ``all`` shared by the rules
    with the same selection name and terms), and two selections of a rule never report the
    same match (their names differ), so a hit only merges them."""
    parts: list[tuple[Match, ...]] = []
    raw = 0  # matches before deduplication: explaining stops once there are enough
    plan = cr.explain
    if plan is None:
        plan = cr.explain = _explain_plan(cr)
    text_only = True
    memo_get = memo.get
    for sel, uid, field, alts, term_op in plan:
        if raw >= MAX_MATCHES_PER_HIT:
            break
        v = memo_get(uid)
        if v is None:  # not asked by the condition (short-circuited): asked now
            scan = scanned(field) or scan_of(field)
            if alts is None:
                v = memo[uid] = _evaluate(sel, scan)
            elif alts.singles.isdisjoint(scan.found) and alts.keys.isdisjoint(scan.found):
                v = memo[uid] = False  # what present() answers at once (a watch list named nowhere)
            else:
                v = memo[uid] = alts.present(scan)
            if not v:
                continue
        elif not v:
            continue
        else:
            scan = scanned(field) or scan_of(field)
        # most hits' selections are 'any' or 'all': _selection_matches without its dispatch
        n, got = _term_match_objects(sel, scan) if term_op else _selection_matches(sel, scan)
        if n:
            raw += n
            parts.append(got)
            if field != "text":
                text_only = False
    if len(parts) == 1:
        got = parts[0]
        return got if len(got) <= MAX_MATCHES_PER_HIT else got[:MAX_MATCHES_PER_HIT]
    if not parts:
        return ()
    merged = list(chain.from_iterable(parts))
    merged.sort(key=_TEXT_ORDER if text_only else _field_order)
    return tuple(merged[:MAX_MATCHES_PER_HIT])


_TERM_OPS = frozenset(("any", "all"))


def _explain_plan(cr: _Rule) -> tuple:
    """Per positive selection of ``cr`` (in order): ``(selection, uid, field, alternatives,
    whether it is an 'any' or 'all')``: what :func:`_matches` reads of each."""
    sels = cr.sels
    return tuple([(s, s.uid, s.field, s.alts, s.op in _TERM_OPS) for s in map(sels.__getitem__, cr.positive)])
_SPAN_ORDER = attrgetter("start", "end")
_TEXT_ORDER = attrgetter("start", "end", "selection")


def _field_order(m: Match) -> tuple:
    return (_FIELD_ORDER[m.field], m.start, m.end, m.selection)


def _selection_matches(sel: _Sel, scan: _Scan) -> tuple[int, tuple[Match, ...]]:
    """(matches found, the distinct ones sorted by span) of a true selection; for ``any`` and
    ``all`` computed once per message for every selection with the same name and terms."""
    if sel.op in _TERM_OPS:
        return _term_match_objects(sel, scan)
    out = _explain(sel, scan)
    if len(out) <= 1:
        return len(out), tuple(out)
    unique: dict[tuple[int, int], Match] = {}
    for m in out:
        unique.setdefault((m.start, m.end), m)  # the first one found there
    return len(out), tuple(sorted(unique.values(), key=_SPAN_ORDER))


def _term_match_objects(sel: _Sel, scan: _Scan) -> tuple[int, tuple[Match, ...]]:
    """(spans found, the distinct ones as :class:`Match` objects sorted by span) of a true
    ``any`` or ``all`` selection's terms, with their characters in the original text;
    computed once per message for every selection with the same name and terms (a list or
    an actor referenced by several rules, ``b: [في]`` written in a hundred rules: see
    :func:`_terms_key`).

    The terms' token spans are collected, each span kept once (the first term found there)
    and sorted, then turned into characters and matches together
    (:meth:`_Scan.span_matches`): tokens map to characters in order, so distinct token
    spans are distinct character spans in the same order. A one-word term's spans are its
    word's occurrences."""
    cache = scan.matched
    if cache is None:
        cache = scan.matched = {}
    index = scan.index
    tk = index.term_keys.get(id(sel.sel.terms))
    if tk is None:
        tk = _terms_key(sel, index)
    key = (sel.name, tk)
    got = cache.get(key)
    if got is not None:
        return got
    raws = index.term_raws[tk]  # the terms as written (see _terms_key)
    term_wids = sel.term_wids
    # the terms whose first word was found (a one-word term occurs): sel.found_terms, with the
    # common case of one such word answered here
    first = sel.first_terms
    keys = None if first is None else sel.first_keys.intersection(scan.found)
    if keys is not None and len(keys) == 1:
        for k in keys:
            t = first[k]
        found = (t,) if t.__class__ is int else t
    else:
        found = sel.found_terms(scan.found, index)
    if len(found) == 1:  # one term: its spans are distinct and sorted already
        t = found[0]
        wids = term_wids[t]
        at = scan.occurrences(wids[0]) if len(wids) == 1 else scan.term_spans(wids)
        if len(at) > 1:
            at = _outermost(at)[:MAX_MATCHES_PER_HIT]
        got = cache[key] = (len(at), scan.term_matches(sel.name, sel.field, at, raws[t]))
        return got
    occurrences = scan.occurrences
    spans: list[tuple[tuple[int, int], str]] = []
    for t in found:
        wids = term_wids[t]
        at = occurrences(wids[0]) if len(wids) == 1 else scan.term_spans(wids)
        if at:
            if len(at) > 1:
                at = _outermost(at)[:MAX_MATCHES_PER_HIT]
            spans += zip(at, repeat(raws[t]))
    n = len(spans)
    if n > 1:  # reversed: for a span found twice the first term's entry is written last
        spans = sorted(dict(reversed(spans)).items())
    got = cache[key] = (n, scan.span_matches(sel.name, sel.field, spans))
    return got


def _terms_key(sel: _Sel, index: _FieldIndex) -> int:
    """A number per distinct content of a selection's terms (their words and their text as
    written, which the matches report): rules written apart with the same terms (``b:
    [في]`` in a hundred rules) get one, so their matches are computed once per message."""
    terms = sel.sel.terms
    keys = index.term_keys
    got = keys.get(id(terms))
    if got is None:
        # a watch list's texts without making its Term objects
        raws = tuple(terms.raws if isinstance(terms, ListTerms) else [t.raw for t in terms])
        content = (id(sel.term_wids), raws)  # term_wids: one tuple per content
        got = keys.setdefault(content, len(keys))
        keys[id(terms)] = got
        index.term_raws.setdefault(got, raws)
    return got


_MATCH_SETTERS = tuple(Match.__dict__[f.name].__set__ for f in dataclasses.fields(Match))
_set_selection, _set_term, _set_start, _set_end, _set_field = _MATCH_SETTERS
_object_new = object.__new__


def _new_match(selection: str, term: str, start: int, end: int, field: str) -> Match:
    """``Match(selection, term, start, end, field)`` without the frozen dataclass's
    ``__init__`` (one ``object.__setattr__`` per field)."""
    m = _object_new(Match)
    _set_selection(m, selection)
    _set_term(m, term)
    _set_start(m, start)
    _set_end(m, end)
    _set_field(m, field)
    return m


_MATCHES_SLOT = Hit.__dict__["matches"]  # the dataclass's slot (a member descriptor)
_HIT_SETTERS = {f.name: Hit.__dict__[f.name].__set__ for f in dataclasses.fields(Hit)}
_SET_ACTORS = _HIT_SETTERS["actors"]


class _LazyHit(Hit):
    """A :class:`~monitor.model.Hit` whose ``matches`` (spans in the original text) are
    computed on first access: counting hits (``rules eval``, benches) does not pay for them;
    the archive, alerts and ``rules test`` read them. It reads as a ``Hit``: same ``repr``,
    equal (and same hash) to the ``Hit`` with the same fields, pickled and copied as one."""

    __slots__ = ("_pending",)

    def _get_matches(self) -> tuple[Match, ...]:
        try:
            pending = self._pending
        except AttributeError:  # made by Hit.__init__ (dataclasses.replace)
            pending = None
        if pending is not None:
            _MATCHES_SLOT.__set__(self, pending())
            object.__setattr__(self, "_pending", None)
        return _MATCHES_SLOT.__get__(self, Hit)

    def _set_matches(self, value: tuple[Match, ...]) -> None:  # Hit.__init__ only (frozen otherwise)
        _MATCHES_SLOT.__set__(self, value)
        object.__setattr__(self, "_pending", None)

    matches = property(_get_matches, _set_matches)  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Hit):
            return all(getattr(self, f) == getattr(other, f) for f in _HIT_SETTERS)
        return NotImplemented

    __hash__ = Hit.__hash__

    def __reduce__(self):  # noqa: ANN204 - a plain Hit, matches computed
        return (Hit, tuple(getattr(self, f) for f in _HIT_SETTERS))


_LazyHit.__qualname__ = "Hit"  # the dataclass repr prints the class name


def _lazy_hit(fields: dict, actors: tuple[str, ...], pending: Callable[[], tuple[Match, ...]]) -> Hit:
    """A :class:`_LazyHit` with ``fields`` (a rule's constant fields), built without the
    frozen dataclass's ``__init__`` (one ``object.__setattr__`` per field: ~5 µs)."""
    hit = object.__new__(_LazyHit)
    # setters[k](hit, v) for each field, in C (any() runs them all: each returns None)
    any(map(call, map(_HIT_SETTERS.__getitem__, fields), repeat(hit), fields.values()))
    _SET_ACTORS(hit, actors)
    object.__setattr__(hit, "_pending", pending)
    return hit


def _register_anchors(groups: "Iterable[tuple[dict, tuple[int, ...], list[int], dict, tuple | None]]") -> None:
    """``target[word] = rule indexes`` (ascending, each once) for every anchor word of every
    group: what registering each rule on each of its anchors gives, with one list extension
    per word and group (10 rules sharing a list of 200 names: 200, not 2,000, steps). An
    anchor word taken from a phrase goes to ``phrases[word]`` with the phrase's words instead
    (the rules are candidates only when all of them were found)."""
    merged: list[tuple[dict, int]] = []
    for target, anchors, rules, phrases, anchor_terms in groups:
        if anchor_terms is not None:
            plain = []
            rules_t = None
            for ident, wids in zip(anchors, anchor_terms):
                if wids is None:
                    plain.append(ident)
                else:
                    if rules_t is None:  # the group's rules, ascending, each once (a tuple shared by its phrases)
                        rules_t = tuple(sorted(set(rules)))
                    got = phrases.get(ident)
                    if got is None:
                        phrases[ident] = [wids, rules_t]
                    else:
                        got += (wids, rules_t)
            anchors = plain
        for ident in anchors:
            got = target.get(ident)
            if got is None:
                target[ident] = list(rules)
            else:
                if got[-1] >= rules[0]:
                    merged.append((target, ident))
                got.extend(rules)
    for target, ident in merged:
        target[ident] = sorted(set(target[ident]))


def _phrase_candidates(index: _FieldIndex, found: set[int], got: list) -> None:
    """Add to ``got`` the rules anchored on a phrase all of whose words were found (a rule
    anchored on a name's rarest word is not evaluated when the name's other words are absent:
    the phrase cannot match, see :meth:`_Scan.term_spans`)."""
    key_phrases = index.key_phrases
    issuperset = found.issuperset
    for w in index.phrase_keys.intersection(found):
        entries = key_phrases[w]  # flat: phrase, rules, phrase, rules ...
        for i in range(0, len(entries), 2):
            if issuperset(entries[i]):
                got.append(entries[i + 1])


def _regex_candidates(
    index: _FieldIndex, scan: _Scan, got: list, rules: "list[_Rule]", msg: Message, lang: list,
) -> None:
    """Add to ``got`` the rules anchored on a regex that matches (a regex whose needed
    letters are absent is not run, nor one whose rules all have a ``languages:`` filter the
    message fails: they would not be evaluated). ``lang``: ``[message_language(msg)]`` once
    known (filled here when first needed)."""
    plan = index.__dict__.get("_anchor_plan")
    if plan is None or plan[0] is not index.regex_anchors:
        plan = index._anchor_plan = _anchor_plan(index.regex_anchors, rules)
    _, always, by_gate, gates = plan
    for r, rs, langs in always:
        if langs is not None:
            if lang:
                if lang[0] not in langs:
                    continue
            elif langs is _FA_ONLY or not _language_in(langs, msg, lang):  # (not Persian)
                continue
        if scan.regex_match(r):
            got.append(rs)
    found = scan.gates_found
    if not scan.scanned:  # the field has no words: its letters were not looked for
        for entries in by_gate.values():
            for r, _, rs, langs in entries:
                if (langs is None or (lang[0] in langs if lang else _language_in(langs, msg, lang))) and scan.regex_match(r):
                    got.append(rs)
        return
    if found:  # an anchor regex is listed under one of the letter sets it needs: asked once
        for g in gates.intersection(found):
            for r, need, rs, langs in by_gate[g]:
                if need <= found and (
                    langs is None or (lang[0] in langs if lang else _language_in(langs, msg, lang))
                ) and scan.regex_match(r):
                    got.append(rs)


_FA_ONLY = frozenset({"fa"})


def _language_in(langs: frozenset, msg: Message, lang: list) -> bool:
    """Whether the message's language (``lang``: ``[language]`` when known, ``[]`` when not:
    then the message is not Persian, see :meth:`Matcher._candidates`) is in ``langs``."""
    if lang:
        return lang[0] in langs
    if langs == _FA_ONLY:  # not Persian: known without the script analysis
        return False
    lang.append(language_not_persian(msg))
    return lang[0] in langs


def _anchor_plan(anchors: tuple, rules: "list[_Rule]") -> tuple:
    """``(anchors, those that need no letters as (regex, rules, languages), letter-set id -> the
    anchors listed under it as (regex, sets, rules, languages), those ids)``: each anchor that
    needs letters is listed under the smallest id of its sets (all of them must be found for it
    to run, so that one is); ``languages``: the union of its rules' ``languages:`` filters, None
    when one of them has none (the regex is run only for a message in one of them)."""

    def languages(rs: tuple[int, ...]) -> frozenset | None:
        out: set[str] = set()
        for ri in rs:
            langs = rules[ri].languages
            if langs is None:
                return None
            out.update(langs)
        return _FA_ONLY if out == _FA_ONLY else frozenset(out)  # the one asked by identity

    always = tuple([(r, rs, languages(rs)) for r, need, rs in anchors if need is None])
    by_gate: dict[int, list] = {}
    for r, need, rs in anchors:
        if need is not None:
            by_gate.setdefault(min(need), []).append((r, need, rs, languages(rs)))
    return anchors, always, {g: tuple(v) for g, v in by_gate.items()}, frozenset(by_gate)


def _evaluate(sel: _Sel, scan: _Scan) -> bool:
    op = sel.op
    if op == "near":  # the pack's most asked (an 'any' is mostly answered by its alternatives)
        # every group needs an alternative that occurs, then a window over their starts
        for g in sel.galts:
            if not scan.present(g):
                return False
        return _near_window(_group_starts(sel, scan), sel.within) is not None
    if op == "regex":
        return any(map(scan.regex_match, sel.regex_ids))
    if op == "all":
        if not sel.singles.issubset(scan.found):
            return False
        return all(scan.term_spans(p) for p in sel.phrases)
    return scan.present(sel.alts)  # type: ignore[arg-type]  # any


def _group_starts(sel: _Sel, scan: _Scan) -> list[list[int]]:
    """Token indexes where each ``near`` group (one of its alternatives) starts."""
    return [scan.starts(g) for g in sel.galts]


def _outermost(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted spans without those inside another (``می شود`` and its ``شود``: report once)."""
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans, key=lambda x: (x[0], -x[1])):
        if out and out[-1][0] <= s and e <= out[-1][1]:
            continue
        out.append((s, e))
    return out


def _explain(sel: _Sel, scan: _Scan) -> list[Match]:
    """The matches of a true selection, with spans in the original field text."""
    text = scan.text
    out: list[Match] = []
    name, field = sel.name, sel.field

    def add(term: str, start: int, end: int) -> None:
        s, e = scan.span(start, end)
        out.append(_new_match(name, term, s, e, field))

    terms: Sequence[Term] = sel.sel.terms
    if sel.op in ("any", "all"):
        return list(_term_match_objects(sel, scan)[1])
    elif sel.op == "near":
        window = _near_window(_group_starts(sel, scan), sel.within)
        if window is not None:
            candidates = sel.found_terms(scan.found, scan.index)
            for group, i in zip(sel.groups, window):
                members = set(group)
                for t in (t for t in candidates if t in members):  # the first alternative that starts there
                    ends = [e for s, e in scan.term_spans(sel.term_wids[t]) if s == i]
                    if ends:
                        add(terms[t].raw, i, ends[0])
                        break
    else:
        offsets = scan.offsets()
        for pattern, rid in zip(sel.sel.regexes, [scan.index.regex_ids[p] for p in sel.sel.regexes]):
            if not scan.regex_match(rid):
                continue
            for m in scan.index.compiled[rid].finditer(normalize(text)):
                if m.end() > m.start():
                    start, end = text_span(text, offsets, m.start(), m.end())
                    out.append(_new_match(sel.name, pattern, start, end, sel.field))
                if len(out) >= MAX_MATCHES_PER_HIT:
                    break
    return out
