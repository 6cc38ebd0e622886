"""A full disk for tests: files opened for writing under a folder run out of space mid-write.

Patches ``open`` itself (``builtins.open`` and ``io.open``, which pathlib uses), so it catches
any way of writing a file, in place or under a temporary name.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
from pathlib import Path
from typing import Any

import pytest


class _FillingFile:
    """A file on a disk that fills after ``room`` bytes: the write past it raises ENOSPC."""

    def __init__(self, handle: Any, room: int) -> None:
        self._handle, self._room = handle, room

    def write(self, data: Any) -> int:
        if len(data) > self._room:
            self._handle.write(data[: self._room])
            self._room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return int(self._handle.write(data))

    def __enter__(self) -> _FillingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


def fill_disk_under(folder: Path, monkeypatch: pytest.MonkeyPatch, room: int = 4096) -> None:
    """Every file opened for writing under ``folder`` (in place or not) runs out of space."""
    real_open = builtins.open

    def full_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_open(file, mode, *args, **kwargs)
        writing = any(c in mode for c in "wxa") and str(file).startswith(str(folder))
        return _FillingFile(handle, room) if writing and not str(file).endswith(".lock") else handle

    monkeypatch.setattr(builtins, "open", full_open)
    monkeypatch.setattr(io, "open", full_open)
