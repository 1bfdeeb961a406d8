"""The package's layout keeps its promises: no import cycle, no vague module names, a typed public API."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import blockbuilder

PACKAGE = Path(blockbuilder.__file__).parent
REPO = PACKAGE.parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def import_graph() -> dict[str, set[str]]:
    """Module -> blockbuilder modules it imports at import time (not inside functions or TYPE_CHECKING)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        edges: set[str] = set()
        statements = list(tree.body)
        while statements:
            node = statements.pop()
            if isinstance(node, ast.If) and not _is_type_checking(node):
                statements.extend(node.body + node.orelse)
            elif isinstance(node, ast.Try):
                statements.extend(node.body + node.orelse + node.finalbody)
            elif isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name in modules)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    edges.add(target if target in modules else node.module)
        graph[name] = {edge for edge in edges if edge in modules and edge != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for following in sorted(graph[node]):
            if state.get(following) == 1:
                return [*stack[stack.index(following):], following]
            if following not in state:
                found = visit(following)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle() -> None:
    assert find_cycle(import_graph()) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_module_named_for_nothing() -> None:
    vague = [p.name for p in PACKAGE.rglob("*.py")
             if p.stem.endswith("_extra") or p.stem in ("utils", "misc", "helpers")]
    assert vague == []


def test_the_language_and_the_blocks_never_import_keras() -> None:
    script = ("import sys, blockbuilder\n"
              "arch = blockbuilder.load('resnet50')\n"
              "from blockbuilder.report.summary import estimate; estimate(arch)\n"
              "from blockbuilder.language.schema import json_schema; json_schema()\n"
              "heavy = [m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules]\n"
              "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_public_api_is_exactly_what_all_says() -> None:
    for name in blockbuilder.__all__:
        assert getattr(blockbuilder, name) is not None, name
    assert issubclass(blockbuilder.SpecError, blockbuilder.BlockbuilderError)
    assert issubclass(blockbuilder.DataError, blockbuilder.CommandError)
    assert issubclass(blockbuilder.UsageError, blockbuilder.BlockbuilderError)


@pytest.mark.skipif(subprocess.run([sys.executable, "-m", "mypy", "--version"], capture_output=True).returncode,
                    reason="mypy is not installed (pip install -e '.[test]' brings it)")
def test_the_package_passes_mypy_strict() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary"], capture_output=True, text=True,
                            cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:]


def test_the_readme_tables_are_generated_from_the_code() -> None:
    from blockbuilder.report.reference import update

    readme = (REPO / "README.md").read_text()
    assert "<!-- generated:blocks -->\n| block |" in readme and "<!-- generated:budgets -->\n| budget |" in readme
    assert update(readme) == readme, "stale: run python -m blockbuilder.report.reference README.md"
