"""Input fingerprints: what tells a resumed job that a source file changed.

``content_hash`` is sha256 over the whole file for files up to ``FULL_HASH_LIMIT`` (64 MiB:
every photo and most clips), and for larger files sha256 over the size, the first 8 MiB and the
last 8 MiB: a film re-encoded, trimmed or replaced changes its size, header or tail, and hashing
a 40 GB master in full on every resume would cost minutes of disk time for nothing. The hash is
prefixed ``full:`` or ``ht:`` so the scheme is visible in the store and the report.

Like git's index, a file whose size and mtime match the stored ones keeps its stored hash
(``stat_matches``), so a resume re-reads nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from vidcolor.hashing import sha256_file

FULL_HASH_LIMIT = 64 << 20
HEAD_TAIL = 8 << 20


@dataclass(frozen=True)
class Fingerprint:
    size: int
    mtime_ns: int
    content_hash: str

    def same_content(self, other: Fingerprint) -> bool:
        return self.content_hash == other.content_hash and self.size == other.size


def content_hash(path: Path, size: int) -> str:
    if size <= FULL_HASH_LIMIT:
        return "full:" + sha256_file(path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(str(size).encode() + b"\0")
        h.update(f.read(HEAD_TAIL))
        f.seek(size - HEAD_TAIL)
        h.update(f.read(HEAD_TAIL))
        return "ht:" + h.hexdigest()


def fingerprint(path: Path, known: Fingerprint | None = None) -> Fingerprint:
    """Fingerprint ``path``; reuse ``known``'s hash when size and mtime are unchanged."""
    st = path.stat()
    if known is not None and known.size == st.st_size and known.mtime_ns == st.st_mtime_ns:
        return known
    return Fingerprint(st.st_size, st.st_mtime_ns, content_hash(path, st.st_size))
