"""The learned classifier of the rule pack: hashed n-gram features, the model file, the scorer
and the hit it adds to the rules' (docs/rules.md, "The learned classifier in the pack").

A rule folder may hold one classifier file (a YAML mapping with ``classifier:``, e.g.
``rules/classifier.yml``) naming a model file beside it (``rules/classifier.npz``). The loader
reads both (:func:`build_spec`, :func:`load_model`); the compiled matcher scores every message
(:meth:`Classifier.hit`) and adds one hit of rule id ``classifier`` when the model's top class is
one it may raise (``kinds``) with a probability at or above that kind's threshold.

**Features** (the definition is ours, so that the model is arrays, not code; version
:data:`FEATURES_VERSION`). The text is :func:`monitor.text.normalize`\\ d, then

* character n-grams of 2 to 5 characters of each whitespace-separated token framed by one
  space on each side (``" token "``);
* words (runs of characters for which ``str.isalnum()`` holds: ``_`` and punctuation separate
  words) and word bigrams (two consecutive words).

Each n-gram is hashed with FNV-1a (64 bits) over a prefix byte (``c`` for character n-grams,
``w`` for words and bigrams) and its UTF-8 (a bigram: first word, a space, second word), folded
(``h ^ (h >> 32)``) and masked to ``char_bits`` (``word_bits``) bits; word features follow the
character block (index ``2**char_bits + bucket``). :func:`extract` gives the distinct indices
in the order of their first occurrence and their counts, from the C extension (``monitor/rules/_features.c``) when
it is built, else from :func:`python_extract` (the reference; the two agree on every corpus
item, tests/test_classifier.py).

**Scoring** (what scikit-learn's TF-IDF vectorisers with ``sublinear_tf`` and a multinomial
logistic regression compute): only the indices the model knows count; each gets
``(1 + ln count) * idf``; the character block and the word block are each scaled to unit length
(L2); the class probabilities are the softmax of ``x · coef + intercept``.

**Model file**: a NumPy ``.npz`` read with ``allow_pickle=False`` (arrays only, no code):
:data:`MODEL_FIELDS`. Written by :func:`save_model` deterministically (fixed zip dates, fixed
order), so the same arrays give the same bytes and the same SHA-256 (the hit's ``rule_hash``
and part of the compiled-set cache key).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..model import Hit, Message
from ..text import normalize

try:  # built by setup.py; without it the same features come from python_extract (and NumPy scores)
    from ._features import extract as _c_extract, score as _c_score
except ImportError:  # pragma: no cover - no C compiler at install time
    _c_extract = _c_score = None

FORMAT_VERSION = 1  # of the model file
FEATURES_VERSION = 1  # of the feature definition above
CLASSES = ("claim", "statement", "denial", "report", "none")
RAISABLE = ("claim", "statement", "denial", "report")  # kinds a classifier hit may have
CHAR_BITS = 20
WORD_BITS = 20
MAX_NGRAM = 5
MAX_MODEL_BYTES = 64 * 2**20
MODEL_EXTENSIONS = (".npz",)
NEVER = 2.0  # a threshold no probability reaches
# name -> (dtype kind(s), number of dimensions): every array of a model file
MODEL_FIELDS: dict[str, tuple[str, int]] = {
    "format": ("iu", 0),  # FORMAT_VERSION
    "features": ("iu", 0),  # FEATURES_VERSION
    "char_bits": ("iu", 0),
    "word_bits": ("iu", 0),
    "classes": ("U", 1),  # class names, in the order of coef's columns
    "index": ("u", 1),  # the feature indices the model knows, ascending (uint32)
    "idf": ("f", 1),  # per known index
    "coef": ("f", 2),  # (known indices, classes)
    "intercept": ("f", 1),  # per class
    "thresholds": ("f", 1),  # per class: the probability a hit of that kind needs (NEVER: none)
    "corpus_digest": ("U", 0),  # sha256 of the training items (see corpus_digest)
    "corpus_split": ("U", 0),  # the split trained on (dev)
    "trained_items": ("iu", 0),
    "params": ("U", 0),  # training parameters, as text (for people; not read)
}

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK64 = (1 << 64) - 1
_WORDS = re.compile(r"[^\W_]+")  # runs of str.isalnum() characters (as monitor.text.WORD_RE)


class ModelError(ValueError):
    """A model file cannot be used: ``str()`` is one line naming the file and the field."""

    def __init__(self, file: str | os.PathLike, message: str, field: str | None = None) -> None:
        self.file = str(file)
        self.field = field
        self.message = message
        super().__init__(f"{self.file}: " + (f"field '{field}': " if field else "") + message)


# -- features ----------------------------------------------------------------------------------
def _fnv(h: int, data: bytes) -> int:
    for b in data:
        h = ((h ^ b) * _FNV_PRIME) & _MASK64
    return h


_H_CHAR = _fnv(_FNV_OFFSET, b"c")
_H_WORD = _fnv(_FNV_OFFSET, b"w")


def _fold(h: int) -> int:
    return (h ^ (h >> 32)) & 0xFFFFFFFF


_gram_cache: dict[tuple[str, int], int] = {}  # (character n-gram, char_bits) -> bucket: the fallback's speed
_GRAM_CACHE_MAX = 500_000


def _utf8(s: str) -> bytes:
    return s.encode("utf-8", "surrogatepass")


def python_extract(text: str, char_bits: int = CHAR_BITS, word_bits: int = WORD_BITS) -> tuple[bytes, bytes, int]:
    """The features of a normalised ``text``: (indices, counts, number of character indices),
    the indices distinct, in the order of their first occurrence (character n-grams first),
    both as native ``uint32`` bytes: what the C extension's ``extract`` returns (this is its
    reference)."""
    if not (1 <= char_bits <= 30 and 1 <= word_bits <= 30):
        raise ValueError("char_bits and word_bits must be 1 to 30")
    cmask = (1 << char_bits) - 1
    wmask = (1 << word_bits) - 1
    wbase = 1 << char_bits
    counts: dict[int, int] = {}
    get = counts.get
    cache = _gram_cache
    if len(cache) > _GRAM_CACHE_MAX:
        cache.clear()
    for token in text.split():
        p = " " + token + " "
        n = len(p)
        for a in range(n - 1):
            for b in range(a + 2, min(a + MAX_NGRAM, n) + 1):
                gram = p[a:b]
                key = (gram, char_bits)
                bucket = cache.get(key)
                if bucket is None:
                    bucket = cache[key] = _fold(_fnv(_H_CHAR, _utf8(gram))) & cmask
                counts[bucket] = get(bucket, 0) + 1
    n_char = len(counts)
    prev: int | None = None
    for word in _WORDS.findall(text):
        h = _fnv(_H_WORD, _utf8(word))
        i = wbase + (_fold(h) & wmask)
        counts[i] = get(i, 0) + 1
        if prev is not None:
            i = wbase + (_fold(_fnv(prev, b" " + _utf8(word))) & wmask)
            counts[i] = get(i, 0) + 1
        prev = h
    return (np.array(list(counts), dtype=np.uint32).tobytes(), np.array(list(counts.values()), dtype=np.uint32).tobytes(),
            n_char)


def extract(text: str, char_bits: int = CHAR_BITS, word_bits: int = WORD_BITS) -> tuple[bytes, bytes, int]:
    """:func:`python_extract`, in C when the extension is built."""
    if _c_extract is not None:
        return _c_extract(text, char_bits, word_bits)
    return python_extract(text, char_bits, word_bits)


def features(text: str, char_bits: int = CHAR_BITS, word_bits: int = WORD_BITS) -> tuple[np.ndarray, np.ndarray, int]:
    """(indices, counts, number of character indices) of a raw text (normalised here), as
    ``uint32`` arrays."""
    idx, cnt, n_char = extract(normalize(text or ""), char_bits, word_bits)
    return np.frombuffer(idx, dtype=np.uint32), np.frombuffer(cnt, dtype=np.uint32), n_char


# -- the model file ----------------------------------------------------------------------------
@dataclass(eq=False)
class Model:
    """A model file's arrays, checked (:func:`load_model`), and the scorer."""

    path: str
    digest: str  # sha256 of the file
    classes: tuple[str, ...]
    char_bits: int
    word_bits: int
    index: np.ndarray  # uint32, ascending
    idf: np.ndarray  # float32
    coef: np.ndarray  # float32 (len(index), len(classes))
    intercept: np.ndarray  # float32 (len(classes),)
    thresholds: dict[str, float]  # per raisable class the model file gives a threshold for
    corpus_digest: str
    corpus_split: str
    trained_items: int
    params: str = ""
    _rowmap: np.ndarray | None = field(default=None, repr=False)
    _weights: np.ndarray | None = field(default=None, repr=False)

    def __getstate__(self) -> dict[str, Any]:  # the scoring tables are rebuilt on first use
        state = dict(self.__dict__)
        state["_rowmap"] = state["_weights"] = None
        return state

    @property
    def rowmap(self) -> np.ndarray:
        """Feature index -> row of the known indices (-1: unknown): one ``int32`` per index."""
        rm = self._rowmap
        if rm is None:
            rm = np.full((1 << self.char_bits) + (1 << self.word_bits), -1, dtype=np.int32)
            rm[self.index] = np.arange(len(self.index), dtype=np.int32)
            self._rowmap = rm
        return rm

    @property
    def weights(self) -> np.ndarray:
        """Per known index: ``idf * coef`` (one column per class) and ``idf ** 2`` (float64):
        the logits and the squared norms are then two products with the sublinear tf."""
        w = self._weights
        if w is None:
            idf = self.idf.astype(np.float64)
            w = np.empty((len(self.index), len(self.classes) + 1), dtype=np.float64)
            w[:, :-1] = idf[:, None] * self.coef.astype(np.float64)
            w[:, -1] = idf * idf
            self._weights = w
        return w

    def vector(self, idx: np.ndarray, counts: np.ndarray, n_char: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows of the known features, their TF-IDF values, each block L2-normalised): the
        features as scikit-learn's vectorisers make them (the reference; :meth:`proba_features`
        computes the same products without making the vector)."""
        rows = self.rowmap[idx]
        known = rows >= 0
        values = (1.0 + np.log(counts.astype(np.float64)))
        is_char = np.arange(len(idx)) < n_char
        rows, values, is_char = rows[known], values[known], is_char[known]
        values *= self.idf[rows]
        sq = values * values
        c2 = float(sq[is_char].sum())
        w2 = float(sq.sum()) - c2
        scale = np.where(is_char, 1.0 / math.sqrt(c2) if c2 > 0 else 0.0, 1.0 / math.sqrt(w2) if w2 > 0 else 0.0)
        return rows, values * scale

    def proba_features(self, idx: np.ndarray, counts: np.ndarray, n_char: int) -> np.ndarray:
        """Class probabilities of a text's features (:func:`features`): with ``tf = 1 + ln
        count`` and ``W`` = :attr:`weights`, each block's ``tf @ W`` gives its unnormalised
        logits and (with ``tf ** 2``) its squared norm; the block's logits are divided by its
        norm. A handful of NumPy calls whatever the text's length."""
        rows = self.rowmap[idx]
        known = rows >= 0
        k = rows[known]
        nk = int(np.count_nonzero(known[:n_char]))  # the character indices come first
        tf = np.log(counts[known], dtype=np.float64)
        tf += 1.0
        w = self.weights[k]
        logits = self.intercept.astype(np.float64)
        for a, b in ((0, nk), (nk, len(k))):
            if b > a:
                t = tf[a:b]
                part = t @ w[a:b]
                norm2 = (t * t) @ w[a:b, -1]
                if norm2 > 0:
                    logits = logits + part[:-1] / math.sqrt(norm2)
        logits = logits - logits.max()
        e = np.exp(logits)
        return e / e.sum()

    def proba(self, text: str) -> np.ndarray:
        """Probability per class (``self.classes``) of a raw text: the C extension's ``score``
        (extraction and the products of :meth:`proba_features` in one pass) when it is built,
        else :func:`features` and :meth:`proba_features`."""
        if _c_score is not None and _c_extract is not None:
            z = _c_score(normalize(text or ""), self.char_bits, self.word_bits, self.rowmap, self.weights, len(self.classes))
            logits = [a + b for a, b in zip(z, self.intercept.tolist())]
            top = max(logits)
            e = [math.exp(x - top) for x in logits]
            total = sum(e)
            return np.array([x / total for x in e])
        return self.proba_features(*features(text, self.char_bits, self.word_bits))

    def proba_many(self, texts: Iterable[str]) -> np.ndarray:
        rows = [self.proba(t) for t in texts]
        return np.array(rows) if rows else np.zeros((0, len(self.classes)))

    def size(self) -> int:
        return len(self.index)


