"""Load a learner's work (a notebook or a .py file) into a namespace to grade, without writing anything.

From a notebook we run the cells that define things (setup and exercise cells, and from any other cell
only its imports, function and class definitions), never the experiments or check cells: grading stays
fast and a crashing training run cannot stop the grader. Each cell runs on its own, so one broken cell
costs only the exercises that need it.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
from pathlib import Path

DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _strip_magics(source: str) -> str:
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _definitions_only(source: str) -> str:
    tree = ast.parse(source)
    tree.body = [node for node in tree.body if isinstance(node, DEFINITIONS)]
    return ast.unparse(tree)


def code_cells(path: Path) -> list[tuple[str, str]]:
    """(label, source to run) for each code cell of a learner's notebook or .py file."""
    path = Path(path)
    if path.suffix == ".py":
        return [(path.name, path.read_text(encoding="utf-8"))]
    nb = json.loads(path.read_text(encoding="utf-8"))  # plain JSON: importing nbformat costs ~2 s
    cells = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        tags = set(cell.get("metadata", {}).get("tags", []))
        if "check" in tags or "experiment" in tags:
            continue
        source = cell.get("source", "")
        source = _strip_magics("".join(source) if isinstance(source, list) else source)
        if not ({"setup", "exercise"} & tags):
            try:
                source = _definitions_only(source)
            except SyntaxError:
                continue
        cells.append((f"cell {i + 1}", source))
    return cells


def load_learner(path: Path) -> tuple[dict, list[str]]:
    """Execute the learner's definitions; returns (namespace, problems seen while loading)."""
    import torch

    namespace: dict = {"__name__": "learner"}
    problems = []
    grad_mode = torch.is_grad_enabled()
    for label, source in code_cells(path):
        try:
            code = compile(source, f"<{label}>", "exec")
            with contextlib.redirect_stdout(io.StringIO()):
                exec(code, namespace)
        except Exception as e:  # a broken cell must not stop the grading of the others
            problems.append(f"{label}: {type(e).__name__}: {e}")
    torch.set_grad_enabled(grad_mode)  # a setup cell may switch gradients off for its notebook
    return namespace, problems
