"""The package's import rules, every ``import`` (lazy ones inside functions too) read with ``ast``:
no import circles, and only ``ticker/store/`` talks to Redis."""

from __future__ import annotations

import ast
from pathlib import Path

import ticker

PACKAGE = Path(ticker.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports, wherever in the file the import stands."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in modules else base)
    return {target for target in found if target in modules and target != name}


def redis_imports(path: Path) -> set[str]:
    """The ``redis`` modules that ``path`` imports (``from redis.x import y`` counts as ``redis.x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module)
    return {name for name in found if name == "redis" or name.startswith("redis.")}


def graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(path) for path in paths}
    return {module_name(path): imports_of(path, modules) for path in paths}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One path per circle found by a depth-first walk, e.g. ``[a, b, a]``."""
    found: list[list[str]] = []
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        for target in sorted(edges.get(node, ())):
            if target in path:
                found.append([*path[path.index(target) :], target])
            elif target not in done:
                visit(target, [*path, target])
        done.add(node)

    for start in sorted(edges):
        if start not in done:
            visit(start, [start])
    return found


def test_the_walk_finds_a_circle() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_the_walk_sees_the_package() -> None:
    edges = graph()
    assert "ticker.store" in edges["ticker.app"]
    assert "ticker.process" in edges["ticker.demo"], "lazy imports inside functions count too"


def test_no_import_circles() -> None:
    found = circles(graph())
    assert not found, "import circles: " + "; ".join(" -> ".join(circle) for circle in found)


def test_only_the_store_talks_to_redis() -> None:
    """Outside ``ticker/store/`` a module may catch Redis's errors (the 503 handler, the reader's
    retries, the CLI's messages) but opens no client and sends no command: it receives plain values."""
    store = PACKAGE / "store"
    assert "redis.asyncio" in redis_imports(store / "connection.py"), "the walk sees the store's own imports"
    outside = {
        module_name(path): redis_imports(path) - {"redis.exceptions"}
        for path in sorted(PACKAGE.rglob("*.py"))
        if store not in path.parents
    }
    assert not {name: found for name, found in outside.items() if found}