def load_model(path: str | os.PathLike, data: bytes | None = None) -> Model:
    """Read and check a model file (``data``: its bytes, when already read); raises
    :class:`ModelError` naming the file and the field."""
    file = str(path)
    if data is None:
        try:
            size = os.path.getsize(file)
            if size > MAX_MODEL_BYTES:
                raise ModelError(file, f"model file is {size / 2**20:.1f} MiB; the limit is {MAX_MODEL_BYTES // 2**20} MiB")
            with open(file, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            raise ModelError(file, "no such model file (train one: claimwatch rules classifier train CORPUS)") from None
        except IsADirectoryError:
            raise ModelError(file, "is a directory, not a model file") from None
        except OSError as exc:
            raise ModelError(file, f"cannot read: {exc.strerror or exc}") from None
    digest = hashlib.sha256(data).hexdigest()
    try:
        npz = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # not a zip, a damaged one
        raise ModelError(file, f"not a model file (a NumPy .npz of arrays): {str(exc)[:120]}") from None
    arrays: dict[str, np.ndarray] = {}
    with npz:
        for name, (kinds, ndim) in MODEL_FIELDS.items():
            if name not in npz.files:
                raise ModelError(file, "missing", name)
            try:
                a = npz[name]
            except ValueError as exc:  # an object array (pickle refused), a damaged member
                raise ModelError(file, f"cannot be read as an array: {str(exc)[:120]}", name) from None
            except Exception as exc:  # zlib/zip errors
                raise ModelError(file, f"damaged: {str(exc)[:120]}", name) from None
            if a.dtype.kind not in kinds:
                raise ModelError(file, f"has dtype {a.dtype}, expected {_kinds_text(kinds)}", name)
            if a.ndim != ndim:
                raise ModelError(file, f"has {a.ndim} dimension(s), expected {ndim}", name)
            arrays[name] = a
    fmt = int(arrays["format"])
    if fmt != FORMAT_VERSION:
        raise ModelError(file, f"format {fmt} is not the one this claimwatch reads ({FORMAT_VERSION}); retrain", "format")
    feat = int(arrays["features"])
    if feat != FEATURES_VERSION:
        raise ModelError(file, f"feature version {feat} is not this claimwatch's ({FEATURES_VERSION}); retrain", "features")
    bits = {}
    for name in ("char_bits", "word_bits"):
        v = int(arrays[name])
        if not 1 <= v <= 24:
            raise ModelError(file, f"{v} is not 1 to 24", name)
        bits[name] = v
    classes = tuple(str(c) for c in arrays["classes"])
    if len(classes) < 2 or len(set(classes)) != len(classes) or any(c not in CLASSES for c in classes):
        raise ModelError(file, f"{list(classes)} is not two or more distinct of {', '.join(CLASSES)}", "classes")
    k = len(classes)
    index = arrays["index"]
    n = len(index)
    if index.dtype != np.uint32:
        raise ModelError(file, f"has dtype {index.dtype}, expected uint32", "index")
    limit = (1 << bits["char_bits"]) + (1 << bits["word_bits"])
    if n and (int(index[-1]) >= limit or not bool(np.all(index[1:] > index[:-1]))):
        raise ModelError(file, f"must be ascending, distinct and below {limit}", "index")
    for name, shape in (("idf", (n,)), ("coef", (n, k)), ("intercept", (k,)), ("thresholds", (k,))):
        a = arrays[name]
        if a.shape != shape:
            raise ModelError(file, f"has shape {a.shape}, expected {shape}", name)
        if name != "thresholds" and not bool(np.all(np.isfinite(a))):
            raise ModelError(file, "holds a value that is not finite", name)
    if n and float(arrays["idf"].min()) <= 0:
        raise ModelError(file, "holds a value that is not positive", "idf")
    thresholds: dict[str, float] = {}
    for c, t in zip(classes, arrays["thresholds"].tolist()):
        if c == "none" or math.isnan(t):
            continue
        if not 0.0 <= t <= NEVER:
            raise ModelError(file, f"{c}: {t} is not a probability (0 to 1, or {NEVER:g}: never)", "thresholds")
        thresholds[c] = float(t)
    digest_text = str(arrays["corpus_digest"])
    if not re.fullmatch(r"[0-9a-f]{64}", digest_text):
        raise ModelError(file, "is not a sha256 (64 hex digits)", "corpus_digest")
    return Model(
        path=file, digest=digest, classes=classes, char_bits=bits["char_bits"], word_bits=bits["word_bits"],
        index=np.ascontiguousarray(index), idf=arrays["idf"].astype(np.float64),
        coef=np.ascontiguousarray(arrays["coef"], dtype=np.float32), intercept=arrays["intercept"].astype(np.float64),
        thresholds=thresholds, corpus_digest=digest_text, corpus_split=str(arrays["corpus_split"]),
        trained_items=int(arrays["trained_items"]), params=str(arrays["params"]),
    )


def _kinds_text(kinds: str) -> str:
    names = {"i": "integer", "u": "unsigned integer", "f": "float", "U": "text"}
    return " or ".join(names[k] for k in kinds)


_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def model_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """The ``.npz`` bytes of ``arrays`` (every field of :data:`MODEL_FIELDS`, in that order),
    compressed, with fixed zip dates and attributes: the same arrays give the same bytes."""
    missing = [k for k in MODEL_FIELDS if k not in arrays]
    if missing:
        raise ValueError(f"model arrays lack {', '.join(missing)}")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in MODEL_FIELDS:
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue(), compresslevel=9)
    return buf.getvalue()


