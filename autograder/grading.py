"""The public grading API: `grade(chapter, learner)` and `check(chapter, exercise, fn)`."""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

from mechinterp.autograder.chapters import UnknownName, get_chapter
from mechinterp.autograder.harness import CheckFailure, Report, run_check


def _namespace(learner: ModuleType | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(learner, ModuleType):
        return vars(learner)
    if isinstance(learner, Mapping):
        return learner
    raise TypeError("learner must be a module, a dict or globals()")


def grade(chapter: str, learner: ModuleType | Mapping[str, Any]) -> Report:
    """Grade every exercise of `chapter` found in `learner`; one failure never stops the others."""
    ch = get_chapter(chapter)
    namespace = _namespace(learner)
    report = Report(ch.slug)
    for name, chk in ch.checks().items():
        report.results.append(run_check(chk, namespace.get(name)))
    return report


def check(chapter: str, exercise: str, fn: Any) -> None:
    """Check one exercise: prints a line when it passes, raises CheckFailure (an AssertionError) with a hint
    when it does not. This is what the notebook's check cells (and nbgrader's graded cells) call."""
    ch = get_chapter(chapter)
    checks = ch.checks()
    if exercise not in checks:
        raise UnknownName(f"chapter {ch.slug!r} has no exercise {exercise!r}; exercises: {', '.join(checks)}")
    result = run_check(checks[exercise], fn)
    if not result.passed:
        raise CheckFailure(f"{exercise}: {result.message}")
    print(f"✓ {exercise}: passed ({result.points}/{result.max_points} points, {result.seconds:.2f} s)")
