"""Near-duplicate texts: exact fingerprints, MinHash signatures and LSH band keys.

A repost is recognised three ways, cheapest first:

1. Telegram/X say so: ``forwarded_from`` names the origin channel and message;
2. the same normalised text (:func:`fingerprint`: the words of
   :func:`monitor.text.normalize`, SHA-256): a plain copy;
3. a near-duplicate (light edits, a trimmed or extended copy): MinHash over
   word shingles of the normalised text, looked up through LSH band keys. The signatures are
   datasketch's (``MinHash(num_perm=32, seed=1, scheme="affine32")``: SHA-1 of each shingle,
   murmur3 finaliser, affine permutations), computed here with numpy directly; tests check the
   values are datasketch's. Measured (docs/performance.md, "Incidents"): importing datasketch
   imports scipy (+68 MB RSS and ~2.6 s per writing process) and its ``MinHash`` costs ~300 us
   a text against ~35 us here, its ``MinHashLSH.query`` ~570 us on templated texts: more than
   the whole assignment budget. rensa (Rust, ~2 us a text) was measured too: its values are
   not datasketch's (stored signatures would change) and with the same bands the bench's
   family recall fell from 0.918 to 0.887. The signatures are stored in the archive
   (``family_texts.signature``) with their band keys (``family_bands``, the index of the texts
   a writing process does not hold in memory; :mod:`.assign` keeps the others' bands in
   memory). The texts sharing most bands are compared on their actual shingles
   (:func:`near_copy`: Jaccard >= :data:`JACCARD`, or the shorter text >= :data:`CONTAINMENT`
   contained in the longer: a trimmed copy).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import numpy as np

from ..text import word_text

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
    """``WORD_RE.findall(normalize(text))``: the normalised text with every other character a
    space (:func:`monitor.text.word_text`, one table lookup a character), split (3-4x quicker
    here than the regular expression, which a test compares it with)."""
    return word_text(text).split() if text else []


FINGERPRINT_CHARS = 16  # hex characters of the SHA-256 kept: 64 bits (32 before migration 9)


def fingerprint(ws: list[str]) -> str | None:
    """Exact-copy key of a text (None for a text without words): the first 64 bits of the
    SHA-256 of its words, in hex. (128 bits until migration 9: ``family_texts``'s unique index
    of the keys, which every commit of new texts changes all over, is under half the size.)"""
    if not ws:
        return None
    return hashlib.sha256(" ".join(ws).encode("utf-8")).hexdigest()[:FINGERPRINT_CHARS]


# a band key: the band's two 32-bit values in one 64-bit int, mixed with the band number (in
# memory only: the formula may change freely; the stored signatures may not)
_MIX = [(b * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF for b in range(BANDS)]
_MIX_NP = np.array(_MIX, dtype=np.uint64)
_BLOB = struct.Struct(f"<I{NUM_PERM}Q")  # shingles, then the values (uint64, as datasketch keeps them)
_BLOB_ROW = np.dtype([("n", "<u4"), ("v", "<u8", (NUM_PERM,))])  # the same, packed (numpy)


@dataclass
class Signature:
    values: list[int]  # NUM_PERM values (< 2**32)
    shingles: int
    _keys: list[int] | None = None
    shingle_set: set[bytes] | None = None  # kept from signature() for the exact comparison
    blob: bytes | None = None  # to_blob(), made by signatures() for the whole batch at once

    def to_blob(self) -> bytes:
        if self.blob is not None:
            return self.blob
        return _BLOB.pack(self.shingles, *self.values)

    @classmethod
    def from_blob(cls, blob: bytes) -> "Signature":
        n, *values = _BLOB.unpack(blob)
        return cls(values, n)

    def band_keys(self) -> list[int]:
        """One key per band (band number mixed in; a signed 64-bit int, as the archive's
        ``family_bands`` keeps it); computed once."""
        if self._keys is None:
            v = self.values
            self._keys = [k - _2_64 if k >> 63 else k
                          for k in ((v[i] << 32 | v[i + 1]) ^ m for i, m in zip(range(0, NUM_PERM, ROWS), _MIX))]
        return self._keys


_2_64 = 1 << 64


def _band_keys(values: np.ndarray) -> np.ndarray:
    """``int64[n, BANDS]`` band keys of ``n`` signatures' values (``[n, NUM_PERM]``, < 2**32)."""
    pairs = values.reshape(len(values), BANDS, ROWS).astype(np.uint64)
    return ((pairs[:, :, 0] << np.uint64(32) | pairs[:, :, 1]) ^ _MIX_NP).view(np.int64)


def band_key_matrix(blobs: list[bytes]) -> np.ndarray:
    """The band keys of stored signatures (``int64[len(blobs), BANDS]``, as
    :meth:`Signature.band_keys`), computed at once."""
    if not blobs:
        return np.zeros((0, BANDS), dtype=np.int64)
    mat = np.frombuffer(b"".join(blob[4:4 + 8 * NUM_PERM] for blob in blobs), dtype="<u8")
    return _band_keys(mat.reshape(len(blobs), NUM_PERM))


def shingles(ws: list[str]) -> set[bytes]:
    """The text's word 3-shingles (``"a b c"``, UTF-8; joined and encoded by map: ~25 % quicker
    than a comprehension)."""
    return set(map(str.encode, map(" ".join, zip(ws, ws[1:], ws[2:]))))


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
    return signatures([ws])[0]


def signatures(texts: list[list[str]]) -> list[Signature | None]:
    """:func:`signature` of several texts (their words) with one numpy pass over all their
    shingles (a writer's batch: the per-call numpy overhead is paid once)."""
    out: list[Signature | None] = [None] * len(texts)
    sets: list[set[bytes]] = []
    where: list[int] = []
    for i, ws in enumerate(texts):
        if len(ws) >= MIN_WORDS:
            sets.append(shingles(ws))
            where.append(i)
    if not sets:
        return out
    sha1 = hashlib.sha1
    cache = _SHINGLE_HASH
    get = cache.get
    parts = []
    add = parts.append
    for sh in sets:
        for x in sh:
            h = get(x)
            if h is None:
                if len(cache) >= SHINGLE_HASHES:
                    cache.clear()
                h = cache[x] = sha1(x).digest()[:4]
            add(h)
    hv = np.frombuffer(b"".join(parts), dtype="<u4").astype(np.uint32)
    sizes = [len(sh) for sh in sets]
    starts = np.zeros(len(sizes), dtype=np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    with np.errstate(over="ignore"):
        hv ^= hv >> _S16
        hv *= _M1
        hv ^= hv >> _S13
        hv *= _M2
        hv ^= hv >> _S16
        values = np.minimum.reduceat(hv[:, None] * _A + _B, starts, axis=0)
    keys = _band_keys(values).tolist()
    rows = np.empty(len(sizes), dtype=_BLOB_ROW)  # the stored blobs (_BLOB), all at once
    rows["n"] = sizes
    rows["v"] = values
    buf, w = rows.tobytes(), _BLOB.size
    for j, (i, sh, n, v, k) in enumerate(zip(where, sets, sizes, values.tolist(), keys)):
        out[i] = Signature(v, n, k, sh, buf[j * w:(j + 1) * w])
    return out


# the first 4 bytes of the SHA-1 of recent shingles (texts of one template, reposts and trimmed
# copies share most of theirs: ~half the signature's time; cleared when full, ~4 MB at most)
SHINGLE_HASHES = 32768
_SHINGLE_HASH: dict[bytes, bytes] = {}


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
