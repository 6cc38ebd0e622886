"""Imports run one way (docs/architecture.md): the faces → the quarter job → training, catalog,
campaign, demo → recsys. Every import of every module counts, those inside functions too."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("recsys", "training", "catalog", "campaign", "demo", "quarterly", "api", "console", "bookclub_cli")

# what each package may import of ours; the three edges across a layer are named with why
ALLOWED: dict[str, set[str]] = {
    "recsys": set(),
    "training": {"recsys"},
    # the Dask workers (catalog/fanout.py) load the active model from the registry themselves
    "catalog": {"recsys", "training"},
    "campaign": {"recsys"},
    # the generated club's members answer a mailing through the campaign's response model
    "demo": {"recsys", "campaign"},
    "quarterly": {"recsys", "training", "catalog", "campaign", "demo"},
    # the API application mounts the staff console's pages
    "api": {"recsys", "training", "catalog", "campaign", "console"},
    "console": {"recsys", "training", "catalog", "campaign"},
    "bookclub_cli": {"recsys", "training", "catalog", "campaign", "demo", "quarterly"},
}


def imported(path: Path) -> set[str]:
    """Our top-level packages imported anywhere in ``path`` (absolute imports)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found.update(n.split(".")[0] for n in names if n.split(".")[0] in PACKAGES)
    return found


def package_imports() -> dict[str, dict[str, list[str]]]:
    """package → imported package → the files that import it."""
    edges: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for other in imported(path) - {package}:
                edges[package][other].append(str(path.relative_to(ROOT)))
    return edges


def test_every_import_runs_down_the_layers() -> None:
    wrong = [
        f"{package} imports {other} ({', '.join(files[:3])})"
        for package, targets in package_imports().items()
        for other, files in sorted(targets.items())
        if other not in ALLOWED[package]
    ]
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_the_allowed_imports_have_no_cycle() -> None:
    # the rule itself: a cycle in ALLOWED would let the code grow one
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in ALLOWED[node]:
            assert state.get(nxt) != 1, "cycle: " + " → ".join([*path, node, nxt])
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for package in PACKAGES:
        if package not in state:
            visit(package, [])


def test_the_check_sees_a_wrong_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from catalog.production import renderer_for\n    import api.app\n")
    assert imported(module) == {"catalog", "api"}
