"""The package's layers, read from its import graph: data flows one way, and the plain data at
the bottom (facts, results, reasons) loads no probe, so judging, storing and rendering stay
cheap to import and cannot reach back up the chain."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest

import exporter

PACKAGE = Path(exporter.__file__).parent

# (importer, imported): no module under the first may reach one under the second, directly or
# through others. A name covers the module and everything under it.
FORBIDDEN = [
    *(
        (low, "exporter.probes")
        for low in (
            "exporter.results",
            "exporter.reasons",
            "exporter.conditions",
            "exporter.state",
            "exporter.evaluate",
            "exporter.metrics",
            "exporter.exposition",
        )
    ),
    *(
        ("exporter.probes", high)
        for high in (
            "exporter.state",
            "exporter.metrics",
            "exporter.exposition",
            "exporter.runner",
            "exporter.scheduler",
            "exporter.daemon",
            "exporter.web",
        )
    ),
    # The web edge reads views and services handed in at start: it never holds the daemon, so
    # no route can reach the scheduling, the runner or a probe.
    *(
        ("exporter.web", high)
        for high in (
            "exporter.daemon",
            "exporter.scheduler",
            "exporter.runner",
            "exporter.probes",
        )
    ),
    *(
        ("exporter.state", high)
        for high in (
            "exporter.metrics",
            "exporter.exposition",
            "exporter.web",
        )
    ),
]

# The plain data imports nothing of the project but the reasons.
PLAIN = {"exporter.reasons": set[str](), "exporter.results": {"exporter.reasons"}}


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(tree: ast.Module, name: str, is_package: bool) -> Iterator[tuple[str, str | None]]:
    """(module, imported name or None) for every import that can run: at module level and in
    functions, but not under `if TYPE_CHECKING:` (types only, never executed)."""
    package = name if is_package else name.rpartition(".")[0]
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from ((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            yield from ((source, alias.name) for alias in node.names)
        pending.extend(ast.iter_child_nodes(node))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the project's modules importing it runs. Importing `a.b.c` runs `a` and `a.b`
    first (a package's `__init__`), so those are edges too."""
    sources = {module_name(p, root): p for p in root.rglob("*.py")}
    top = root.name
    graph: dict[str, set[str]] = {}
    for name, path in sources.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        edges: set[str] = set()
        for source, imported in imports(tree, name, path.name == "__init__.py"):
            if source != top and not source.startswith(f"{top}."):
                continue
            targets = [source]
            if imported is not None and f"{source}.{imported}" in sources:
                targets.append(f"{source}.{imported}")
            for target in targets:
                parts = target.split(".")
                edges.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        edges.discard(name)
        graph[name] = {e for e in edges if e in sources}
    return graph


def under(module: str, name: str) -> bool:
    return module == name or module.startswith(f"{name}.")


def forbidden_paths(graph: dict[str, set[str]]) -> list[str]:
    """Each forbidden reach, as the chain of imports that makes it."""
    found = []
    for low, high in FORBIDDEN:
        for start in sorted(m for m in graph if under(m, low)):
            came_from: dict[str, str | None] = {start: None}
            queue = deque([start])
            while queue:
                current = queue.popleft()
                if under(current, high):
                    chain = [current]
                    while (step := came_from[chain[-1]]) is not None:
                        chain.append(step)
                    found.append(" -> ".join(reversed(chain)))
                    break
                for nxt in sorted(graph[current] - came_from.keys()):
                    came_from[nxt] = current
                    queue.append(nxt)
    return found


def test_no_layer_imports_one_it_must_not() -> None:
    assert forbidden_paths(import_graph(PACKAGE)) == []


def test_plain_data_imports_nothing_of_the_project_but_the_reasons() -> None:
    graph = import_graph(PACKAGE)
    for module, allowed in PLAIN.items():
        assert graph[module] - {"exporter"} <= allowed, module


