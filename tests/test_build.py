"""The three aligned parts of every exercise, and the notebooks built from the one chapter source."""

from __future__ import annotations

import ast
import inspect
import json
import textwrap

import nbformat
import pytest
from mechinterp.autograder.build import (
    BEGIN,
    END,
    exercise_of,
    nbgrader_notebook,
    read_source,
    solution_notebook,
    student_notebook,
    tags,
)
from mechinterp.autograder.chapters import chapters, get_chapter

CHAPTERS = list(chapters().values())


def _signature_and_doc(source: str, name: str) -> tuple[str, str]:
    fn = next(n for n in ast.walk(ast.parse(textwrap.dedent(source))) if isinstance(n, ast.FunctionDef)
              and n.name == name)
    return ast.unparse(fn.args) + " -> " + (ast.unparse(fn.returns) if fn.returns else ""), ast.get_docstring(fn)


@pytest.mark.parametrize("ch", CHAPTERS, ids=lambda c: c.slug)
def test_every_exercise_has_stub_reference_and_check(ch):
    nb = read_source(ch)
    stubs = {exercise_of(c): c for c in nb.cells if "exercise" in tags(c)}
    checked = [exercise_of(c) for c in nb.cells if "check" in tags(c)]
    checks = ch.checks()
    assert stubs, "a chapter without exercises"
    assert set(stubs) == set(checks), f"stubs vs checks: {set(stubs) ^ set(checks)}"
    assert sorted(checked) == sorted(checks), "each exercise has exactly one check cell"
    solutions = ch.solutions()
    for name, cell in stubs.items():
        ref = getattr(solutions, name, None)
        assert ref is not None, f"no reference for {name}"
        assert _signature_and_doc(cell.source, name) == _signature_and_doc(inspect.getsource(ref), name), (
            f"{name}: the stub's signature/docstring differ from the reference's")
        assert "raise NotImplementedError()" in cell.source


@pytest.mark.parametrize("ch", CHAPTERS, ids=lambda c: c.slug)
def test_each_check_cell_follows_its_exercise(ch):
    cells = [c for c in read_source(ch).cells if c.cell_type == "code"]
    seen = set()
    for c in cells:
        if "exercise" in tags(c):
            seen.add(exercise_of(c))
        if "check" in tags(c):
            assert exercise_of(c) in seen, f"check for {exercise_of(c)} comes before its exercise"


@pytest.mark.parametrize("ch", CHAPTERS, ids=lambda c: c.slug)
def test_notebook_variants(ch):
    student, solution, source = student_notebook(ch), solution_notebook(ch), nbgrader_notebook(ch)
    assert len(student.cells) == len(solution.cells) == len(source.cells)
    for s, sol, src in zip(student.cells, solution.cells, source.cells, strict=True):
        assert "nbgrader" not in s.metadata and "nbgrader" not in sol.metadata
        if "exercise" in tags(s):
            assert "raise NotImplementedError()" not in sol.source
            assert BEGIN in src.source and END in src.source
            assert src.metadata.nbgrader["solution"] and not src.metadata.nbgrader["grade"]
        elif "check" in tags(s):
            meta = src.metadata.nbgrader
            assert meta["grade"] and meta["locked"] and meta["points"] == ch.checks()[exercise_of(s)].points
            assert meta["schema_version"] == 3
        else:
            assert s.source == sol.source == src.source
    # building twice gives byte-identical notebooks (stable cell ids, no timestamps)
    assert nbformat.writes(student_notebook(ch)) == nbformat.writes(student)


def test_untouched_student_notebook_scores_zero(tmp_path):
    from mechinterp.autograder import grade
    from mechinterp.autograder.learner import load_learner

    path = tmp_path / "01_superposition.ipynb"
    nbformat.write(student_notebook(get_chapter("superposition")), path)
    namespace, problems = load_learner(path)
    assert not problems
    report = grade("superposition", namespace)
    assert report.score == 0 and report.max_score == 18


@pytest.mark.slow
@pytest.mark.parametrize("slug", list(chapters()))
def test_executed_solution_notebook(built, slug):
    """The solution notebook runs top to bottom, every check cell passes, figures are drawn."""
    nb = json.loads(built[slug].solution.read_text())
    errors, passed, figures = [], 0, 0
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if out["output_type"] == "error":
                errors.append(out["ename"])
            text = "".join(out.get("text", ""))
            passed += text.count("✓ ")
            figures += "image/png" in out.get("data", {})
    assert not errors
    assert passed == len(get_chapter(slug).checks())
    assert figures >= 5
    print(f"build {slug}: {built[slug].seconds:.1f} s")


def test_reference_namespace_leaves_global_torch_state_alone():
    import torch
    from mechinterp.autograder.build import reference_namespace

    assert torch.is_grad_enabled()
    for ch in CHAPTERS:
        reference_namespace(ch)
        assert torch.is_grad_enabled(), f"{ch.slug}'s setup switched gradients off for the whole process"


def test_an_unfinished_exercise_is_one_line_in_a_kernel_and_still_an_error():
    """An experiment cell that calls a stub shows one line naming the exercise (not a traceback), and the cell
    still fails (nbgrader scores it 0); other errors keep their traceback."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import mechinterp.autograder"),
                nbformat.v4.new_code_cell("def copy_score(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"),
                nbformat.v4.new_code_cell("copy_score(1)"),
                nbformat.v4.new_code_cell("raise NotImplementedError('a library said so')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=120, allow_errors=True).execute()
    (stub_error,) = nb.cells[2].outputs
    assert stub_error.output_type == "error" and stub_error.ename == "NotImplementedError"
    assert len(stub_error.traceback) == 1 and "copy_score is not written yet" in stub_error.traceback[0]
    (other,) = nb.cells[3].outputs
    assert other.output_type == "error" and len(other.traceback) > 1
