"""The job store: one SQLite file (stdlib, WAL) at DST/.vidcolor/jobs.sqlite.

Only the coordinator writes it (workers report results back to it), one short transaction per
state change, so a kill -9 at any moment leaves a consistent record: at worst an item reads
``running`` and is redone on resume. WAL lets ``vidcolor batch status`` read while a job runs.
``synchronous=NORMAL`` survives a killed process (not necessarily a power cut, which at worst
redoes the last items).

Per item: state (pending, running, done, failed), attempts in the latest run, last error, the
input fingerprint (size, mtime, content hash), the settings hash, frames, and ``completions``:
how many times the item's output was produced, which is how tests prove "exactly once".
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vidcolor.errors import InputError
from vidcolor.jobs.fingerprint import Fingerprint
from vidcolor.jobs.scan import Detected

STATES = ("pending", "running", "done", "failed")
SCHEMA_VERSION = "2"  # 2: items.warnings (schema 1 stores are upgraded in place)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    key TEXT PRIMARY KEY,            -- output path relative to DST
    src TEXT NOT NULL,
    kind TEXT NOT NULL,              -- video | image
    state TEXT NOT NULL,             -- pending | running | done | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    settings_hash TEXT NOT NULL,
    expected_frames INTEGER NOT NULL DEFAULT 0,
    frames INTEGER,
    seconds REAL,
    completions INTEGER NOT NULL DEFAULT 0,
    output_before TEXT,              -- the output's stat when the running attempt began
    worker TEXT,
    updated_ns INTEGER NOT NULL,
    warnings TEXT NOT NULL DEFAULT '[]'  -- JSON list: what the last successful attempt warned about
);
CREATE TABLE IF NOT EXISTS detections (  -- content detection by (path, size, mtime): scans resume fast
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    kind TEXT NOT NULL,
    image_name TEXT NOT NULL,
    frames INTEGER NOT NULL,
    note TEXT NOT NULL,
    reason TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class ItemRow:
    key: str
    src: str
    kind: str
    state: str
    attempts: int
    error: str | None
    size: int
    mtime_ns: int
    content_hash: str
    settings_hash: str
    expected_frames: int
    frames: int | None
    seconds: float | None
    completions: int
    output_before: str | None
    worker: str | None
    updated_ns: int
    warnings: str = "[]"

    @property
    def warning_list(self) -> list[str]:
        try:
            value = json.loads(self.warnings or "[]")
        except ValueError:
            return []
        return [str(w) for w in value] if isinstance(value, list) else []

    @property
    def fingerprint(self) -> Fingerprint:
        return Fingerprint(self.size, self.mtime_ns, self.content_hash)


def state_dir(dst: Path) -> Path:
    return dst / ".vidcolor"


def store_path(dst: Path) -> Path:
    return state_dir(dst) / "jobs.sqlite"


def output_signature(path: Path) -> str:
    """Identity of the file at ``path`` now ("" when absent): a rename puts a new inode there."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return ""
    return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


