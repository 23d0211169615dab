"""Lay out an nbgrader course: `nbgrader_config.py` plus `source/<NN_slug>/<NN_slug>.ipynb` per chapter.

After `mechinterp nbgrader init COURSE_DIR` an instructor uses the standard nbgrader commands, run from
COURSE_DIR: `nbgrader generate_assignment 01_superposition`, collect submissions into
`submitted/<student>/01_superposition/`, `nbgrader autograde 01_superposition`,
`nbgrader generate_feedback 01_superposition`.
"""

from __future__ import annotations

import functools
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
{hidden}{experiments}'''

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


def __getattr__(name: str):
    if name == "SkipExperiments":  # built on first use: importing nbgrader costs ~2 s
        return _skip_experiments_preprocessor()
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