@pytest.mark.parametrize(
    ("source", "found"),
    [
        # The shape this test guards against: results reaching the probes through their base.
        ("from exporter.probes.base import Facts\n", "exporter.probes"),
        ("from .probes import base\n", "exporter.probes.base"),
        ("def load():\n    import exporter.probes.http\n", "exporter.probes.http"),
    ],
)
def test_the_graph_sees_every_kind_of_import(source: str, found: str, tmp_path: Path) -> None:
    root = tmp_path / "exporter"
    (root / "probes").mkdir(parents=True)
    for path in ("__init__.py", "probes/__init__.py", "probes/base.py", "probes/http.py"):
        (root / path).write_text("")
    (root / "results.py").write_text(source)
    assert found in import_graph(root)["exporter.results"]
    assert forbidden_paths(import_graph(root))[0].startswith("exporter.results -> ")


def test_imports_for_types_only_are_no_edge(tmp_path: Path) -> None:
    root = tmp_path / "exporter"
    (root / "probes").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "probes/__init__.py").write_text("")
    (root / "results.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from exporter.probes import x\n"
    )
    assert import_graph(root)["exporter.results"] == set()


@pytest.mark.parametrize(
    ("module", "unloaded"),
    [
        # What the store, the judging and /metrics need: no probe, no client library.
        ("exporter.state", ("exporter.probes", "aiohttp", "asyncpg", "redis", "pydantic")),
        ("exporter.exposition", ("exporter.probes", "aiohttp", "asyncpg", "redis")),
        # The web edge reads views: loading it loads no daemon, scheduling, runner or probe.
        (
            "exporter.web.app",
            ("exporter.daemon", "exporter.scheduler", "exporter.runner", "exporter.probes"),
        ),
        # `--version` and argument errors answer before any client library or the web server loads.
        ("exporter.cli", ("aiohttp", "asyncpg", "redis", "uvicorn", "markdown_it", "cryptography")),
    ],
)
def test_importing_a_layer_loads_nothing_it_does_not_use(
    module: str, unloaded: tuple[str, ...]
) -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", f"import sys, {module}; print('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    assert [m for m in loaded if any(under(m, name) for name in unloaded)] == []


HANG = 60
"""Seconds of a sleep that stands for a probe that never answers: the one use of a sleep in a
unit test. Anything shorter would be waiting for something, which a test does by advancing a
FixedClock or awaiting an event."""


def sleeps(tree: ast.Module) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "sleep":
                yield node


def test_no_unit_test_waits_by_sleeping() -> None:
    found = []
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        for call in sleeps(ast.parse(path.read_text(encoding="utf-8"))):
            seconds = call.args[0] if call.args else None
            value = seconds.value if isinstance(seconds, ast.Constant) else None
            if not (isinstance(value, int | float) and value >= HANG):
                found.append(f"{path.name}:{call.lineno}")
    assert found == []


def test_the_sleep_check_sees_a_sleep_that_waits() -> None:
    tree = ast.parse("async def t():\n    await asyncio.sleep(0.1)\n    time.sleep(60)\n")
    assert sorted(c.lineno for c in sleeps(tree)) == [2, 3]


def test_the_scheduler_takes_time_and_chance_as_parameters() -> None:
    """No wall clock and no global random in the scheduler: its Clock and seeded RNG drive it,
    so its tests advance a FixedClock instead of sleeping."""
    tree = ast.parse((PACKAGE / "scheduler.py").read_text(encoding="utf-8"))
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert "time" not in imported
    calls = [
        f"{node.func.value.id}.{node.func.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
    ]
    assert [c for c in calls if c.startswith(("random.", "time.", "datetime.now"))] == []


def _layout() -> str:
    """The module map: the Layout section of docs/development.md."""
    page = (Path(__file__).parents[2] / "docs" / "development.md").read_text(encoding="utf-8")
    return page.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]


def _mapped(path: Path) -> bool:
    """Whether the map must name this file: every module and static file, but the package
    markers and the probe kinds (one file per kind, as the map says)."""
    if "__pycache__" in path.parts or path.suffix not in (".py", ".css", ".js"):
        return False
    if path.name == "__init__.py" and path.parent != PACKAGE / "state":
        return False
    return path.parent.name != "probes" or path.stem == "base"


def test_the_module_map_names_every_module() -> None:
    """A new module (or a moved one) is placed in the map, so the map stays true."""
    layout = _layout()
    missing = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*"))
        if _mapped(path) and path.name not in layout
    ]
    folders = sorted(p.name for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__")
    missing += [f"{name}/" for name in folders if f"{name}/" not in layout]
    assert not missing, f"docs/development.md's Layout does not name: {', '.join(missing)}"
