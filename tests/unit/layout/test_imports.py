"""The package's shape: one way dependencies (pipelines -> operators -> schemas), no import circles,
and the product never imports the benchmark harness (only the `bench` command's entry point does)."""

from __future__ import annotations

import ast
from importlib import resources
from pathlib import Path

import pytest

PACKAGES = ("operators", "pipelines", "schemas", "benchmarks")
# A layer may import itself and the layers after it, never one before it.
LAYERS = ("benchmarks", "pipelines", "operators", "schemas")
# the only product functions that may import the harness: the `bench` command, lazily
BENCH_ENTRY = {("twinguard.pipelines.cli", "cmd_bench")}


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        root = Path(str(resources.files(f"twinguard.{pkg}")))
        for f in root.rglob("*.py"):
            parts = f.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(("twinguard", pkg, *parts))] = f
    return out


def imports(path: Path, module_level: bool) -> list[tuple[str, str | None]]:
    """(imported module, enclosing function or None) of every `import twinguard...`."""
    tree = ast.parse(path.read_text())
    found: list[tuple[str, str | None]] = []

    def visit(node: ast.AST, func: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            f = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else func
            if isinstance(child, ast.ImportFrom) and child.module and child.module.startswith("twinguard"):
                for alias in child.names:  # `from twinguard.x import y` may name module y
                    found.append((f"{child.module}.{alias.name}", f))
                found.append((child.module, f))
            elif isinstance(child, ast.Import):
                found.extend((a.name, f) for a in child.names if a.name.startswith("twinguard"))
            visit(child, f)

    visit(tree, None)
    return [(m, f) for m, f in found if not module_level or f is None]


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: {m for m, _ in imports(path, module_level=True) if m in mods and m != name}
            for name, path in mods.items()}


def test_no_import_circles() -> None:
    g = graph()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def dfs(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(g[m]):
            if state.get(n) == 1:
                pytest.fail("import circle: " + " -> ".join([*path[path.index(n):], n]))
            if n not in state:
                dfs(n)
        path.pop()
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            dfs(m)


def test_dependencies_point_one_way() -> None:
    for m, deps in graph().items():
        layer = LAYERS.index(m.split(".")[1])
        for d in deps:
            assert LAYERS.index(d.split(".")[1]) >= layer, f"{m} imports {d}: against the layers"


def test_the_product_imports_the_benchmarks_only_from_the_bench_command() -> None:
    for name, path in modules().items():
        if name.startswith("twinguard.benchmarks"):
            continue
        for m, func in imports(path, module_level=False):
            if m.startswith("twinguard.benchmarks"):
                assert (name, func) in BENCH_ENTRY, f"{name} ({func or 'module level'}) imports {m}"
