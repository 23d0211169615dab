"""What every chapter's check tests share: run one check on one function, and assert that it passes, or that it
fails with the expected hint."""

from __future__ import annotations

from mechinterp.autograder import replay
from mechinterp.autograder.chapters import get_chapter
from mechinterp.autograder.harness import run_check

_PACKS: dict[str, dict] = {}  # one answer pack per chapter per session (the student kit's, recorded here)

# Exercises whose check feeds the learner's own output to the reference, so that an answer pack cannot hold
# every value the check needs: the student kit grades them only with the full package (measured by the
# replay comparison below, which fails if one of these does replay, or if another one does not).
LIVE_ONLY: dict[str, set[str]] = {
    "superposition": {"train_toy_models"},  # evaluates the learner's trained W, b with the reference forward pass
}


def pack(slug: str) -> dict:
    if slug not in _PACKS:
        _PACKS[slug] = replay.record(slug)
    return _PACKS[slug]


class CheckTester:
    """Grades live and, for the same function, from the chapter's answer pack (the student kit): both verdicts
    and both hints must agree, for the reference, every mutant and every correct alternative."""

    def __init__(self, slug: str):
        self.chapter = get_chapter(slug)
        self.checks = self.chapter.checks()

    def grade(self, name: str, fn) -> tuple[bool, str]:
        result = run_check(self.checks[name], fn)
        with replay.replaying(self.chapter.slug, pack(self.chapter.slug)):
            replayed = run_check(self.checks[name], fn)
        live_only = name in LIVE_ONLY.get(self.chapter.slug, set())
        if "graded only with the full course package" in replayed.message:
            assert live_only, f"{name}: not replayable from the answer pack ({replayed.message})"
        elif not (live_only and replayed.passed == result.passed):
            assert (replayed.passed, replayed.message) == (result.passed, result.message), \
                f"{name}: live {result.passed} {result.message!r}, replayed {replayed.passed} {replayed.message!r}"
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
