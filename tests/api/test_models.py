"""/v1/models and the live model swap: every request answered, by the old or the new model."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi.testclient import TestClient

from api.model_holder import ModelHolder
from tests.api.conftest import bearer
from tests.api.doubles import FakeModel, FakeRegistry
from training.registry import ModelRegistry


def test_list_models(client: TestClient, versions: list[str]) -> None:
    body = client.get("/v1/models").json()
    assert body["count"] == 2
    assert [m["version"] for m in body["data"]] == versions
    assert body["active_version"] == body["serving_version"] == versions[0]
    assert [m["active"] for m in body["data"]] == [True, False]
    assert body["data"][0]["trained_until"].startswith("2026-02-01")


def test_activate_through_the_api(client: TestClient, keys: dict[str, str], versions: list[str]) -> None:
    r = client.post(f"/v1/models/{versions[1]}/activate", headers=bearer(keys["admin"]))
    assert r.status_code == 200, r.text
    assert r.json() == {"active_version": versions[1], "serving_version": versions[1]}
    rec = client.get("/v1/members/M01/recommendations")
    assert rec.headers["X-Model-Version"] == rec.json()["model_version"] == versions[1]


def test_activate_unknown_version_is_404(client: TestClient, keys: dict[str, str]) -> None:
    r = client.post("/v1/models/nope/activate", headers=bearer(keys["admin"]))
    assert r.status_code == 404 and "nope" in r.json()["message"]


def _answer(client: TestClient, member: str) -> tuple[str, str, list[str]]:
    r = client.get(f"/v1/members/{member}/recommendations", params={"limit": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    return r.headers["X-Model-Version"], body["model_version"], [t["title_id"] for t in body["data"]]


def test_swap_under_concurrent_requests(
    client: TestClient, registry: ModelRegistry, versions: list[str]
) -> None:
    """Activation through the registry (as the CLI does) reaches the worker by polling; while it
    flips back and forth, each answer is exactly the old or the new model's answer."""
    members = ["M01", "M02", "M03", "M04", "M05", "M06"]
    expected: dict[str, dict[str, list[str]]] = {}
    holder: ModelHolder = client.app.state.holder  # type: ignore[attr-defined]
    for version in versions:
        registry.activate(version)
        holder.refresh()
        expected[version] = {m: _answer(client, m)[2] for m in members}
    assert expected[versions[0]] != expected[versions[1]]  # the swap is visible

    stop = threading.Event()
    flips = 0

    def flipper() -> None:
        nonlocal flips
        while not stop.is_set():
            registry.activate(versions[flips % 2])
            flips += 1
            time.sleep(0.03)

    seen: set[str] = set()
    thread = threading.Thread(target=flipper)
    thread.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: (members[i % 6], _answer(client, members[i % 6])), range(400)))
    finally:
        stop.set()
        thread.join()
    for member, (header, body_version, ids) in answers:
        assert header == body_version
        assert ids == expected[body_version][member], (member, body_version)
        seen.add(body_version)
    assert flips > 3
    assert seen == set(versions)  # both models answered during the run


def test_holder_keeps_old_model_when_new_one_fails_to_load(tmp_path: Path) -> None:
    registry = FakeRegistry(tmp_path, [FakeModel("v1"), FakeModel("v2")], active="v1")
    holder = ModelHolder(registry, poll_seconds=60)
    holder.start()
    try:
        assert holder.current().version == "v1"

        def broken(version: str | None = None) -> FakeModel:
            raise OSError("disk gone")

        registry.load = broken  # type: ignore[method-assign]
        registry.activate("v2")
        assert holder.refresh() is False
        assert holder.current().version == "v1" and "disk gone" in (holder.last_error or "")
    finally:
        holder.stop()


def test_holder_loads_only_when_pointer_changes(tmp_path: Path) -> None:
    registry = FakeRegistry(tmp_path, [FakeModel("v1"), FakeModel("v2")], active="v1")
    swaps: list[tuple[str | None, str]] = []
    holder = ModelHolder(registry, on_swap=lambda old, new: swaps.append((old, new)), poll_seconds=0.01)
    holder.start()
    try:
        time.sleep(0.1)
        assert registry.loads == 1
        registry.activate("v2")
        deadline = time.monotonic() + 5
        while holder.current().version != "v2" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert holder.current().version == "v2"
        assert swaps == [(None, "v1"), ("v1", "v2")] and registry.loads == 2
    finally:
        holder.stop()


def test_no_model_means_503_and_not_ready(tmp_path: Path) -> None:
    registry = FakeRegistry(tmp_path, [FakeModel("v1")], active=None)
    holder = ModelHolder(registry, poll_seconds=60)
    holder.refresh()
    try:
        holder.current()
    except Exception as exc:
        assert "no model is loaded" in str(exc)
    else:
        raise AssertionError("expected ModelUnavailableError")


def test_holder_serves_unprepared_model_and_prepares_it_later(tmp_path: Path) -> None:
    """A database outage while new titles are fed: serve the model anyway, redo it later."""
    import api.model_holder as holder_module

    registry = FakeRegistry(tmp_path, [FakeModel("v1")], active="v1")
    attempts: list[str] = []

    def prepare(model: object) -> None:
        attempts.append("try")
        if len(attempts) == 1:
            raise OSError("database down")

    holder = ModelHolder(registry, prepare=prepare, poll_seconds=60)
    original = holder_module.PREPARE_RETRY_SECONDS
    holder_module.PREPARE_RETRY_SECONDS = 0.0
    try:
        holder.refresh()
        assert holder.current().version == "v1" and attempts == ["try"]
        assert holder.refresh() is True  # reloaded beside and prepared this time
        assert attempts == ["try", "try"] and registry.loads == 2
        assert holder.refresh() is False  # complete: nothing more to do
    finally:
        holder_module.PREPARE_RETRY_SECONDS = original


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # inside the array data: the file still loads, only its checksum differs
    path.write_bytes(bytes(data))


def test_activating_a_damaged_model_is_409_naming_the_file(
    client: TestClient, keys: dict[str, str], registry: ModelRegistry, versions: list[str]
) -> None:
    _flip_a_byte(registry.versions_dir / versions[1] / "title_factors.npy")
    r = client.post(f"/v1/models/{versions[1]}/activate", headers=bearer(keys["admin"]))
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["error"] == "model_damaged" and "title_factors.npy" in body["message"]
    assert body["errors"] == [
        {
            "location": "path",
            "field": "version",
            "index": None,
            "reason": "title_factors.npy: its content differs from the sha256 written when it was saved",
        }
    ]
    assert str(registry.models_dir) not in r.text  # a file's name, never a server path
    listing = client.get("/v1/models").json()
    assert listing["active_version"] == listing["serving_version"] == versions[0]
    rec = client.get("/v1/members/M01/recommendations")
    assert rec.status_code == 200 and rec.headers["X-Model-Version"] == versions[0]
