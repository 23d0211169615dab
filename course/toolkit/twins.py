"""Marks toolkit functions that compute an exercise's answer in full, so the grader refuses them for it.

The toolkit needs some of the chapters' small computations for its own procedures (e.g. the IOI circuit search
needs a logit difference). A learner may use those procedures anywhere, but calling such a copy inside the very
exercise it answers is not writing the exercise: while that exercise is checked, the harness makes the marked
function raise, and the learner is told which helper answered it.
"""

from __future__ import annotations

from collections.abc import Callable


def exercise_twin(chapter: str, exercise: str) -> Callable:
    """Decorator: this function is a complete implementation of `exercise` of `chapter`."""

    def mark(fn: Callable) -> Callable:
        fn.__exercise_twin__ = (chapter, exercise)
        return fn

    return mark
