"""Check harness, per-chapter checks, notebook builder, nbgrader integration and the CLI.

    from mechinterp.autograder import grade, check
    report = grade("superposition", globals())      # or a module, or a dict
    check("superposition", "feature_importance", feature_importance)
"""

from __future__ import annotations

from mechinterp.autograder.grading import check, grade
from mechinterp.autograder.harness import CheckFailure, Report, Result

__all__ = ["check", "grade", "CheckFailure", "Report", "Result"]