class JobStore:
    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, dst: Path, create: bool = True) -> JobStore:
        path = store_path(dst)
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.exists():
            raise InputError(f"{dst}: no batch job here (no {path.relative_to(dst)})")
        if path.exists() and path.stat().st_size == 0:
            # SQLite would take an empty file for a new store and the job would silently redo
            # every item: a store that lost its contents is damage to report, not a fresh start.
            raise InputError(
                f"{path}: job store is empty (damaged); restore it, or delete {path.parent} to start the job afresh"
            )
        try:
            # autocommit (isolation_level=None): each statement or explicit BEGIN block is one
            # transaction; nothing stays half-written in a Python-side buffer.
            conn = sqlite3.connect(path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            if create:
                conn.executescript(SCHEMA)
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            version = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if version is not None and version[0] == "1":  # schema 1 lacked the warnings column
                with conn:
                    conn.execute("ALTER TABLE items ADD COLUMN warnings TEXT NOT NULL DEFAULT '[]'")
                    conn.execute("UPDATE meta SET value=? WHERE key='schema'", (SCHEMA_VERSION,))
                version = (SCHEMA_VERSION,)
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{path}: job store is damaged or not SQLite ({exc})") from None
        if version is None or version[0] != SCHEMA_VERSION:
            conn.close()
            raise InputError(f"{path}: job store schema {version[0] if version else '?'} is not {SCHEMA_VERSION}")
        return cls(conn, path)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> JobStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------------------
    def get(self, key: str) -> ItemRow | None:
        row = self.conn.execute("SELECT * FROM items WHERE key=?", (key,)).fetchone()
        return ItemRow(**dict(row)) if row else None

    def rows(self) -> list[ItemRow]:
        return [ItemRow(**dict(r)) for r in self.conn.execute("SELECT * FROM items ORDER BY key")]

    def counts(self) -> dict[str, int]:
        counts = {s: 0 for s in STATES}
        for state, n in self.conn.execute("SELECT state, COUNT(*) FROM items GROUP BY state"):
            counts[state] = n
        return counts

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    # -- writing (coordinator only) ------------------------------------------------------------
    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def queue(self, key: str, src: str, kind: str, fp: Fingerprint, settings_hash: str, expected_frames: int) -> None:
        """(Re)plan an item from scratch for this run: pending, no attempts yet."""
        self.conn.execute(
            """INSERT INTO items (key, src, kind, state, attempts, error, size, mtime_ns, content_hash,
                   settings_hash, expected_frames, updated_ns)
               VALUES (?, ?, ?, 'pending', 0, NULL, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(key) DO UPDATE SET src=excluded.src, kind=excluded.kind, state='pending',
                   attempts=0, error=NULL, size=excluded.size, mtime_ns=excluded.mtime_ns,
                   content_hash=excluded.content_hash, settings_hash=excluded.settings_hash,
                   expected_frames=excluded.expected_frames, output_before=NULL, worker=NULL,
                   updated_ns=excluded.updated_ns""",
            (key, src, kind, fp.size, fp.mtime_ns, fp.content_hash, settings_hash, expected_frames, time.time_ns()),
        )

    def refresh_fingerprint(self, key: str, fp: Fingerprint) -> None:
        """Same content, new stat (a touched file): keep the item, remember the new mtime."""
        self.conn.execute(
            "UPDATE items SET size=?, mtime_ns=?, updated_ns=? WHERE key=?",
            (fp.size, fp.mtime_ns, time.time_ns(), key),
        )

    def start(self, key: str, output_before: str) -> int:
        """An attempt begins; returns the attempt number (1-based)."""
        with self.transaction():
            self.conn.execute(
                "UPDATE items SET state='running', attempts=attempts+1, output_before=?, worker=NULL, updated_ns=? "
                "WHERE key=?",
                (output_before, time.time_ns(), key),
            )
            return int(self.conn.execute("SELECT attempts FROM items WHERE key=?", (key,)).fetchone()[0])

    def finish(
        self, key: str, frames: int, seconds: float, worker: str, warnings: tuple[str, ...] | list[str] = ()
    ) -> None:
        """The output is in place: done, and one more completion on record, with its warnings
        (a truncated source, a dropped stream): done is not the same as done cleanly."""
        self.conn.execute(
            "UPDATE items SET state='done', error=NULL, frames=?, seconds=?, completions=completions+1, "
            "worker=?, updated_ns=?, warnings=? WHERE key=?",
            (frames, seconds, worker, time.time_ns(), json.dumps(list(warnings)), key),
        )

    def fail(self, key: str, error: str, final: bool, worker: str) -> None:
        """A failed attempt: ``failed`` when no retry is left, else back to ``pending``."""
        self.conn.execute(
            "UPDATE items SET state=?, error=?, worker=?, updated_ns=? WHERE key=?",
            ("failed" if final else "pending", error, worker, time.time_ns(), key),
        )

    def release(self, key: str) -> None:
        """An attempt was interrupted (Ctrl-C): not the item's fault, it does not count."""
        self.conn.execute(
            "UPDATE items SET state='pending', attempts=MAX(attempts-1, 0), updated_ns=? WHERE key=?",
            (time.time_ns(), key),
        )

    # -- detection cache (vidcolor.jobs.scan.DetectionCache) ---------------------------------------
    def lookup(self, path: str, size: int, mtime_ns: int) -> Detected | None:
        row = self.conn.execute(
            "SELECT kind, image_name, frames, note, reason FROM detections WHERE path=? AND size=? AND mtime_ns=?",
            (path, size, mtime_ns),
        ).fetchone()
        return Detected(*row) if row else None

    def remember(self, path: str, size: int, mtime_ns: int, detected: Detected) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO detections VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (path, size, mtime_ns, detected.kind, detected.image_name, detected.frames, detected.note, detected.reason),
        )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")


@contextmanager
def job_lock(dst: Path) -> Iterator[None]:
    """One coordinator per DST: a second ``vidcolor batch`` on the same folder is refused, so two
    jobs never do the same item twice or write the same temp files."""
    path = state_dir(dst) / "lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks here; single-user use assumed
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"{dst}: another vidcolor batch is running on this destination") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield  # the lock dies with the process, even on kill -9
    finally:
        os.close(fd)
