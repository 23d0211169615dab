"""Grade a submitted notebook again, outside the Jupyter kernel that ran it (nbgrader autograde).

In nbgrader, a notebook's check cells grade inside the same kernel as the student's own cells, so a student's
cell could patch the grader there before the check cells run. After nbgrader has executed a submission, the
`RegradeOutsideKernel` step (`nbgrader_course`) runs this module in a fresh Python process: it loads the
submission's code cells the way `mechinterp check` does (each in turn, the grader's and torch's state restored
after each, so nothing they patch survives) and grades every exercise, each learner call again in its own
forked child. A check cell then keeps its points only if it passed in the kernel AND here.

    python -m mechinterp.autograder.regrade CHAPTER NOTEBOOK.ipynb OUT.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def regrade(slug: str, notebook: Path) -> dict:
    """{"results": {exercise: {"passed": bool, "message": str}}} or {"error": why no report came back}."""
    import matplotlib

    matplotlib.use("Agg")
    from mechinterp.autograder.grading import grade_file

    graded = grade_file(slug, notebook)
    if graded.report is None:
        return {"error": graded.error}
    return {"results": {r.exercise: {"passed": r.passed, "message": r.message} for r in graded.report.results}}


def main(argv: list[str] | None = None) -> None:
    slug, notebook, out = argv if argv is not None else sys.argv[1:]
    Path(out).write_text(json.dumps(regrade(slug, Path(notebook))))


if __name__ == "__main__":
    main()
