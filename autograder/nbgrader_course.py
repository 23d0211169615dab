"""Lay out an nbgrader course: `nbgrader_config.py` plus `source/<NN_slug>/<NN_slug>.ipynb` per chapter.

After `mechinterp nbgrader init COURSE_DIR` an instructor uses the standard nbgrader commands, run from
COURSE_DIR: `nbgrader generate_assignment 01_superposition`, collect submissions into
`submitted/<student>/01_superposition/`, `nbgrader autograde 01_superposition`,
`nbgrader generate_feedback 01_superposition`.
"""

from __future__ import annotations

import functools
import re
import secrets
from pathlib import Path

import nbformat
from mechinterp.autograder.build import nbgrader_notebook
from mechinterp.autograder.chapters import chapters, get_chapter

CONFIG_TEMPLATE = '''\
# nbgrader configuration written by `mechinterp nbgrader init`.
import os

c = get_config()  # noqa: F821

# Paths relative to this file: the course folder can be moved or copied and still writes into itself.
here = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = {course_id!r}
c.CourseDirectory.root = here
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(here, "gradebook.db")

# Chapters train small models while they are graded: allow each cell up to {timeout} s.
# (Execute.timeout, not ExecutePreprocessor.timeout: a user-level Execute.timeout would override the latter.)
c.Execute.timeout = {timeout}
c.Execute.interrupt_on_timeout = True

# A learner who deletes a graded check cell still gets it graded: nbgrader puts it back from the source.
c.OverwriteCells.add_missing_cells = True

c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}}
{hidden}{experiments}
# After a submission has run, every exercise is graded again in a fresh process, outside the kernel (a student's
# cell could patch the grader inside it): a check cell keeps its points only if it passes in both.
from mechinterp.autograder.nbgrader_course import RegradeOutsideKernel, autograde_steps  # noqa: E402

c.Autograde.autograde_preprocessors = autograde_steps(RegradeOutsideKernel)
'''

HIDDEN_CASES = '''
# Every check grades twice here: on the cases a student's in-notebook `check(...)` used, then on fresh cases drawn
# with this course's own seed (MECHINTERP_HIDDEN_SEED), which no student kit's answer pack holds; a failure on
# the fresh cases says so in the feedback. Keep the number private. Delete the line to grade on the first only.
os.environ.setdefault("MECHINTERP_HIDDEN_SEED", "{seed}")
'''

SKIP_EXPERIMENTS = '''
# Autograde runs what is graded (setup, exercise and check cells) and skips the chapters' experiment cells
# (training runs, sweeps, figures): a submission costs seconds, not minutes, and a learner's experiment that
# hangs or kills its kernel cannot cost them graded points. Delete these lines to run the experiments too.
from mechinterp.autograder.nbgrader_course import SkipExperiments  # noqa: E402
from nbgrader.preprocessors import (  # noqa: E402
    CheckCellMetadata, ClearOutput, DeduplicateIds, OverwriteCells, OverwriteKernelspec)

c.Autograde.sanitize_preprocessors = [ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells,
                                      SkipExperiments, CheckCellMetadata]
'''


@functools.cache
def _skip_experiments_preprocessor():
    from nbgrader.preprocessors import NbGraderPreprocessor

    class SkipExperiments(NbGraderPreprocessor):
        """Blank every code cell tagged `experiment` that nbgrader neither grades nor treats as a solution."""

        def preprocess_cell(self, cell, resources, index):
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "code" and "experiment" in cell.metadata.get("tags", []) \
                    and not (meta.get("grade") or meta.get("solution") or meta.get("locked")):
                cell.source = "# experiment cell: skipped at grading (it is not graded)"
                cell.outputs = []
            return cell, resources

    return SkipExperiments


