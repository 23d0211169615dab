"""Every check, graded on the reference, runs well under a second once its inputs are built (the first call
builds cached inputs such as the tiny random models). Timed as the best of three runs: the first test after a
fresh install also pays for cold caches, which is not the check's cost."""

from __future__ import annotations

import time

import pytest
from check_testing import CheckTester
from mechinterp.autograder.build import reference_namespace
from mechinterp.autograder.chapters import chapters

LIMIT_S = 1.0


@pytest.mark.parametrize("slug", list(chapters()))
def test_every_check_is_fast(slug):
    tester = CheckTester(slug)
    reference = reference_namespace(tester.chapter)
    slow = {}
    for name in tester.checks:
        tester.passes(name, reference[name])
        seconds = min(_timed(tester, name, reference[name]) for _ in range(3))
        if seconds >= LIMIT_S:
            slow[name] = round(seconds, 2)
    assert not slow, f"checks slower than {LIMIT_S} s: {slow}"


def _timed(tester: CheckTester, name: str, fn) -> float:
    start = time.perf_counter()
    tester.passes(name, fn)
    return time.perf_counter() - start
