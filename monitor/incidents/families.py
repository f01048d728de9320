"""Near-duplicate texts: exact fingerprints, MinHash signatures and LSH band keys.

A repost is recognised three ways, cheapest first:

1. Telegram/X say so: ``forwarded_from`` names the origin channel and message;
2. the same normalised text (:func:`fingerprint`: the words of
   :func:`monitor.text.normalize`, SHA-256): a plain copy;
3. a near-duplicate (light edits, a trimmed or extended copy): MinHash over
   word shingles of the normalised text, looked up through LSH band keys. The signatures are
   datasketch's (``MinHash(num_perm=32, seed=1, scheme="affine32")``: SHA-1 of each shingle,
   murmur3 finaliser, affine permutations), computed here with numpy directly: datasketch's
   package imports scipy (+55 MB per process) and its per-call overhead doubled the cost;
   tests check the values are datasketch's. The signatures are stored in the archive
   (``family_texts.signature``); the band index is kept in memory by each writing process
   (:mod:`.assign`). The texts sharing most bands are compared on their actual shingles
   (:func:`near_copy`: Jaccard >= :data:`JACCARD`, or the shorter text >= :data:`CONTAINMENT`
   contained in the longer: a trimmed copy).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import numpy as np

from ..text import WORD_RE, normalize

NUM_PERM = 32  # the estimate only preselects: candidates are compared on their actual shingles
BANDS = 16  # 16 bands of 2 rows: P(candidate) ~0.78 at Jaccard 0.3, ~0.99 at 0.5
ROWS = NUM_PERM // BANDS
SHINGLE = 3  # words per shingle
MIN_WORDS = 10  # shorter texts only match exactly (fingerprint): in a short text one changed word is a new statement
JACCARD = 0.5
CONTAINMENT = 0.8
MIN_CONTAINED_SHINGLES = 8

SCHEME = "affine32"  # datasketch >= 2.0 permutation scheme the stored signatures follow


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


# band keys (Python's hash of (band, values): the same in every process for ints) live in
# memory only, so the formula may change freely; the stored signatures may not


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
    sha1 = hashlib.sha1
    hv = np.array([int.from_bytes(sha1(x).digest()[:4], "little") for x in sh], dtype=np.uint32)
    with np.errstate(over="ignore"):
        hv ^= hv >> _S16
        hv *= _M1
        hv ^= hv >> _S13
        hv *= _M2
        hv ^= hv >> _S16
        values = (hv[:, None] * _A + _B).min(axis=0)
    return Signature(values.astype(np.uint64), len(sh), shingle_set=sh)


def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutations for ``seed`` (``MinHash._init_permutations``)."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


# MurmurHash3's 32-bit finaliser (datasketch's _fmix for affine32) and the permutations
_S16, _S13 = np.uint32(16), np.uint32(13)
_M1, _M2 = np.uint32(0x85EBCA6B), np.uint32(0xC2B2AE35)
_A, _B = _permutations(NUM_PERM, 1)
