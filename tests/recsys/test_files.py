"""recsys.files: atomic writes (complete or absent), a full disk, killed writers, the file lock."""

from __future__ import annotations

import errno
import multiprocessing
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from recsys.errors import DiskFullError, LockTimeoutError
from recsys.files import (
    atomic_write_bytes,
    atomic_write_many,
    atomic_write_text,
    atomic_writer,
    file_lock,
    fsync_tree,
    is_temp,
    remove_stale_temps,
)


def test_write_replaces_whole_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.bin"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second version")
    assert target.read_bytes() == b"second version"
    atomic_write_text(tmp_path / "t.txt", "文字")
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "文字"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.bin", "t.txt"]


def test_streaming_writer_is_invisible_until_it_ends(tmp_path: Path) -> None:
    target = tmp_path / "stream.csv"
    with atomic_writer(target, "w", newline="") as handle:
        handle.write("a,b\n")
        assert not target.exists()  # nothing at the final name while writing
        (temp,) = list(tmp_path.iterdir())
        assert is_temp(temp)
    assert target.read_text() == "a,b\n"


def test_an_exception_keeps_the_old_file_and_removes_the_temp(tmp_path: Path) -> None:
    target = tmp_path / "keep.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_writer(target, "w") as handle:
        handle.write("half of the new")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


class _FullDisk:
    """A file object whose disk fills after ``room`` bytes: the first write past it raises."""

    def __init__(self, handle: Any, room: int) -> None:
        self._handle, self._room = handle, room

    def write(self, data: bytes) -> int:
        if len(data) > self._room:
            self._handle.write(data[: self._room])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return int(self._handle.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


def test_full_disk_mid_write_leaves_nothing_and_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import recsys.files as files

    real_open = open

    def filling_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_open(file, mode, *args, **kwargs)
        return _FullDisk(handle, 10) if "x" in mode or "w" in mode else handle

    monkeypatch.setattr(files, "open", filling_open, raising=False)
    target = tmp_path / "big.pdf"
    with pytest.raises(DiskFullError) as failure:
        atomic_write_bytes(target, b"%PDF" + b"x" * 1000)
    assert "big.pdf" in str(failure.value) and "no space left" in str(failure.value)
    assert str(tmp_path) not in failure.value.public_message
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DiskFullError):
        atomic_write_many([(tmp_path / "a.pdf", b"y" * 5), (tmp_path / "b.pdf", b"z" * 100)])
    assert list(tmp_path.iterdir()) == []


def test_many_files_are_renamed_in_order(tmp_path: Path) -> None:
    def files() -> Any:
        for n in range(3):
            yield tmp_path / f"{n}.pdf", b"%PDF-" + bytes([48 + n])
            yield tmp_path / f"{n}.json", b"{}"

    atomic_write_many(files())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.json", "0.pdf", "1.json", "1.pdf", "2.json", "2.pdf"]
    fsync_tree(tmp_path)


def _write_then_hang(target: str, ready: Any) -> None:
    import recsys.files as files

    def hang(_fd: int) -> None:  # the data is written; the writer dies before the rename
        ready.set()
        threading.Event().wait()

    files.os.fsync = hang  # type: ignore[assignment]
    atomic_write_bytes(Path(target), b"%PDF-1.7 a complete file")


def test_a_killed_writer_leaves_no_file_and_its_temp_is_cleared(tmp_path: Path) -> None:
    target = tmp_path / "segment-0.pdf"
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    child = context.Process(target=_write_then_hang, args=(str(target), ready))
    child.start()
    try:
        assert ready.wait(60)
        child.kill()  # SIGKILL
        child.join(30)
    finally:
        if child.is_alive():
            child.kill()
    assert not target.exists()
    assert remove_stale_temps(tmp_path, target.name) == 1
    assert list(tmp_path.iterdir()) == []
    atomic_write_bytes(target, b"ok")
    assert target.read_bytes() == b"ok"


def test_remove_stale_temps_spares_a_live_writer(tmp_path: Path) -> None:
    with atomic_writer(tmp_path / "x.pdf") as handle:
        handle.write(b"in progress")
        assert remove_stale_temps(tmp_path) == 0
    assert (tmp_path / "x.pdf").read_bytes() == b"in progress"


def test_file_lock_excludes_threads_and_times_out(tmp_path: Path) -> None:
    lock = tmp_path / ".locks" / "M01.lock"
    inside = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with file_lock(lock):
            inside.set()
            release.wait(30)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert inside.wait(10)
        with pytest.raises(LockTimeoutError, match="M01"), file_lock(lock, timeout=0.2):
            pass
    finally:
        release.set()
        thread.join()
    with file_lock(lock, timeout=5):
        pass
