"""Atomic files: every file the product writes goes through here.

A file is written under a temporary name in the same folder
(``.<name>.<pid>.<random>.tmp``), flushed and fsynced, renamed over the final
name with :func:`os.replace` and the folder fsynced, so a reader sees the old
file or the complete new one, never a half-written one. A write that fails
removes its temporary file; a writer killed mid-way leaves only a temporary
file, which :func:`remove_stale_temps` clears once its process is gone.

A disk that is full (``ENOSPC``, ``EDQUOT``, ``EFBIG``) is reported as
:class:`recsys.errors.DiskFullError`, naming the file, after the clean-up.

:func:`file_lock` is the lock between threads and processes of one machine
(``fcntl.flock`` on a lock file: each ``open`` is its own lock, so two threads
of one process exclude each other as two processes do).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import secrets
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from recsys.errors import DiskFullError, LockTimeoutError

_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")


def temp_path(path: Path) -> Path:
    """A temporary name beside ``path``, unique to this process and call."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def is_temp(path: Path) -> bool:
    return _TEMP.match(path.name) is not None


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a no-op where the filesystem cannot)."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _reraise_full(exc: BaseException, path: Path) -> None:
    """Raise DiskFullError for a full disk, naming the file; other errors go on as they are."""
    if isinstance(exc, OSError) and exc.errno in _FULL:
        raise DiskFullError(path, os.strerror(exc.errno)) from exc


class AtomicFile:
    """A file written under a temporary name: :meth:`commit` renames it into place,
    :meth:`discard` (or any exception inside ``with``) removes it."""

    def __init__(
        self, path: Path, mode: str = "wb", *, encoding: str | None = None, newline: str | None = None
    ) -> None:
        if "b" not in mode and encoding is None:
            encoding = "utf-8"
        self.path = path
        self.temp = temp_path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # "x": a temporary name that exists already is someone else's, never truncated
            self.handle: IO[Any] = open(  # noqa: SIM115 - closed by commit/discard
                self.temp, mode.replace("w", "x"), encoding=encoding, newline=newline
            )
        except BaseException as exc:
            self.temp.unlink(missing_ok=True)
            _reraise_full(exc, path)
            raise
        self.done = False

    def commit(self) -> Path:
        """Flush, fsync, rename over the final name, fsync the folder."""
        if self.done:
            return self.path
        try:
            self.handle.flush()
            os.fsync(self.handle.fileno())
            self.handle.close()
            os.replace(self.temp, self.path)
        except BaseException as exc:
            self.discard()
            _reraise_full(exc, self.path)
            raise
        self.done = True
        fsync_dir(self.path.parent)
        return self.path

    def discard(self) -> None:
        if self.done:
            return
        self.done = True
        with contextlib.suppress(OSError):
            self.handle.close()
        self.temp.unlink(missing_ok=True)

    def __enter__(self) -> IO[Any]:
        return self.handle

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            self.commit()
        else:
            self.discard()
            _reraise_full(exc, self.path)


def atomic_writer(
    path: Path, mode: str = "wb", *, encoding: str | None = None, newline: str | None = None
) -> AtomicFile:
    """``with atomic_writer(path) as handle: …`` for writers that stream (``write_pdf(target=…)``,
    ``np.savez(handle, …)``, ``csv.writer(handle)``): the file appears at ``path`` complete
    when the block ends, or not at all if it raises."""
    return AtomicFile(path, mode, encoding=encoding, newline=newline)


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    with atomic_writer(path, "wb") as handle:
        handle.write(data)
    return path


def atomic_write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    with atomic_writer(path, "w", encoding=encoding) as handle:
        handle.write(text)
    return path


def atomic_write_many(files: Iterable[tuple[Path, bytes | tuple[bytes, ...]]]) -> None:
    """Several files, each atomically: every one written and fsynced under its temporary
    name first (``files`` may be a generator: one file's bytes in memory at a time; a file's
    bytes may come as a tuple of parts, written one after the other), then
    renamed in the order given (a file's sidecar after the file), then each folder fsynced
    once. On failure no temporary file is left; files renamed already stay."""
    pending: list[AtomicFile] = []
    current: Path | None = None
    try:
        for path, data in files:
            current = path
            item = AtomicFile(path, "wb")
            pending.append(item)
            for part in data if isinstance(data, tuple) else (data,):
                item.handle.write(part)
            item.handle.flush()
            os.fsync(item.handle.fileno())
            item.handle.close()
        for item in pending:
            current = item.path
            os.replace(item.temp, item.path)
            item.done = True
    except BaseException as exc:
        for item in pending:
            item.discard()
        _reraise_full(exc, current or Path("."))
        raise
    for directory in dict.fromkeys(item.path.parent for item in pending):
        fsync_dir(directory)


def fsync_tree(directory: Path) -> None:
    """fsync every file under ``directory`` and every folder, deepest first: before a
    directory written in one go is renamed into place (a model version)."""
    for root, _dirs, names in os.walk(directory, topdown=False):
        for name in names:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(root))


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(directory: Path, name: str | None = None) -> int:
    """Remove temporary files (of ``name``, or of any file) left in ``directory`` by writers
    that were killed (their process is gone); the number removed."""
    removed = 0
    try:
        entries = list(directory.iterdir())
    except FileNotFoundError:
        return 0
    for entry in entries:
        match = _TEMP.match(entry.name)
        if match is None or (name is not None and match["name"] != name):
            continue
        if not pid_alive(int(match["pid"])):
            entry.unlink(missing_ok=True)
            removed += 1
    return removed


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def file_lock(path: Path, *, timeout: float | None = None, poll: float = 0.05) -> Iterator[None]:
    """An exclusive lock on ``path`` (created if missing) between threads and processes.

    ``timeout`` None waits as long as it takes; otherwise LockTimeoutError after ``timeout``
    seconds. The lock is released when the block ends or the process dies.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        if timeout is None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        else:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockTimeoutError(
                            f"{path.stem} is still being written by another process after {timeout:.0f} s"
                        ) from None
                    time.sleep(poll)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
