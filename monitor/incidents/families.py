"""Near-duplicate texts: exact fingerprints, MinHash signatures and LSH band keys.

A repost is recognised three ways, cheapest first:

1. Telegram/X say so: ``forwarded_from`` names the origin channel and message;
2. the same normalised text (:func:`fingerprint`: the words of
   :func:`monitor.rules.normalize.normalize`, SHA-256): a plain copy;
3. a near-duplicate (light edits, a trimmed or extended copy): MinHash (``datasketch``) over
   word shingles of the normalised text, looked up through LSH band keys stored in the
   archive (``family_bands``), so the index is shared by every process writing the archive
   and survives restarts. A candidate is accepted when the estimated Jaccard similarity is at
   least :data:`JACCARD` or when the shorter text is (estimated) at least :data:`CONTAINMENT`
   contained in the longer one (a trimmed copy).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import numpy as np
from datasketch import MinHash

from ..rules.normalize import WORD_RE, normalize

NUM_PERM = 64
BANDS = 32  # 32 bands of 2 rows: P(candidate) ~0.95 at Jaccard 0.3, ~1.0 at 0.5
ROWS = NUM_PERM // BANDS
SHINGLE = 3  # words per shingle
MIN_WORDS = 6  # shorter texts only match exactly (fingerprint)
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

    def to_blob(self) -> bytes:
        return struct.pack("<I", self.shingles) + self.values.astype("<u8").tobytes()

    @classmethod
    def from_blob(cls, blob: bytes) -> "Signature":
        (n,) = struct.unpack_from("<I", blob)
        return cls(np.frombuffer(blob, dtype="<u8", offset=4).astype(np.uint64), n)

    def band_keys(self) -> list[int]:
        """One signed 64-bit key per band (band number mixed in)."""
        v = self.values
        out = []
        for b in range(BANDS):
            h = hashlib.blake2b(v[b * ROWS:(b + 1) * ROWS].tobytes(), digest_size=8, person=b"band%04d" % b).digest()
            out.append(int.from_bytes(h, "little", signed=True))
        return out

    def similar(self, other: "Signature") -> bool:
        j = float(np.count_nonzero(self.values == other.values)) / NUM_PERM
        if j >= JACCARD:
            return True
        small = min(self.shingles, other.shingles)
        if small < MIN_CONTAINED_SHINGLES or j <= 0:
            return False
        inter = j * (self.shingles + other.shingles) / (1 + j)
        return inter / small >= CONTAINMENT


def signature(ws: list[str]) -> Signature | None:
    """MinHash of the text's word shingles (None below :data:`MIN_WORDS` words)."""
    if len(ws) < MIN_WORDS:
        return None
    shingles = {" ".join(ws[i:i + SHINGLE]).encode("utf-8") for i in range(len(ws) - SHINGLE + 1)}
    m = MinHash(num_perm=NUM_PERM, permutations=_PERMS, scheme=SCHEME)
    m.update_batch(list(shingles))
    return Signature(m.hashvalues.copy(), len(shingles))
