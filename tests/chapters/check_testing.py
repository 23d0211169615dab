"""What every chapter's check tests share: run one check on one function, and assert that it passes, or that it
fails with the expected hint."""

from __future__ import annotations

from mechinterp.autograder.chapters import get_chapter
from mechinterp.autograder.harness import run_check


class CheckTester:
    def __init__(self, slug: str):
        self.chapter = get_chapter(slug)
        self.checks = self.chapter.checks()

    def grade(self, name: str, fn) -> tuple[bool, str]:
        result = run_check(self.checks[name], fn)
        return result.passed, result.message

    def passes(self, name: str, fn) -> None:
        passed, message = self.grade(name, fn)
        assert passed, message

    def fails(self, name: str, fn, hint: str) -> None:
        passed, message = self.grade(name, fn)
        assert not passed, f"a wrong {name} passed"
        assert hint in message, f"expected hint {hint!r}, got {message!r}"

    def reference_passes(self, reference: dict) -> None:
        for name in self.checks:
            self.passes(name, reference[name])
