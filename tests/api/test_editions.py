"""api.editions: the render queue per worker and the per-key rate shared by workers."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fastapi import HTTPException

from api.editions import RenderGate
from recsys.settings import ApiSettings


def _gate(tmp_path: Path, **limits: float) -> RenderGate:
    return RenderGate(ApiSettings(**limits), tmp_path / "render-rate")  # type: ignore[arg-type]


def test_the_bucket_is_shared_by_workers_and_refills(tmp_path: Path) -> None:
    # two gates on one folder: two uvicorn workers of one machine
    one = _gate(tmp_path, render_burst=2, render_rate_per_minute=6)
    two = _gate(tmp_path, render_burst=2, render_rate_per_minute=6)
    one.take("abc12345", now=1000.0)
    two.take("abc12345", now=1000.0)
    with pytest.raises(HTTPException) as limited:
        one.take("abc12345", now=1001.0)
    assert limited.value.status_code == 429
    assert limited.value.headers == {"Retry-After": "9"}  # 0.1 token/s: 9 s to the next one
    two.take("other", now=1001.0)  # another key, its own bucket
    one.take("abc12345", now=1010.0)  # refilled
    with pytest.raises(HTTPException):
        two.take("abc12345", now=1010.0)


def test_the_queue_is_bounded(tmp_path: Path) -> None:
    gate = _gate(tmp_path, render_concurrency=1, render_queue=1)
    with gate.admitted(), gate.admitted():
        with pytest.raises(HTTPException) as busy, gate.admitted():
            pass
        assert busy.value.status_code == 503 and "Retry-After" in (busy.value.headers or {})
    with gate.admitted():  # places are given back
        pass


def test_renders_beyond_the_concurrency_wait_then_give_up(tmp_path: Path) -> None:
    gate = _gate(tmp_path, render_concurrency=1, render_wait_seconds=0.2, render_burst=10)
    inside, release = threading.Event(), threading.Event()

    def render() -> None:
        with gate.rendering("k1"):
            inside.set()
            release.wait(30)

    worker = threading.Thread(target=render)
    worker.start()
    try:
        assert inside.wait(10)
        with pytest.raises(HTTPException) as busy, gate.rendering("k2"):
            pass
        assert busy.value.status_code == 503
    finally:
        release.set()
        worker.join()
    with gate.rendering("k2"):
        pass
