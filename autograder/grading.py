"""The public grading API: `grade(chapter, learner)` and `check(chapter, exercise, fn)`."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from mechinterp.autograder import isolation
from mechinterp.autograder.chapters import UnknownName, get_chapter
from mechinterp.autograder.harness import CheckFailure, Report, Result, run_check
from mechinterp.autograder.learner import load_learner


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


@dataclass
class FileGrade:
    """A learner's file graded: the report, or None with `error` when loading or grading stopped the process
    that did it; `problems` seen while loading; what the learner's code printed (when graded in a child)."""
    report: Report | None
    problems: list[str] = field(default_factory=list)
    output: str = ""
    error: str = ""


def _load_and_grade(slug: str, path: Path) -> dict:
    namespace, problems = load_learner(path)
    return {"problems": problems, "results": [dict(vars(r)) for r in grade(slug, namespace).results]}


def grade_file(slug: str, path: Path) -> FileGrade:
    """Load a learner's notebook or .py file and grade it. Where isolation is available both happen in a child
    process (each learner call then in a child of its own), so top-level learner code cannot end the caller."""
    if not isolation.available():
        namespace, problems = load_learner(path)
        return FileGrade(grade(slug, namespace), problems)
    outcome = isolation.run_isolated(functools.partial(_load_and_grade, slug, path), cpu_seconds=3600, nested=True)
    if outcome.status != "ok":
        reason = outcome.message if outcome.status == "died" else f"{outcome.kind}: {outcome.message}"
        return FileGrade(None, output=outcome.output, error=reason)
    results = [Result(**r) for r in outcome.value["results"]]
    return FileGrade(Report(slug, results), outcome.value["problems"], outcome.output)
