"""Build notebooks from the one chapter source (DESIGN §3): student, executed solution, nbgrader source.

The chapter source (`course/chapters/NN_slug.py`, jupytext percent format) tags its cells:
- `setup`: imports and constants; `experiment`: runs the learner's code (training, figures);
- `exercise`: one function whose body is the stub `# YOUR CODE HERE` / `raise NotImplementedError()`;
- `check`: `check("<chapter>", "<exercise>", <exercise>)`, graded by nbgrader.
Reference bodies come from `mechinterp.solutions.<slug>`, injected where the stub stands.
"""

from __future__ import annotations

import ast
import copy
import inspect
import os
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat
from mechinterp.autograder.chapters import Chapter, get_chapter
from nbformat import NotebookNode

STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def tags(cell: NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def exercise_of(cell: NotebookNode) -> str | None:
    """The exercise an `exercise` cell defines (its one top-level def) or a `check` cell checks."""
    if "exercise" in tags(cell):
        defs = [n for n in ast.parse(cell.source).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        if len(defs) != 1:
            raise ValueError(f"an exercise cell must define exactly one function:\n{cell.source[:200]}")
        return defs[0].name
    if "check" in tags(cell):
        (stmt,) = ast.parse(cell.source).body
        call = stmt.value  # check("chapter", "exercise", exercise)
        return call.args[1].value
    return None


def read_source(ch: Chapter) -> NotebookNode:
    nb = jupytext.read(ch.source, fmt="py:percent")
    nb.metadata.pop("jupytext", None)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    for cell in nb.cells:
        cell.metadata.pop("lines_to_next_cell", None)
        cell.metadata.pop("title", None)
    return nb


def reference_body(ch: Chapter, name: str) -> str:
    """The body of the reference function after its docstring, dedented."""
    func = getattr(ch.solutions(), name)
    source = textwrap.dedent(inspect.getsource(func))
    node = ast.parse(source).body[0]
    body = node.body
    if isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        first_line = body[0].end_lineno  # the docstring's last line
    else:
        first_line = node.body[0].lineno - 1
    lines = source.splitlines()[first_line : node.end_lineno]
    return textwrap.dedent("\n".join(lines)).strip("\n")


def inject(cell_source: str, body: str, markers: bool) -> str:
    """Replace the stub lines of an exercise cell with `body` (wrapped in nbgrader markers if asked)."""
    lines = cell_source.splitlines()
    for i in range(len(lines) - 1):
        if lines[i].strip() == STUB[0] and lines[i + 1].strip() == STUB[1]:
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            new = textwrap.indent(body, indent).splitlines()
            if markers:
                new = [indent + BEGIN, *new, indent + END]
            return "\n".join(lines[:i] + new + lines[i + 2 :])
    raise ValueError(f"no stub (`{STUB[0]}` then `{STUB[1]}`) in exercise cell:\n{cell_source[:200]}")


def student_notebook(ch: Chapter) -> NotebookNode:
    return _normalise(read_source(ch))


def solution_notebook(ch: Chapter) -> NotebookNode:
    nb = read_source(ch)
    for cell in nb.cells:
        if "exercise" in tags(cell):
            cell.source = inject(cell.source, reference_body(ch, exercise_of(cell)), markers=False)
    return _normalise(nb)


def nbgrader_notebook(ch: Chapter) -> NotebookNode:
    """Reference bodies between nbgrader markers; check cells graded and locked, points from the checks."""
    nb = read_source(ch)
    checks = ch.checks()
    for cell in nb.cells:
        name = exercise_of(cell)
        if "exercise" in tags(cell):
            cell.source = inject(cell.source, reference_body(ch, name), markers=True)
            cell.metadata["nbgrader"] = {"grade": False, "grade_id": name, "locked": False,
                                         "schema_version": 3, "solution": True, "task": False}
        elif "check" in tags(cell):
            cell.metadata["nbgrader"] = {"grade": True, "grade_id": f"check_{name}", "locked": True,
                                         "points": checks[name].points, "schema_version": 3,
                                         "solution": False, "task": False}
    return _normalise(nb)


def reference_namespace(ch: Chapter) -> dict:
    """Run the solution notebook's setup and exercise cells (not experiments) in a fresh namespace: what a
    learner with every exercise right would have in their kernel."""
    import torch

    namespace: dict = {"__name__": f"solution_{ch.slug}"}
    grad_mode = torch.is_grad_enabled()
    try:
        for i, cell in enumerate(solution_notebook(ch).cells):
            if cell.cell_type == "code" and {"setup", "exercise"} & set(tags(cell)):
                exec(compile(cell.source, f"<{ch.stem} solution cell {i}>", "exec"), namespace)
    finally:
        torch.set_grad_enabled(grad_mode)  # a setup cell may switch gradients off for its notebook
    return namespace


def _normalise(nb: NotebookNode) -> NotebookNode:
    nb = copy.deepcopy(nb)
    nb.nbformat, nb.nbformat_minor = 4, 5
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{cell.cell_type[:2]}-{i:03d}"  # stable ids: rebuilding gives the same file
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.validate(nb)
    return nb


def execute(nb: NotebookNode, cwd: Path, timeout: int = 900) -> NotebookNode:
    """Run a notebook top to bottom with the current interpreter's kernel."""
    from nbclient import NotebookClient

    nb = copy.deepcopy(nb)
    # figures must be captured inline even where the caller set a non-interactive MPLBACKEND (e.g. Agg)
    env = {**os.environ, "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    client.execute(env=env)
    return nb


@dataclass
class Built:
    chapter: str
    student: Path
    solution: Path | None
    nbgrader: Path
    seconds: float
    site: Path | None = None


def build(chapter: str, out: Path, execute_solution: bool = True) -> Built:
    """Write student/, solution/ (executed) and nbgrader/source/<stem>/ notebooks for one chapter."""
    start = time.perf_counter()
    ch = get_chapter(chapter)
    out = Path(out)
    paths = {
        "student": out / "student" / f"{ch.stem}.ipynb",
        "solution": out / "solution" / f"{ch.stem}.ipynb",
        "nbgrader": out / "nbgrader" / "source" / ch.stem / f"{ch.stem}.ipynb",
    }
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(student_notebook(ch), paths["student"])
    nbformat.write(nbgrader_notebook(ch), paths["nbgrader"])
    solution = site = None
    if execute_solution:
        executed = execute(solution_notebook(ch), cwd=paths["solution"].parent)
        nbformat.write(executed, paths["solution"])
        solution = paths["solution"]
        site = out / "site" / f"{ch.stem}.ipynb"
        site.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(site_notebook(ch, executed), site)
    return Built(ch.slug, paths["student"], solution, paths["nbgrader"], time.perf_counter() - start, site)


def site_notebook(ch: Chapter, executed: NotebookNode) -> NotebookNode:
    """The website's page: the executed solution notebook in the STUDENT's view. Each exercise cell shows its
    stub; the reference body follows in a collapsed "Reference solution" block the reader opens on purpose."""
    import html

    nb = copy.deepcopy(executed)
    student = student_notebook(ch)
    cells = []
    for cell, plain in zip(nb.cells, student.cells, strict=True):
        if cell.cell_type == "code" and "exercise" in tags(cell):
            solution_source = cell.source
            cell.source = plain.source
            cells.append(cell)
            cells.append(nbformat.v4.new_markdown_cell(
                "<details class=\"reference-solution\"><summary>Reference solution (try the exercise first)</summary>"
                f"<pre><code class=\"language-python\">{html.escape(solution_source)}</code></pre></details>"))
        else:
            cells.append(cell)
    nb.cells = cells
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{cell.cell_type[:2]}-{i:03d}"
    nbformat.validate(nb)
    return nb
