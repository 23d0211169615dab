"""The toolkit's layout: no module imports another toolkit module from inside a function (that is how an import
cycle hides), and the graph of their top-level imports has no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import mechinterp.course.toolkit as toolkit

ROOT = Path(toolkit.__file__).parent
PREFIX = "mechinterp.course.toolkit"


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join((PREFIX, *parts)).removesuffix(".__init__")
        out[name] = ast.parse(path.read_text())
    return out


def _toolkit_imports(node: ast.AST, names: set[str]) -> set[str]:
    found = set()
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PREFIX):
        for alias in node.names:  # `from pkg import module` imports the module
            sub = f"{node.module}.{alias.name}"
            found.add(sub if sub in names else node.module)
    elif isinstance(node, ast.Import):
        found |= {a.name for a in node.names if a.name.startswith(PREFIX)}
    return found


def _ancestors(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(len(PREFIX.split(".")), len(parts))}


def test_no_toolkit_module_imports_the_toolkit_inside_a_function():
    modules = _modules()
    hidden = []
    for name, tree in modules.items():
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    hidden += [f"{name}.{fn.name} imports {m}" for m in _toolkit_imports(node, set(modules))]
    # the package's lazy `load_model` attribute (a learner's `import mechinterp.course.toolkit` stays quick)
    assert hidden == [f"{PREFIX}.__getattr__ imports {PREFIX}.model"], hidden


def test_the_toolkit_import_graph_has_no_cycle():
    modules = _modules()
    graph = {name: set() for name in modules}
    for name, tree in modules.items():
        own_packages = _ancestors(name)
        for node in tree.body:
            for imported in _toolkit_imports(node, set(modules)) - {name}:
                # importing a.b.c runs a.b's __init__ first (unless it is a package this module is inside)
                graph[name] |= ({imported} | _ancestors(imported)) - own_packages - {name}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 1:
            raise AssertionError("import cycle: " + " -> ".join([*path, node]))
        if state.get(node) == 2:
            return
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, [*path, node])
        state[node] = 2

    for name in sorted(graph):
        visit(name, [])