def save_model(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> str:
    """Write ``arrays`` as a model file (atomically: a temporary file renamed into place);
    returns its sha256."""
    data = model_bytes(arrays)
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return hashlib.sha256(data).hexdigest()


# -- the classifier file (rules/classifier.yml) and the compiled classifier -----------------------
WHEN = ("always", "no-rule-alert")


@dataclass(frozen=True, eq=False)
class ClassifierSpec:
    """What a classifier file says (validated by the loader) and its model, loaded."""

    id: str
    title: str
    level: str
    model: Model
    model_file: str  # as resolved (beside the classifier file)
    kinds: tuple[str, ...]  # what it may raise
    thresholds: dict[str, float]  # per kind: the file's, else the model's
    file: str
    line: int = 1
    description: str = ""
    tags: tuple[str, ...] = ("classifier",)
    alert: tuple[str, ...] = ()
    throttle: int | None = None
    enabled: bool = True
    when: str = "always"  # always | no-rule-alert (only where no rule hit at the classifier's level or above)
    levels: dict[str, str] = field(default_factory=dict)  # per kind: its hit's level (else ``level``)


class Classifier:
    """The compiled classifier a :class:`~monitor.rules.Matcher` holds: :meth:`hit` scores a
    message and returns its hit or None."""

    def __init__(self, spec: ClassifierSpec, default_destinations: Sequence[str] = ("console",)) -> None:
        from ..model import LEVELS

        self.spec = spec
        self.model = spec.model
        m = spec.model
        self.char_bits, self.word_bits = m.char_bits, m.word_bits
        self.classes = m.classes
        # per class: the probability its hit needs (NEVER when the classifier may not raise it)
        self.threshold = [spec.thresholds.get(c, NEVER) if c in spec.kinds else NEVER for c in m.classes]
        self.level = spec.level
        self.levels = {c: spec.levels.get(c, spec.level) for c in m.classes}
        self.rank = LEVELS.index(spec.level)
        self._ranks = {lv: i for i, lv in enumerate(LEVELS)}
        self.no_rule_alert = spec.when == "no-rule-alert"
        self.fields = dict(
            rule_id=spec.id, rule_hash=m.digest, matches=(),
            destinations=tuple(spec.alert) or tuple(default_destinations), throttle_seconds=spec.throttle,
            tags=tuple(spec.tags),
        )
        self.titles = {c: f"{spec.title}: {c}" for c in m.classes}
        self.key = spec.id + m.digest  # in the rule set's fingerprint (daemon status, bus workers)

    def proba(self, text: str) -> np.ndarray:
        return self.model.proba(text)

    def level_of(self, kind: str) -> str:
        """The level of a hit of ``kind``."""
        return self.levels.get(kind, self.level)

    def decide(self, proba: np.ndarray, rule_hits: Sequence[Any]) -> tuple[str, float] | None:
        """(kind, probability) of the hit the classifier raises beside ``rule_hits`` (objects
        with ``level``), or None. The same decision :meth:`hit` takes (training and ``rules
        eval`` use it on probabilities computed in bulk)."""
        if self.no_rule_alert:
            ranks = self._ranks
            if any(ranks.get(h.level, 0) >= self.rank for h in rule_hits):
                return None
        j = int(proba.argmax())
        p = float(proba[j])
        if p < self.threshold[j]:
            return None
        return self.classes[j], p

    def hit(self, msg: Message, rule_hits: list[Hit], actors: Any = None) -> Hit | None:
        """The classifier's hit on ``msg`` beside ``rule_hits``, or None. ``actors``: a
        callable giving the message's actors (asked only when there is a hit)."""
        if self.no_rule_alert and rule_hits:
            ranks = self._ranks
            if any(ranks.get(h.level, 0) >= self.rank for h in rule_hits):
                return None  # nothing to score
        got = self.decide(self.proba(msg.text or ""), rule_hits)
        if got is None:
            return None
        kind, p = got
        if rule_hits:
            found = rule_hits[0].actors
        else:
            found = actors() if actors is not None else ()
        return Hit(title=self.titles[kind], level=self.levels[kind], kind=kind, actors=tuple(found), score=round(p, 6),
                   **self.fields)


def corpus_digest(items: Iterable[Any]) -> str:
    """sha256 of the training items (id, language, label, text; sorted by id): what a model
    records of the corpus it was trained on, so ``rules eval`` can tell a stale model."""
    h = hashlib.sha256(b"claimwatch classifier corpus v1\n")
    for it in sorted(items, key=lambda it: it.id):
        h.update("\0".join((it.id, it.lang, it.label, it.text)).encode("utf-8", "surrogatepass") + b"\n")
    return h.hexdigest()


def stale_reason(model: Model, corpus_paths: Sequence[str | os.PathLike]) -> str | None:
    """Why ``model`` no longer fits the corpus at ``corpus_paths`` (its training split's items
    changed since it was trained), or None when it fits, when the paths hold none of the
    training split's items (another corpus, e.g. a held-out set of ``test`` items: nothing to
    compare) or when the corpus cannot be read (the caller reports that)."""
    from .evaluate import CorpusError, read_corpus

    split = model.corpus_split or "dev"
    try:
        items = read_corpus(list(corpus_paths), split if split in ("dev", "test") else "all")
    except CorpusError:
        return None
    if not items or corpus_digest(items) == model.corpus_digest:
        return None
    return (f"the classifier model {model.path} was trained on another '{split}' corpus ({model.trained_items} items; "
            f"now {len(items)}): retrain it: claimwatch rules classifier train {' '.join(map(str, corpus_paths))}")
