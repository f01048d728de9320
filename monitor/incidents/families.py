"""Near-duplicate texts: exact fingerprints, MinHash signatures and LSH band keys.

A repost is recognised three ways, cheapest first:

1. Telegram/X say so: ``forwarded_from`` names the origin channel and message;
2. the same normalised text (:func:`fingerprint`: the words of
   :func:`monitor.rules.normalize.normalize`, SHA-256): a plain copy;
3. a near-duplicate (light edits, a trimmed or extended copy): MinHash (``datasketch``) over
   word shingles of the normalised text, looked up through LSH band keys. The signatures are
   stored in the archive (``family_texts.signature``); the band index is kept in memory by
   each writing process (:class:`BandIndex`, rebuilt from the stored signatures in one numpy
   pass). A candidate is accepted when the estimated Jaccard similarity is at least
   :data:`JACCARD` or when the shorter text is (estimated) at least :data:`CONTAINMENT`
   contained in the longer one (a trimmed copy).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import numpy as np
from datasketch import MinHash

from ..rules.normalize import WORD_RE, normalize

NUM_PERM = 32  # the estimate only preselects: candidates are compared on their actual shingles
BANDS = 16  # 16 bands of 2 rows: P(candidate) ~0.78 at Jaccard 0.3, ~0.99 at 0.5
ROWS = NUM_PERM // BANDS
SHINGLE = 3  # words per shingle
MIN_WORDS = 10  # shorter texts only match exactly (fingerprint): in a short text one changed word is a new statement
JACCARD = 0.5
CONTAINMENT = 0.8
MIN_CONTAINED_SHINGLES = 8

SCHEME = "affine32"  # datasketch >= 2.0 permutation scheme; stored signatures use it
_PERMS = MinHash(num_perm=NUM_PERM, seed=1, scheme=SCHEME).permutations  # fixed: signatures are stored


def words(text: str) -> list[str]:
    return WORD_RE.findall(normalize(text or ""))


def fingerprint(ws: list[str]) -> str | None:
    """Exact-copy key of a text (None for a text without words)."""
    if not ws:
        return None
    return hashlib.sha256(" ".join(ws).encode("utf-8")).hexdigest()[:32]


@dataclass
class Signature:
    values: np.ndarray  # uint64[NUM_PERM]
    shingles: int
    _keys: list[int] | None = None
    shingle_set: set[bytes] | None = None  # kept from signature() for the exact comparison

    def to_blob(self) -> bytes:
        return struct.pack("<I", self.shingles) + self.values.astype("<u8").tobytes()

    @classmethod
    def from_blob(cls, blob: bytes) -> "Signature":
        (n,) = struct.unpack_from("<I", blob)
        return cls(np.frombuffer(blob, dtype="<u8", offset=4).astype(np.uint64), n)

    def band_keys(self) -> list[int]:
        """One key per band (band number mixed in); computed once."""
        if self._keys is None:
            v = self.values.tolist()
            self._keys = [hash((b, *v[b * ROWS:(b + 1) * ROWS])) for b in range(BANDS)]
        return self._keys

    def similar(self, other: "Signature") -> bool:
        return bool(similar_many(self, np.asarray(other.values)[None, :], np.array([other.shingles])))


# band keys (Python's hash of (band, values): the same in every process for ints) live in
# memory only, so the formula may change freely; the stored signatures may not


def similar_many(sig: Signature, values: np.ndarray, shingles: np.ndarray) -> list[tuple[int, float]]:
    """Which of the candidates (``values`` (n, NUM_PERM), their shingle counts) may be near
    copies of ``sig`` by the MinHash estimate: estimated Jaccard >= JACCARD, or the shorter one
    >= CONTAINMENT contained. Returns ``(index, estimated Jaccard)`` of those."""
    est = np.count_nonzero(values == sig.values, axis=1) * (1.0 / NUM_PERM)
    n = sig.shingles
    small = np.minimum(shingles, n)
    ok = (est >= JACCARD) | ((small >= MIN_CONTAINED_SHINGLES) & (est * (shingles + n) >= CONTAINMENT * small * (1 + est))
                             & (est > 0))
    idx = np.flatnonzero(ok).tolist()
    return list(zip(idx, est[idx].tolist()))


def shingles(ws: list[str]) -> set[bytes]:
    return {" ".join(ws[i:i + SHINGLE]).encode("utf-8") for i in range(len(ws) - SHINGLE + 1)}


def near_copy(a: set[bytes], b: set[bytes]) -> float:
    """The exact test the MinHash estimate stands for: Jaccard >= JACCARD, or the smaller set
    (>= MIN_CONTAINED_SHINGLES) >= CONTAINMENT contained in the other. Returns the larger of
    Jaccard and containment when it passes, else 0.0."""
    if not a or not b:
        return 0.0
    inter = len(a & b)
    jac = inter / (len(a) + len(b) - inter)
    small = min(len(a), len(b))
    cont = inter / small if small >= MIN_CONTAINED_SHINGLES else 0.0
    return max(jac, cont) if jac >= JACCARD or cont >= CONTAINMENT else 0.0


def same_numbers(a: list[str], b: list[str]) -> bool:
    """Do two texts agree on their numbers (the shorter one's all in the other)? A light edit or
    a trimmed copy keeps them; the same template about another event changes the toll."""
    na = {w for w in a if w.isdigit()}
    nb = {w for w in b if w.isdigit()}
    return na <= nb if len(a) <= len(b) else nb <= na


def signature(ws: list[str]) -> Signature | None:
    """MinHash of the text's word shingles (None below :data:`MIN_WORDS` words)."""
    if len(ws) < MIN_WORDS:
        return None
    sh = shingles(ws)
    if _fmix is None:  # a datasketch without the helper: its own (slower) path
        m = MinHash(num_perm=NUM_PERM, permutations=_PERMS, scheme=SCHEME)
        m.update_batch(sh)
        return Signature(m.hashvalues.astype(np.uint64), len(sh), shingle_set=sh)
    # datasketch's affine32 scheme (MinHash.update_batch, CPU path) without its per-call
    # overhead: sha1_hash32 of each shingle, the murmur3 finaliser, a*h + b (uint32), min.
    # tests/test_incidents_state.py checks it gives datasketch's values.
    sha1 = hashlib.sha1
    hv = np.array([int.from_bytes(sha1(x).digest()[:4], "little") for x in sh], dtype=np.uint32)
    hv = _fmix(hv, 32)
    return Signature((hv[:, None] * _A + _B).min(axis=0).astype(np.uint64), len(sh), shingle_set=sh)


try:
    from datasketch.minhash import _fmix
except ImportError:  # pragma: no cover - the helper is private
    _fmix = None
_A, _B = (np.asarray(p, dtype=np.uint32) for p in _PERMS)
