"""livefeed's modules import on their own, and their module-level imports form no cycle.

A cycle works until someone reorders two imports, then fails at start-up with a half-initialised
module. Imports inside functions (the lazy model imports) run later and do not count; neither do
those under `if TYPE_CHECKING:`.
"""

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "livefeed"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _top_level_imports(statements: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []
    for statement in statements:
        if isinstance(statement, ast.Import | ast.ImportFrom):
            found.append(statement)
        elif isinstance(statement, ast.If) and "TYPE_CHECKING" not in ast.unparse(statement.test):
            found += _top_level_imports(statement.body + statement.orelse)
        elif isinstance(statement, ast.Try):
            found += _top_level_imports(statement.body + statement.orelse + statement.finalbody)
    return found


def imports_of(name: str) -> set[str]:
    """The livefeed modules that module `name` imports when it is imported."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for statement in _top_level_imports(ast.parse(path.read_text()).body):
        if isinstance(statement, ast.Import):
            targets |= {alias.name for alias in statement.names}
            continue
        base = statement.module or ""
        if statement.level:  # relative: from . import x, from .y import z
            anchor = package.rsplit(".", statement.level - 1)[0] if statement.level > 1 else package
            base = f"{anchor}.{base}" if base else anchor
        for alias in statement.names:
            # `from livefeed import hub` imports the module hub; the package itself is already
            # being imported by then, as the parent of every module, and is no edge.
            submodule = f"{base}.{alias.name}"
            targets.add(submodule if submodule in MODULES else base)
    return {target for target in targets if target in MODULES and target != name}


def cycle(graph: dict[str, set[str]]) -> list[str]:
    """Return one import cycle of graph, or [] when there is none."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str]:
        if node in path:
            return path[path.index(node) :] + [node]
        if node in done:
            return []
        for target in sorted(graph[node]):
            found = visit(target, [*path, node])
            if found:
                return found
        done.add(node)
        return []

    for start in sorted(graph):
        found = visit(start, [])
        if found:
            return found
    return []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_each_module_imports(name):
    importlib.import_module(name)


def test_module_level_imports_form_no_cycle():
    graph = {name: imports_of(name) for name in MODULES}
    assert "livefeed.hub" in graph["livefeed.bridge"]  # the graph sees what the code imports
    assert cycle(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
