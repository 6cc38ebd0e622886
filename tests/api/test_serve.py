"""Through real uvicorn: ``bookclub serve --workers 2`` in a subprocess, called over HTTP."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from recsys.storage.apikeys import create_key
from recsys.storage.db import make_engine, upgrade
from tests.api import club
from training.registry import ModelRegistry

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(base: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not become ready")


@pytest.mark.slow
def test_serve_two_workers_with_live_swap(tmp_path: Path, trained_models: tuple[Path, list[str]]) -> None:
    data_dir = tmp_path / "var"
    engine = make_engine(f"sqlite:///{data_dir / 'bookclub.db'}")
    upgrade(engine)
    with engine.begin() as connection:
        club.insert_club(connection)
        key, _ = create_key(connection, "read", "serve test")
    engine.dispose()
    models_dir, versions = trained_models
    shutil.copytree(models_dir, data_dir / "models")
    registry = ModelRegistry(data_dir / "models")
    registry.activate(versions[0])

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOOKCLUB_", "PROMETHEUS_"))}
    env.update(BOOKCLUB_DATA_DIR=str(data_dir), BOOKCLUB_API__MODEL_POLL_SECONDS="0.2")
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "bookclub_cli.main", "serve", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, time.monotonic() + 120)  # two workers start slowly on a busy machine
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as http:
            r = http.get("/v1/members/M01/recommendations", params={"limit": 3})
            assert r.status_code == 200 and r.headers["x-model-version"] == versions[0]
            assert (
                http.get("/v1/members/M01/recommendations", headers={"Authorization": ""}).status_code == 401
            )
            registry.activate(versions[1])  # as `bookclub models activate` does
            deadline = time.monotonic() + 10
            seen: list[str] = []
            while time.monotonic() < deadline:
                r = http.get("/v1/members/M02/recommendations")
                assert r.status_code == 200
                seen.append(r.headers["x-model-version"])
                if seen[-20:] == [versions[1]] * 20:
                    break
                time.sleep(0.02)
            assert seen[-20:] == [versions[1]] * 20  # both workers swapped, no restart
            metrics = http.get("/metrics").text
            # summed over both workers (prometheus multiprocess mode)
            assert 'route="/v1/members/{member_id}/recommendations"' in metrics
            assert f'bookclub_model_active{{version="{versions[1]}"}} 1.0' in metrics
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
    output = (tmp_path / "serve.log").read_text()
    assert "GET /v1/members/{member_id}/recommendations 200" in output
    assert key not in output and "M01" not in output and "limit=" not in output
