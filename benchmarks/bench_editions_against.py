"""Member editions against an earlier revision's, on the same machine at the same time.

Issue 13's figure — 8.15 editions a second a core in process, 123 ms each — was measured on
one machine with the code of its day; machines here differ 2.5-3x from session to session. So
the reference is that code itself: a ``git worktree`` of ``--reference`` (default 853c908,
the commit before the issue's first) and this checkout each build their own demo club (each
revision's ``benchmarks.bench_fanout.build_club``, same seed) and render ``--editions`` demo
editions in process, as a Dask worker does (``catalog.fanout.render_batch``), **at the same
time, each pinned to one core**, then with the cores swapped. Printed: CPU an edition each
(all batches, and steady: without each segment's first batch), the ratio, and the issue's
8.15/s times the ratio — the rate this code would have on the issue's machine.

    .venv/bin/python -m benchmarks.bench_editions_against [--reference REV] [--editions 240]

Needs two cores, ``git`` and a checkout (the worktree is removed at the end).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ISSUE_RATE = 8.15  # editions a second a core, in process, issue 13's starting figure
REFERENCE = "853c908"  # the commit before issue 13's first

BUILD = """
import sys
from pathlib import Path
from benchmarks.bench_fanout import build_club
build_club(Path(sys.argv[1]), int(sys.argv[2]))
"""

RENDER = """
import os, sys, tempfile, time
from pathlib import Path
from benchmarks.bench_fanout import spread
from catalog.fanout import make_batches, prepare_job, render_batch
from catalog.planning import stored_plans
from recsys.settings import SegmentSettings, Settings, TrainingSettings
from recsys.storage import segments as segments_db
from recsys.storage.db import engine_from_settings
from training.registry import ModelRegistry
try:
    from catalog.fanout import warm_worker  # the stamp sheets, once per segment and worker
except ImportError:  # code before the stamps
    def warm_worker(job): return 0

data, n = Path(sys.argv[1]), int(sys.argv[2])
settings = Settings(data_dir=data, training=TrainingSettings(factors=32, iterations=10),
                    segments=SegmentSettings(clusters=4))
engine = engine_from_settings(settings)
version = ModelRegistry(settings.models_dir).active_version()
out = Path(tempfile.mkdtemp(prefix="bench-editions-"))
with engine.connect() as c:
    plans = stored_plans(c, "2026Q4")
    labels = segments_db.member_segment_labels(c, "2026Q4")
    batches = make_batches(labels, sorted(labels), settings.catalog.members_per_batch)
    job = prepare_job(c, settings, "2026Q4", plans, model_version=version, out_dir=out)
sample = spread(list(batches), -(-n // settings.catalog.members_per_batch) + 1)
render_batch(job, sample[0])
warm_worker(job)
seen, total, steady, eds, steady_n = {sample[0].segment}, 0.0, 0.0, 0, 0
for b in sample[1:]:
    c0 = time.process_time()
    render_batch(job, b)
    c = time.process_time() - c0
    total += c
    eds += len(b.member_ids)
    if b.segment in seen:
        steady += c
        steady_n += len(b.member_ids)
    seen.add(b.segment)
print(f"{total / eds * 1000:.1f} {steady / max(steady_n, 1) * 1000:.1f} {eds}")
"""


def _env(tree: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    env.setdefault("BOOKCLUB_SHARED_DATA_DIR", str(ROOT.parent / "shared" / "data"))
    return env


def _steady(ms: float) -> str:
    return f"steady {ms:.1f}" if ms else "no steady batch: raise --editions"


def _pinned(core: int) -> None:
    os.sched_setaffinity(0, {core})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", default=REFERENCE, help="the revision to measure against")
    parser.add_argument("--editions", type=int, default=240, help="editions timed per run")
    parser.add_argument("--club-members", type=int, default=1500)
    parser.add_argument("--turns", type=int, default=2, help="runs, the cores swapped each time")
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        raise SystemExit("needs two cores: the two revisions run at the same time, one on each")
    python = sys.executable
    work = Path(tempfile.mkdtemp(prefix="bench-editions-against-"))
    old_tree = work / "reference"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old_tree), args.reference],
                   check=True, capture_output=True)
    trees = {"reference": old_tree, "this code": ROOT}
    try:
        for name, tree in trees.items():  # one after the other: each club is built by its own code
            club = work / name.replace(" ", "-")
            subprocess.run([python, "-c", BUILD, str(club), str(args.club_members)], env=_env(tree), check=True,
                           capture_output=True, cwd=tree)
        print(f"{args.editions} demo editions a run; reference {args.reference}, this code "
              f"{subprocess.run(['git', '-C', str(ROOT), 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()}")
        ratios: list[float] = []
        for turn in range(args.turns):
            placed = dict(zip(trees, (cores[turn % 2], cores[(turn + 1) % 2]), strict=True))
            runs = {
                name: subprocess.Popen(
                    [python, "-c", RENDER, str(work / name.replace(" ", "-")), str(args.editions)],
                    env=_env(tree), cwd=tree, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                    preexec_fn=lambda core=placed[name]: _pinned(core),
                )
                for name, tree in trees.items()
            }
            got: dict[str, tuple[float, float]] = {}
            for name, proc in runs.items():
                out, err = proc.communicate()
                if proc.returncode != 0:
                    raise SystemExit(f"{name} failed:\n{err[-2000:]}")
                total, steady, _n = out.split()[-3:]
                got[name] = (float(total), float(steady))
            ratio = got["reference"][0] / got["this code"][0]
            ratios.append(ratio)
            print(f"  turn {turn + 1}: reference (core {placed['reference']}) {got['reference'][0]:.1f} ms "
                  f"({_steady(got['reference'][1])}), this code (core {placed['this code']}) "
                  f"{got['this code'][0]:.1f} ms ({_steady(got['this code'][1])}) CPU an edition: "
                  f"ratio {ratio:.2f} → {ISSUE_RATE * ratio:.1f} editions/s/core on the issue's machine")
        print(f"ratio {min(ratios):.2f}–{max(ratios):.2f}: this code at {ISSUE_RATE * min(ratios):.1f}–"
              f"{ISSUE_RATE * max(ratios):.1f} editions a second a core where the reference did {ISSUE_RATE}")
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old_tree)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
