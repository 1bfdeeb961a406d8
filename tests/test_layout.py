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


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class Imports(ast.NodeVisitor):
    """The modules of ``modules`` that one module's imports name, wherever they are: at module level, in
    ``try``/``if``, inside functions and classes (an import in a function runs when it is called: it is
    just as much a dependency, only a later one).

    ``runtime`` holds the imports that can run; ``typing`` those only under ``if TYPE_CHECKING:``. Those
    never run, so they cannot break an import order: they are how a lower module names a higher one's
    type in an annotation (a block's ``build`` takes the compiler's ``BuildContext``), and mypy reads
    cycles among them fine. The cycle test leaves them out; the façade test counts them too.
    """

    def __init__(self, module: str, is_package: bool, modules: set[str]) -> None:
        self.module, self.modules = module, modules
        self.package = module if is_package else module.rpartition(".")[0]
        self.runtime: set[str] = set()
        self.typing: set[str] = set()
        self._type_checking = False

    def _add(self, target: str) -> None:
        if target in self.modules and target != self.module:
            (self.typing if self._type_checking else self.runtime).add(target)

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        outer, self._type_checking = self._type_checking, True
        for statement in node.body:
            self.visit(statement)
        self._type_checking = outer
        for statement in node.orelse:  # the ``else:`` of ``if TYPE_CHECKING:`` is what runs
            self.visit(statement)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:  # ``from ..x import y``: relative to this module's package
            parent = self.package.rsplit(".", node.level - 1)[0]
            base = f"{parent}.{base}" if base else parent
        for alias in node.names:  # ``from pkg import name``: the module ``pkg.name`` if there is one, else ``pkg``
            target = f"{base}.{alias.name}"
            self._add(target if target in self.modules else base)


def module_imports(source: str, module: str, is_package: bool, modules: set[str]) -> Imports:
    """What the module ``module`` (its text ``source``) imports of ``modules``."""
    found = Imports(module, is_package, modules)
    found.visit(ast.parse(source))
    return found


def import_graph(include_typing: bool = False) -> dict[str, set[str]]:
    """Module -> the blockbuilder modules it imports, at module level or in functions (see :class:`Imports`)."""
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        found = module_imports(path.read_text(), name, path.name == "__init__.py", set(paths))
        graph[name] = found.runtime | (found.typing if include_typing else set())
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


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def tangles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (each holds at least one cycle)."""
    reaches = {node: _reachable(graph, node) for node in graph}
    components: list[set[str]] = []
    for node in sorted(graph):
        if node in reaches[node] and not any(node in component for component in components):
            components.append({other for other in reaches[node] if node in reaches[other]})
    return components


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle in each tangle: every tangle, not just the first one the search meets."""
    cycles = []
    for component in tangles(graph):
        cycle = find_cycle({node: graph[node] & component for node in component})
        assert cycle is not None
        cycles.append(cycle)
    return cycles


def _short(names: list[str]) -> list[str]:
    return [name.removeprefix("blockbuilder.") for name in names]


def test_no_import_cycle() -> None:
    graph = import_graph()
    found = [f"{' -> '.join(_short(cycle))}   (tangled: {', '.join(_short(sorted(tangle)))})"
             for cycle, tangle in zip(find_cycles(graph), tangles(graph))]
    assert not found, "import cycles (imports inside functions count):\n" + "\n".join(found)


def test_nothing_in_the_package_imports_its_facade() -> None:
    """``blockbuilder/__init__.py`` is for users; inside, a module imports the module that has the thing."""
    graph = import_graph(include_typing=True)
    importers = sorted(name for name, imported in graph.items() if "blockbuilder" in imported)
    assert importers == [], f"these import the façade 'blockbuilder', not the module they mean: {importers}"


def test_the_cycle_finder_finds_every_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    graph = {"a": {"b"}, "b": {"a", "c"}, "c": {"d"}, "d": {"c"}, "e": {"a"}}
    assert find_cycles(graph) == [["a", "b", "a"], ["c", "d", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_reader_sees_imports_in_functions_but_not_under_type_checking() -> None:
    source = ("from typing import TYPE_CHECKING\n"
              "import pkg.a\n"
              "if TYPE_CHECKING:\n"
              "    from pkg.b import B\n"
              "else:\n"
              "    from pkg import c\n"
              "def f():\n"
              "    from .d import thing\n"
              "    try:\n"
              "        from pkg import name_in_pkg\n"
              "    except ImportError:\n"
              "        pass\n"
              "class K:\n"
              "    def g(self):\n"
              "        import pkg.sub.e as e\n")
    modules = {"pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.d", "pkg.m", "pkg.sub", "pkg.sub.e"}
    found = module_imports(source, "pkg.m", False, modules)
    assert (found.runtime, found.typing) == ({"pkg", "pkg.a", "pkg.c", "pkg.d", "pkg.sub.e"}, {"pkg.b"})
    assert module_imports("from . import e\nfrom .. import a\n", "pkg.sub", True, modules).runtime == {
        "pkg.sub.e", "pkg.a"}


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


@pytest.mark.skipif(bool(subprocess.run([sys.executable, "-m", "mypy", "--version"], capture_output=True).returncode),
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
