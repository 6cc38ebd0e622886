"""The recommendation route under load vs a bare numpy top-k endpoint (the floor), in one run.

    .venv/bin/python -m benchmarks.bench_api [--titles 50000 --members 100000] [--full]
        [--workers 1,2] [--connections 16] [--duration 10] [--repeats 3]
        [--open-loop-share 0.5] [--data-dir /tmp/bookclub-bench-api]

Setup (reused on later runs of the same size): the demo club (``demo.generate``) in
SQLite, one model trained with ``training.pipeline.run_training`` (ALS, settings'
defaults), a read API key. ``--full``: 1.5M members with 3 order lines each (4.5M
lines, not the 36M of three real years) and a 5-iteration ALS fit, to keep the setup
short — serving cost depends on the factor matrices' sizes, which are the real ones.

Measured against real uvicorn on loopback (``bookclub serve --workers N``), random members:

- ``/v1/members/{id}/recommendations?limit=20`` — key check, member + purchases +
  declared categories from the DB, ``TrainedModel.recommend``, the body;
- the floor: a bare FastAPI endpoint doing only ``title_factors @ member_vector`` and
  an argpartition top-20 over the same memory-mapped factors, on stock uvicorn
  (``--floor-http api.http_protocol:HttpToolsProtocol``: on the API's own protocol, which
  writes each answer in one system call where stock uvicorn makes two).

Both servers run at once. Closed loop: 16 concurrent clients from ``wrk`` (else an async
httpx client), floor and route in turns ``--repeats`` times, medians reported with each
run's ratios: requests/s, p50/p99 and the server's CPU ms per request (from
``/proc/PID/stat``; unlike req/s it holds up when other work shares the machine). Targets
(issue 13): route req/s ≥ 0.5 × the floor's with one worker, ≥ 0.7 × with two. Open loop
(:class:`OpenLoop`): requests paced at ``--open-loop-share`` × the floor's closed-loop req/s
of the same run, to each server in turn, latency counted from each request's due time;
target: the route's p99 ≤ 15 ms at half the floor's capacity.

Then per worker RSS, PSS and private memory from ``/proc/PID/smaps_rollup`` plus the
RSS/PSS of the model-file mappings from ``/proc/PID/smaps`` (PSS ≈ RSS / workers when the
pages are shared), and the serial in-process cost of the route's work, the model alone and
the floor's work. A model saved in an older artifact format is rewritten in the current one
first. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FLOOR_ENV = "BENCH_FLOOR_MODEL_DIR"


# ---- the floor: a bare endpoint over the same factors -------------------------------------


def floor_app() -> Any:
    """uvicorn factory: GET /floor/{member_id} → top-20 titles by a dot product, nothing else."""
    from fastapi import FastAPI
    from threadpoolctl import threadpool_limits

    from recsys.idmap import IdMap

    threadpool_limits(1, "blas")  # as the API does: no BLAS threads fighting the threadpool
    directory = Path(os.environ[FLOOR_ENV])
    members = IdMap.load(directory / "member_ids.npy")
    titles = IdMap.load(directory / "title_ids.npy")
    member_factors = np.load(directory / "member_factors.npy", mmap_mode="r")
    title_factors = np.load(directory / "title_factors.npy")
    app = FastAPI()

    @app.get("/floor/{member_id}")
    def floor(member_id: str, limit: int = 20) -> dict[str, Any]:
        idx = members.find(member_id)
        scores = title_factors @ np.asarray(member_factors[max(idx, 0)], dtype=np.float32)
        best = np.argpartition(-scores, limit)[:limit]
        best = best[np.argsort(-scores[best])]
        return {"data": [{"title_id": titles.to_id(int(t)), "score": float(scores[t])} for t in best]}

    return app


# ---- setup -----------------------------------------------------------------------------------


def prepare(
    data_dir: Path, titles: int, members: int, full: bool, database_url: str | None = None
) -> tuple[str, list[str], Path]:
    """Database, model and key for this size; returns (key, member ids to ask for, model dir).
    ``database_url``: that database (e.g. the full-size quarter's PostgreSQL, with ``data_dir``
    its data folder: ``/tmp/full-quarter-ready.txt``) instead of SQLite in ``data_dir``."""
    from sqlalchemy import select

    from demo.generate import DemoSpec
    from demo.load import load_demo
    from recsys.settings import Settings
    from recsys.storage.apikeys import create_key
    from recsys.storage.categories import clc_file
    from recsys.storage.club import has_club_data
    from recsys.storage.db import make_engine, upgrade
    from recsys.storage.schema import Member
    from training.pipeline import run_training
    from training.registry import ModelRegistry

    settings = Settings(data_dir=data_dir, database_url=database_url)
    engine = make_engine(settings.db_url)
    upgrade(engine)
    with engine.connect() as connection:
        loaded = has_club_data(connection)
    if not loaded:
        started = time.perf_counter()
        spec = DemoSpec(
            members=members,
            titles=titles,
            years=3,
            end_date=dt.date(2026, 6, 30),
            purchases=members * 3 if full else None,  # --full: 4.5M lines, not 36M
        )
        summary = load_demo(engine, spec, clc_file(settings.shared_data_dir / "clc", False))
        print(f"demo club written in {time.perf_counter() - started:.0f}s: {summary.counts}")
    registry = ModelRegistry(settings.models_dir)
    if registry.active_version() is None:
        started = time.perf_counter()
        if full:  # a shorter fit: the training benchmark measures full fits
            training = settings.training.model_copy(update={"iterations": 5})
            settings = settings.model_copy(update={"training": training})
        result = run_training(engine, settings, promote="force")
        print(f"model {result.info.version} trained in {time.perf_counter() - started:.0f}s")
    with engine.begin() as connection:
        key, _ = create_key(connection, "read", "bench_api")
        rows = connection.scalars(select(Member.member_id).order_by(Member.id)).all()
    engine.dispose()
    rng = np.random.default_rng(7)
    asked = [str(m) for m in rng.choice(np.array(rows, dtype=object), size=5000)]
    version = registry.active_version()
    assert version is not None
    upgrade_model(registry.versions_dir / version)
    return key, asked, registry.versions_dir / version


def upgrade_model(model_dir: Path) -> None:
    """Rewrite a model saved in an older artifact format in the current one (same version)."""
    from training.artifact import FORMAT, read_meta, read_model, write_parts

    meta = read_meta(model_dir)
    if int(meta.get("format", 1)) >= FORMAT:
        return
    staging = model_dir.with_name(model_dir.name + ".upgrading")
    shutil.rmtree(staging, ignore_errors=True)
    write_parts(read_model(model_dir).parts, staging, meta)
    old = model_dir.with_name(model_dir.name + ".format1")
    model_dir.rename(old)
    staging.rename(model_dir)
    shutil.rmtree(old)
    print(f"model {model_dir.name} rewritten in artifact format {FORMAT}")


# ---- servers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(argv: list[str], env: dict[str, str], port: int, probe: str) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if server.poll() is not None:
            raise SystemExit(f"server exited with {server.returncode}: {' '.join(argv)}")
        time.sleep(0.2)
    stop_server(server)
    raise SystemExit("server did not become ready")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    os.killpg(server.pid, signal.SIGINT)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def worker_pids(server: subprocess.Popen[bytes]) -> list[int]:
    """The processes serving requests: the uvicorn children, or the server itself alone."""
    children: list[int] = []
    for task in Path(f"/proc/{server.pid}/task").iterdir():
        text = (task / "children").read_text().split()
        children.extend(int(p) for p in text)
    workers = [
        p
        for p in children
        if "resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")
    ]
    return workers or [server.pid]


# ---- load ----------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip()).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


def wrk_run(
    url_base: str, paths: list[str], key: str | None, connections: int, duration: int
) -> dict[str, float]:
    """wrk with a Lua script cycling through ``paths``; requests/s, p50, p99 (ms), errors."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "paths.lua"
        quoted = ",".join(f'"{p}"' for p in paths)
        header = f'wrk.headers["Authorization"] = "Bearer {key}"\n' if key else ""
        script.write_text(
            f"{header}local paths = {{{quoted}}}\nlocal i = 0\n"
            "request = function()\n  i = i % #paths + 1\n"
            '  return wrk.format("GET", paths[i])\nend\n'
        )
        out = subprocess.run(
            [
                "wrk",
                "-t",
                "2",
                "-c",
                str(connections),
                "-d",
                f"{duration}s",
                "--latency",
                "-s",
                str(script),
                url_base,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    bad = float(non2xx.group(1)) if non2xx else 0.0
    if errors:
        print(f"    wrk: {errors.group(0)}")
    return {"rps": rps, "p50": p50, "p99": p99, "non2xx": bad}


def httpx_run(
    url_base: str, paths: list[str], key: str | None, connections: int, duration: int
) -> dict[str, float]:
    """The fallback load generator: ``connections`` async httpx clients in a closed loop."""
    import httpx

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    latencies: list[float] = []
    bad = 0

    async def client(offset: int, deadline: float) -> None:
        nonlocal bad
        async with httpx.AsyncClient(base_url=url_base, headers=headers) as http:
            i = offset
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                r = await http.get(paths[i % len(paths)])
                latencies.append((time.perf_counter() - start) * 1000)
                bad += r.status_code >= 300
                i += connections

    async def main() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(client(c, start + duration) for c in range(connections)))
        return time.perf_counter() - start

    elapsed = asyncio.run(main())
    arr = np.array(latencies)
    return {
        "rps": len(arr) / elapsed,
        "p50": float(np.percentile(arr, 50)),
        "p99": float(np.percentile(arr, 99)),
        "non2xx": float(bad),
    }


class OpenLoop:
    """A paced client: request i is due at ``start + i / rate`` whatever the answers before it
    did, and its latency is counted from that due time, not from when it could be sent (no
    coordinated omission: a stalled server, or a late client, shows in the figures).

    Raw HTTP/1.1 over asyncio streams (uvloop when installed): ``connections`` keep-alive
    connections opened first, each a loop that takes the next request number, sleeps until it
    is due, sends it and reads the answer. A request due while every connection is busy waits
    for one, its latency still counted from its due time. The paced load of ``wrk2 -R``,
    which Debian does not package.
    """

    def __init__(
        self, host: str, port: int, paths: list[str], key: str | None, rate: float, connections: int = 64
    ) -> None:
        self.host, self.port, self.rate, self.connections = host, port, rate, connections
        auth = f"Authorization: Bearer {key}\r\n" if key else ""
        self.requests = [
            f"GET {p} HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}\r\n".encode() for p in paths
        ]
        self.next = 0
        self.total = 0
        self.start = 0.0
        self.latencies: list[float] = []
        self.bad = 0
        self.errors: list[str] = []
        self.lag = 0.0  # the latest a request was sent after its due time, by the client's fault

    async def _connection(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        await self.ready.wait()
        content_length = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")
        try:
            while (i := self.next) < self.total:
                self.next = i + 1
                due = self.start + i / self.rate
                wait = due - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(self.requests[i % len(self.requests)])
                head = await reader.readuntil(b"\r\n\r\n")
                length = content_length.search(head)
                if length is None:
                    raise RuntimeError("a response without Content-Length")
                await reader.readexactly(int(length.group(1)))
                self.latencies.append((time.perf_counter() - due) * 1000)
                if head[9:10] != b"2":
                    self.bad += 1
        except Exception as exc:  # counted; this connection stops
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            writer.close()

    async def _pace(self) -> None:
        """Watch how late the client itself wakes up (a loaded machine delays it too)."""
        while self.next < self.total:
            due = time.perf_counter() + 0.001
            await asyncio.sleep(0.001)
            self.lag = max(self.lag, time.perf_counter() - due)

    async def _run(self, duration: float) -> dict[str, float]:
        self.ready = asyncio.Event()
        self.total = int(self.rate * duration)
        tasks = [asyncio.ensure_future(self._connection()) for _ in range(self.connections)]
        await asyncio.sleep(0.2)  # the connections are open
        self.start = time.perf_counter() + 0.01
        self.ready.set()
        pace = asyncio.ensure_future(self._pace())
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - self.start
        await pace
        arr = np.array(self.latencies) if self.latencies else np.array([float("nan")])
        if self.errors:
            print(f"    open loop: {len(self.errors)} connection(s) failed, e.g. {self.errors[0]}")
        return {
            "offered": self.total / elapsed,
            "answered": float(len(self.latencies)),
            "p50": float(np.percentile(arr, 50)),
            "p99": float(np.percentile(arr, 99)),
            "p999": float(np.percentile(arr, 99.9)),
            "max": float(arr.max()),
            "non2xx": float(self.bad + self.total - len(self.latencies)),
            "client_lag": self.lag * 1000,
        }

    def run(self, duration: float) -> dict[str, float]:
        try:
            import uvloop
        except ImportError:
            return asyncio.run(self._run(duration))
        return uvloop.run(self._run(duration))


def open_loop_run(
    url_base: str, paths: list[str], key: str | None, rate: float, duration: int
) -> dict[str, float]:
    """``rate`` requests per second for ``duration`` s, paced (:class:`OpenLoop`)."""
    host, port = url_base.removeprefix("http://").rsplit(":", 1)
    return OpenLoop(host, int(port), paths, key, rate).run(duration)


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over the runs."""
    return {k: float(np.median([r[k] for r in runs])) for k in runs[0]}


def cpu_seconds(pids: list[int]) -> float:
    """user + system CPU time the processes have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def measured(
    server: subprocess.Popen[bytes],
    load: Any,
    base: str,
    paths: list[str],
    key: str | None,
    args: argparse.Namespace,
) -> dict[str, float]:
    """The load run, plus the server's CPU ms per answered request: unlike req/s, it holds
    up when other work shares the machine (wrk itself takes one of its CPUs)."""
    pids = worker_pids(server)
    before = cpu_seconds(pids)
    result: dict[str, float] = load(base, paths, key, args.connections, args.duration)
    used = cpu_seconds(pids) - before
    result["cpu_ms"] = used * 1000 / max(result["rps"] * args.duration, 1.0)
    return result


# ---- memory --------------------------------------------------------------------------------


def _kib(text: str, field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def memory(pid: int, model_dir: Path) -> dict[str, float]:
    """MiB: the process's RSS, PSS and private heap (anonymous), and the RSS and PSS of its
    mappings of the model's files (member/title factors, member_titles, affinity, ids)."""
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    smaps = Path(f"/proc/{pid}/smaps").read_text()
    mapped_rss = mapped_pss = 0
    for block in re.split(r"\n(?=[0-9a-f]+-[0-9a-f]+ )", smaps):
        if f" {model_dir}/" in block.splitlines()[0]:
            mapped_rss += _kib(block, "Rss")
            mapped_pss += _kib(block, "Pss")
    return {
        "rss": _kib(rollup, "Rss") / 1024,
        "pss": _kib(rollup, "Pss") / 1024,
        "anon": _kib(rollup, "Anonymous") / 1024,
        "model_rss": mapped_rss / 1024,
        "model_pss": mapped_pss / 1024,
    }


# ---- where the time goes (in process, serial) --------------------------------------------


def breakdown(
    data_dir: Path, model_dir: Path, asked: list[str], database_url: str | None = None
) -> dict[str, float]:
    """ms per call, one thread: the whole recommendation work, the member's snapshot query, the
    model alone, the floor. The thread keeps one autocommit connection, as a served request's
    compute thread does (``api.recommending.hold_connections``): no pool checkout, pre-ping or
    reset per call."""
    from threadpoolctl import threadpool_limits

    from api.recommending import feed_new_titles, hold_connections, recommendations_json, release_connections
    from recsys.idmap import IdMap
    from recsys.serving import RecommendationQuery
    from recsys.settings import Settings
    from recsys.storage.db import make_engine
    from recsys.storage.members import member_snapshot
    from training.artifact import read_model

    engine = make_engine(Settings(data_dir=data_dir, database_url=database_url).db_url)
    model = read_model(model_dir)
    shelf = feed_new_titles(engine, model)
    # after the model's imports: a BLAS library loaded later keeps its threads, and a
    # multi-threaded Cholesky solve on a busy machine costs 30 ms instead of 0.05
    threadpool_limits(1, "blas")
    members = IdMap.load(model_dir / "member_ids.npy")
    member_factors = np.load(model_dir / "member_factors.npy", mmap_mode="r")
    title_factors = np.load(model_dir / "title_factors.npy")
    sample = asked[:300]

    def whole(m: str) -> object:
        return recommendations_json(
            engine,
            model,
            m,
            RecommendationQuery(limit=20),
            shelf=shelf,
        )

    kept = engine.connect().execution_options(isolation_level="AUTOCOMMIT")  # as a compute thread's

    def snapshot(m: str) -> object:
        return member_snapshot(kept, m, model.trained_until)

    def model_only(m: str) -> object:
        return model.recommend(m, limit=20)

    def floor(m: str) -> object:
        scores = title_factors @ np.asarray(member_factors[max(members.find(m), 0)])
        return np.argpartition(-scores, 20)[:20]

    out = {}
    hold_connections()
    try:
        for name, fn in (
            ("request work", whole),
            ("member snapshot", snapshot),
            ("model.recommend", model_only),
            ("floor", floor),
        ):
            for m in sample[:20]:
                fn(m)
            start = time.perf_counter()
            for m in sample:
                fn(m)
            out[name] = (time.perf_counter() - start) / len(sample) * 1000
    finally:
        release_connections()
        kept.close()
    engine.dispose()
    return out


# ---- main ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--titles", type=int, default=50_000)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--full", action="store_true", help="1.5M members (see above)")
    parser.add_argument("--workers", default="1,2", help="worker counts to measure")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument(
        "--repeats", type=int, default=3, help="closed-loop runs per server, floor and route in turns"
    )
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument(
        "--database-url",
        default=None,
        help="serve from this database (e.g. PostgreSQL; its models in --data-dir) instead of SQLite",
    )
    parser.add_argument("--compute-threads", type=int, default=None, help="settings.api.compute_threads")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the in-process part")
    parser.add_argument(
        "--floor-http",
        default="httptools",
        help="the floor's uvicorn --http (the API's own: api.http_protocol:HttpToolsProtocol)",
    )
    parser.add_argument(
        "--open-loop-share",
        type=float,
        default=0.5,
        help="open-loop rate as a share of the floor's closed-loop req/s in the same run (0: none)",
    )
    args = parser.parse_args()
    members = 1_500_000 if args.full else args.members
    data_dir = args.data_dir or Path(tempfile.gettempdir()) / f"bookclub-bench-api-{args.titles}-{members}"
    key, asked, model_dir = prepare(data_dir, args.titles, members, args.full, args.database_url)
    factors = (model_dir / "member_factors.npy").resolve()
    model_mib = sum(f.stat().st_size for f in model_dir.iterdir()) / 2**20
    load = wrk_run if shutil.which("wrk") else httpx_run
    print(
        f"load generator: {'wrk' if load is wrk_run else 'httpx (wrk not installed)'}, "
        f"{args.connections} connections, {args.duration}s per run, {len(asked)} random members"
    )
    print(
        f"member factors: {factors.stat().st_size / 2**20:.0f} MiB at {factors}; "
        f"model files {model_mib:.0f} MiB"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOOKCLUB_", "PROMETHEUS_"))}
    env.update(BOOKCLUB_DATA_DIR=str(data_dir), **{FLOOR_ENV: str(model_dir)})
    if args.database_url:
        env["BOOKCLUB_DATABASE_URL"] = args.database_url
    if args.compute_threads:
        env["BOOKCLUB_API__COMPUTE_THREADS"] = str(args.compute_threads)
    rec_paths = [f"/v1/members/{m}/recommendations?limit=20" for m in asked]
    floor_paths = [f"/floor/{m}?limit=20" for m in asked]
    python = sys.executable
    rows = []
    open_loop: dict[tuple[int, str], dict[str, float]] = {}
    for workers in [int(w) for w in args.workers.split(",")]:
        floor_port, api_port = free_port(), free_port()
        floor_base, api_base = f"http://127.0.0.1:{floor_port}", f"http://127.0.0.1:{api_port}"
        floor_argv = [
            python, "-m", "uvicorn", "benchmarks.bench_api:floor_app", "--factory",
            "--port", str(floor_port), "--workers", str(workers), "--loop", "uvloop",
            "--http", args.floor_http, "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        api_argv = [
            python, "-m", "bookclub_cli.main", "serve", "--port", str(api_port), "--workers", str(workers)
        ]  # fmt: skip
        # both servers up at once and measured in turns, so a neighbour's burst hits both
        floor = start_server(floor_argv, env, floor_port, floor_paths[0])
        try:
            api = start_server(api_argv, env, api_port, "/readyz")
            try:
                load(floor_base, floor_paths[:200], None, args.connections, 2)  # warm-up
                load(api_base, rec_paths[:200], key, args.connections, 2)
                floor_runs, api_runs = [], []
                for _ in range(args.repeats):
                    floor_runs.append(measured(floor, load, floor_base, floor_paths, None, args))
                    api_runs.append(measured(api, load, api_base, rec_paths, key, args))
                floor_result, api_result = median_run(floor_runs), median_run(api_runs)
                rate = args.open_loop_share * floor_result["rps"]
                if rate > 0:
                    open_loop[(workers, "floor")] = open_loop_run(floor_base, floor_paths, None, rate, args.duration)
                    open_loop[(workers, "route")] = open_loop_run(api_base, rec_paths, key, rate, args.duration)
                mem = [memory(pid, model_dir.resolve()) for pid in worker_pids(api)]
            finally:
                stop_server(api)
        finally:
            stop_server(floor)
        rows.append((workers, api_result, floor_result, mem, list(zip(api_runs, floor_runs, strict=True))))
        print(
            f"  {workers} worker(s) done; load average {os.getloadavg()[0]:.1f} "
            f"on {os.cpu_count()} CPUs (other work on the machine skews the figures)"
        )

    print(
        f"\n{'workers':>7} {'route':<16} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} "
        f"{'CPU ms/req':>10}"
    )
    for workers, api_result, floor_result, _mem, runs in rows:
        for name, r in (("recommendations", api_result), ("floor (numpy)", floor_result)):
            print(
                f"{workers:>7} {name:<16} {r['rps']:>8.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} "
                f"{r['non2xx']:>8.0f} {r['cpu_ms']:>10.2f}"
            )
        ratio = api_result["rps"] / floor_result["rps"]
        cpu_ratio = floor_result["cpu_ms"] / api_result["cpu_ms"]
        print(
            f"{'':>7} CPU per request: floor / route = {cpu_ratio:.2f} (the ratio req/s tends to "
            "on an idle machine); per run: req/s "
            + " ".join(f"{a['rps'] / f['rps']:.2f}" for a, f in runs)
            + ", CPU "
            + " ".join(f"{f['cpu_ms'] / a['cpu_ms']:.2f}" for a, f in runs)
        )
        target = 0.5 if workers == 1 else 0.7
        print(
            f"{'':>7} ratio to floor {ratio:.2f} (target >= {target}: "
            f"{'met' if ratio >= target else 'NOT met'}; CPU ratio {cpu_ratio:.2f}: "
            f"{'met' if cpu_ratio >= target else 'NOT met'})"
        )
    if args.open_loop_share > 0:
        print(
            f"\nopen loop: paced at {args.open_loop_share:g} x the floor's closed-loop req/s of the same "
            "run, latency from each request's due time (target: route p99 <= 15 ms)"
        )
        print(
            f"{'workers':>7} {'route':<16} {'rate/s':>8} {'offered':>8} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'p99.9 ms':>9} {'max ms':>8} {'non-2xx':>8} {'client lag ms':>13}"
        )
        for workers, _api, floor_result, _mem, _runs in rows:
            rate = args.open_loop_share * floor_result["rps"]
            for name, o in (
                ("recommendations", open_loop[(workers, "route")]),
                ("floor (numpy)", open_loop[(workers, "floor")]),
            ):
                print(
                    f"{workers:>7} {name:<16} {rate:>8.0f} {o['offered']:>8.0f} {o['p50']:>8.2f} "
                    f"{o['p99']:>8.2f} {o['p999']:>9.2f} {o['max']:>8.1f} {o['non2xx']:>8.0f} "
                    f"{o['client_lag']:>13.1f}"
                )
            p99 = open_loop[(workers, "route")]["p99"]
            print(f"{'':>7} route p99 {p99:.1f} ms (target <= 15: {'met' if p99 <= 15 else 'NOT met'})")
    print("\nmemory per API worker after the run (MiB):")
    print(
        f"{'workers':>7} {'pid':>3} {'RSS':>8} {'PSS':>8} {'private':>8} {'model RSS':>10} "
        f"{'model PSS':>10}"
    )
    for workers, _a, _f, mem, _runs in rows:
        for n, m in enumerate(mem):
            print(
                f"{workers:>7} {n:>3} {m['rss']:>8.1f} {m['pss']:>8.1f} {m['anon']:>8.1f} "
                f"{m['model_rss']:>10.1f} {m['model_pss']:>10.1f}"
            )
    print(
        "(private = anonymous memory, each worker's own; model = the memory-mapped model files, "
        "one copy in the page cache: PSS ≈ RSS / workers. RSS also counts the SQLite file's "
        "shared mmap pages)"
    )
    if args.no_breakdown:
        return
    parts = breakdown(data_dir, model_dir, asked, args.database_url)
    print("\nserial cost per call, in process (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in parts.items()))
    print(
        f"model.recommend is {parts['model.recommend'] / parts['request work']:.0%} of the "
        f"route's work; the floor is {parts['floor'] / parts['request work']:.0%} of it"
    )


if __name__ == "__main__":
    main()
