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
import linecache
import sys
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


@contextlib.contextmanager
def grader_state_restored():
    """Whatever code runs inside, afterwards the grader's own modules, torch's and NumPy's top-level functions,
    torch.Tensor's methods and torch's global settings are as they were before: module-level learner code
    (which runs in the grader's process while loading) cannot patch the grader or torch for later checks."""
    import torch

    modules = {n: m for n, m in list(sys.modules.items()) if m is not None and
               (n.startswith("mechinterp") or n in ("torch", "torch.nn.functional", "torch.nn", "numpy"))}
    saved = {n: dict(vars(m)) for n, m in modules.items()}
    tensor_attrs = dict(vars(torch.Tensor))
    dtype, threads, grad = torch.get_default_dtype(), torch.get_num_threads(), torch.is_grad_enabled()
    try:
        yield
    finally:
        for n, module in modules.items():
            current = vars(module)
            for k, v in saved[n].items():
                if current.get(k, _MISSING) is not v:
                    current[k] = v
        for k, v in tensor_attrs.items():
            if vars(torch.Tensor).get(k, _MISSING) is not v:
                with contextlib.suppress(AttributeError, TypeError):
                    setattr(torch.Tensor, k, v)
        torch.set_default_dtype(dtype)
        torch.set_num_threads(threads)
        torch.set_grad_enabled(grad)  # a setup cell may switch gradients off for its notebook


_MISSING = object()


def load_learner(path: Path) -> tuple[dict, list[str]]:
    """Execute the learner's definitions; returns (namespace, problems seen while loading)."""
    namespace: dict = {"__name__": "learner"}
    problems = []
    with grader_state_restored():
        for label, code in _compiled_units(Path(path), problems):
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(code, namespace)
            except BaseException as e:  # noqa: BLE001 - a broken (or exiting) cell must not stop the others
                problems.append(f"{label}: {type(e).__name__}: {e}")
    return namespace, problems


def _compiled_units(path: Path, problems: list[str]):
    """(label, code object) per notebook cell; for a .py file, per top-level statement, so that one failing
    statement costs only what it defines."""
    if path.suffix != ".py":
        for label, source in code_cells(path):
            filename = f"<{label}>"
            # the source is registered with linecache so that hints can quote the learner's failing line
            linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
            try:
                yield label, compile(source, filename, "exec")
            except SyntaxError as e:
                problems.append(f"{label}: SyntaxError: {e}")
        return
    source = _strip_magics(path.read_text(encoding="utf-8"))
    try:
        tree = ast.parse(source, filename=path.name)
    except SyntaxError as e:
        problems.append(f"{path.name}: SyntaxError: {e}")
        return
    for node in tree.body:
        yield f"{path.name} line {node.lineno}", compile(ast.Module(body=[node], type_ignores=[]), path.name, "exec")
