"""How long every check takes, graded on the reference (best of three runs, once its cached inputs are built),
and the same with learner calls in-process instead of in forked children (MECHINTERP_ISOLATE=0): the cost of
isolation, as a ratio measured in the same run. A timing, so a benchmark and not a test (a busy machine would
fail it). Run: python bench/check_speed.py"""

from __future__ import annotations

import os
import time

from mechinterp.autograder.build import reference_namespace
from mechinterp.autograder.chapters import chapters
from mechinterp.autograder.harness import run_check

LIMIT_S = 1.0  # what a learner should wait at most for one check


def _best(check, fn, isolate: str, repeats: int = 3) -> float:
    os.environ["MECHINTERP_ISOLATE"] = isolate
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = run_check(check, fn)
        best = min(best, time.perf_counter() - start)
        assert result.passed, f"{check.exercise}: {result.message}"
    return best


def main() -> None:
    for slug, chapter in chapters().items():
        reference = reference_namespace(chapter)
        rows = []
        for name, check in chapter.checks().items():
            run_check(check, reference[name])  # builds cached inputs
            rows.append((name, _best(check, reference[name], "1"), _best(check, reference[name], "0")))
        isolated, inline = sum(r[1] for r in rows), sum(r[2] for r in rows)
        slow = [f"{n} {t:.2f} s" for n, t, _ in rows if t >= LIMIT_S]
        print(f"{slug:22s} all checks {isolated:5.2f} s isolated, {inline:5.2f} s in-process "
              f"(x{isolated / max(inline, 1e-9):.1f}); slowest {max(rows, key=lambda r: r[1])[0]} "
              f"{max(r[1] for r in rows):.2f} s" + (f"; over {LIMIT_S} s: {', '.join(slow)}" if slow else ""))


if __name__ == "__main__":
    main()
