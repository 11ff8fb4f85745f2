"""Safe output files for a run: an exclusive lock on OUT, a unique temporary beside it that is
never one of the inputs, and removal of the temporaries that killed runs left behind.

A temporary is ``.STEM.TOKEN.partial.EXT`` in OUT's folder (same filesystem, so the final rename
is atomic), created with O_EXCL so that no two runs and no existing file share it. Only the
holder of OUT's lock writes temporaries for OUT, so any other such file found while holding the
lock belongs to a dead run and is removed (never a file that is one of the run's inputs).
"""

from __future__ import annotations

import fcntl
import glob
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from vidcolor.errors import OutputError


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def is_input(path: Path, inputs: Iterable[Path]) -> bool:
    return any(_same_file(path, p) or path.resolve() == Path(p).resolve() for p in inputs)


def lock_path(dst: Path) -> Path:
    return dst.with_name(f".{dst.name}.lock")


class OutputLock:
    """Exclusive, non-blocking lock on OUT for the length of a run (flock on ``.OUT.lock``).

    A second run writing the same OUT is refused at once instead of overwriting the first one's
    file. The lock file is removed on release; a run that was killed leaves it unlocked, and the
    next run simply takes it.
    """

    def __init__(self, dst: Path) -> None:
        self.dst, self.path = dst, lock_path(dst)
        self._fd: int | None = None

    def acquire(self) -> OutputLock:
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise OutputError(f"{self.dst}: cannot be written ({exc.strerror})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise OutputError(
                    f"{self.dst} is being written by another vidcolor run; wait for it or choose another OUT"
                ) from None
            # The holder before us may have removed the file between our open and our lock:
            # then we hold a lock on a deleted inode; start again on the current file.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return self
            os.close(fd)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            self.path.unlink(missing_ok=True)  # while still locked: no one can be mid-acquire on it
        finally:
            os.close(fd)

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def partial_pattern(dst: Path) -> str:
    return f".{glob.escape(dst.stem)}.*partial{glob.escape(dst.suffix)}"


def remove_stale_partials(dst: Path, inputs: Iterable[Path]) -> list[Path]:
    """Delete the temporaries of OUT that dead runs left (call only while holding OUT's lock)."""
    inputs = list(inputs)
    removed = []
    if not dst.parent.is_dir():
        return removed
    for path in dst.parent.glob(partial_pattern(dst)):
        if path.is_file() and not path.is_symlink() and not is_input(path, inputs):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def create_partial(dst: Path, inputs: Iterable[Path]) -> Path:
    """A new, empty, uniquely named temporary beside OUT, created exclusively; never an input."""
    inputs = list(inputs)
    for _ in range(100):
        tmp = dst.with_name(f".{dst.stem}.{secrets.token_hex(4)}.partial{dst.suffix}")
        if is_input(tmp, inputs):
            continue
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(f"{dst}: cannot be written ({exc.strerror})") from None
        return tmp
    raise OutputError(f"{dst}: no free temporary name beside it")


def check_output_file(dst: Path, overwrite: bool, inputs: Iterable[Path] = ()) -> None:
    """Before any work: OUT must be a file name (not a folder), none of the ``inputs`` (whatever
    the spelling), new unless ``overwrite``, in a folder that exists; else a one-line OutputError."""
    if dst.is_dir():
        raise OutputError(f"{dst}: is a directory; give an output file name")
    if is_input(dst, inputs):
        raise OutputError(f"{dst}: is the input file; choose another output name")
    if dst.exists() and not overwrite:
        raise OutputError(f"{dst}: already exists (use --overwrite to replace it)")
    if not dst.parent.is_dir():
        what = "is a file, not a folder" if dst.parent.exists() else "does not exist"
        raise OutputError(f"{dst.parent}: output folder {what}")


def check_side_output(path: Path, option: str, protected: Iterable[Path]) -> None:
    """Before any work: a second file a run writes (e.g. ``--report``) must not be one of the
    ``protected`` paths (the input, OUT) and its folder must exist; else a one-line error."""
    if is_input(path, protected):
        raise OutputError(f"{option} {path}: that is the run's input or output; choose another file")
    if not path.parent.is_dir():
        raise OutputError(f"{option} {path}: folder {path.parent} does not exist")
    if path.is_dir():
        raise OutputError(f"{option} {path}: is a folder")
    if not os.access(path.parent, os.W_OK):
        raise OutputError(f"{option} {path}: folder {path.parent} is not writable")


def temp_beside(path: Path) -> Path:
    """A unique hidden temporary name beside ``path`` (``.NAME.TOKEN.partial``): same folder, so
    the final rename is atomic; the one spelling every writer but the video writer uses."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")


def atomic_write(path: Path, write: Callable[[BinaryIO], object], overwrite: bool = False) -> None:
    """Write through ``write`` to a temp file beside ``path``, then move it into place.

    An interrupted or failed write leaves no file behind. Without ``overwrite`` the temp file is
    hard-linked to ``path`` (fails if ``path`` exists, so nothing is ever clobbered); where the
    file system has no hard links, an existence check and a rename do.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path.parent}: cannot create folder ({exc.strerror or exc})") from None
    tmp = temp_beside(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise OutputError(f"{path}: already exists (use --overwrite to replace it)") from None
            except OSError:
                if path.exists():
                    raise OutputError(f"{path}: already exists (use --overwrite to replace it)") from None
                os.replace(tmp, path)
    except (OSError, ValueError) as exc:  # Pillow raises ValueError for metadata it cannot store
        raise OutputError(f"{path}: cannot write ({getattr(exc, 'strerror', None) or exc})") from None
    finally:
        tmp.unlink(missing_ok=True)