@functools.cache
def _regrade_preprocessor():
    from nbgrader.preprocessors import NbGraderPreprocessor

    class RegradeOutsideKernel(NbGraderPreprocessor):
        """After Execute: grade the executed submission again in a fresh process (`mechinterp.autograder.regrade`)
        and turn every check cell that passed in the kernel but fails there into a failed cell with the hint."""

        def preprocess(self, nb, resources):
            checks = [c for c in nb.cells if c.cell_type == "code" and "check" in c.metadata.get("tags", [])
                      and c.metadata.get("nbgrader", {}).get("grade")]
            if not checks:
                return nb, resources
            verdicts = _regrade_verdicts(nb, resources)
            for cell in checks:
                exercise = cell.metadata["nbgrader"]["grade_id"].removeprefix("check_")
                verdict = verdicts.get(exercise, {"passed": False, "message": verdicts.get(
                    "_error", "this exercise was not graded outside the kernel")})
                if verdict["passed"] or any(o.get("output_type") == "error" for o in cell.outputs):
                    continue
                text = f"{exercise}: {verdict['message']} [graded again outside your notebook's kernel]"
                cell.outputs.append(nbformat.v4.new_output("error", ename="CheckFailure", evalue=text,
                                                           traceback=[f"✗ {text}"]))
            return nb, resources

    return RegradeOutsideKernel


def autograde_steps(after_execute) -> list:
    """nbgrader's own autograde preprocessors, with `after_execute` inserted right after `Execute`."""
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute

    steps = list(Autograde.class_traits()["autograde_preprocessors"].default())
    at = steps.index(Execute) + 1
    return [*steps[:at], after_execute, *steps[at:]]


def _regrade_verdicts(nb, resources) -> dict:
    """{exercise: {"passed", "message"}} from grading `nb`'s code in a fresh process ({"_error": why} if none)."""
    import json
    import subprocess
    import sys
    import tempfile

    copy = nbformat.from_dict(json.loads(nbformat.writes(nb)))
    for cell in copy.cells:  # cells the student added ran in the kernel in full: run them in full here too
        tags = cell.metadata.setdefault("tags", [])
        if cell.cell_type == "code" and not {"setup", "exercise", "check", "experiment"} & set(tags):
            tags.append("setup")
    name = resources.get("nbgrader", {}).get("notebook") or ""
    named = [m.group(1) for c in nb.cells if "check" in c.metadata.get("tags", [])
             for m in [re.search(r"check\(\s*['\"]([\w-]+)['\"]", c.source)] if m]
    try:
        slug = get_chapter(named[0] if named else name).slug
    except Exception as e:  # noqa: BLE001 - a renamed notebook with no check cell naming its chapter
        return {"_error": f"could not tell which chapter this is ({e})"}
    cwd = resources.get("metadata", {}).get("path") or None  # where the kernel ran (the submission's folder)
    with tempfile.TemporaryDirectory() as tmp:
        path, out = Path(tmp) / f"{name or 'submission'}.ipynb", Path(tmp) / "verdicts.json"
        nbformat.write(copy, path)
        proc = subprocess.run([sys.executable, "-m", "mechinterp.autograder.regrade", slug, str(path), str(out)],
                              capture_output=True, text=True, cwd=cwd or tmp, timeout=3600)
        if proc.returncode != 0 or not out.exists():
            return {"_error": f"grading outside the kernel failed: {proc.stderr.strip()[-300:]}"}
        data = json.loads(out.read_text())
    if "error" in data:
        return {"_error": f"loading your notebook outside the kernel stopped the grader ({data['error']})"}
    return data["results"]


def __getattr__(name: str):
    if name == "SkipExperiments":  # built on first use: importing nbgrader costs ~2 s
        return _skip_experiments_preprocessor()
    if name == "RegradeOutsideKernel":
        return _regrade_preprocessor()
    raise AttributeError(name)


def init_course(course_dir: Path, chapter_names: list[str] | None = None, course_id: str = "mechinterp",
                timeout: int = 600, run_experiments: bool = False, hidden_cases: bool = True) -> list[Path]:
    """Write the config and one source notebook per chapter; returns the notebooks written. Unless
    `run_experiments`, autograde skips the experiment cells (see SKIP_EXPERIMENTS); unless not `hidden_cases`,
    every check also grades fresh cases drawn with a seed chosen here (see HIDDEN_CASES)."""
    root = Path(course_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    hidden = HIDDEN_CASES.format(seed=secrets.randbelow(999_999) + 1) if hidden_cases else ""
    config = CONFIG_TEMPLATE.format(course_id=course_id, timeout=timeout, hidden=hidden,
                                    experiments="" if run_experiments else SKIP_EXPERIMENTS)
    (root / "nbgrader_config.py").write_text(config, encoding="utf-8")
    selected = [get_chapter(n) for n in chapter_names] if chapter_names else list(chapters().values())
    written = []
    for ch in selected:
        path = root / "source" / ch.stem / f"{ch.stem}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nbgrader_notebook(ch), path)
        written.append(path)
    return written
