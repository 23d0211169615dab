"""Hint quality on the course's own mutant set, counted as the grading audit counts it.

    python bench/hint_quality.py [--json FILE]

Runs the chapter check tests (`tests/chapters`) with a stand-in for their `CheckTester` that grades every planted
mistake once, live, and records the verdict and the message instead of asserting. Each mutant is then:
- accepted   the check passed it (a false acceptance);
- named      the message contains the hint its test expects, and that hint names a mistake;
- generic    the message only says that, and where, the output differs ("largest error at index",
             "expected value times X", a shape or a value), not which mistake;
- misleading anything else: the message names a mistake, but not this one.
Exercises the grader does not know (run against an older checkout, e.g. `PYTHONPATH` pointing at it) count as
`absent`. Correct alternatives and references are not graded here (the test suite requires them to pass).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import types
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RECORDS: list[dict] = []
GENERIC = re.compile(r"largest (absolute )?error|differs|times the expected|expected value times|expected [-\d.e]+ *$|"
                     r"^[\w ]+ [-\d.e]+, expected [-\d.e]+ \([^)]*\)$|expected shape|got shape", re.IGNORECASE)


class RecordingTester:
    """What the chapter test modules use as `CheckTester`: mutants are graded and recorded, nothing asserted."""

    def __init__(self, slug: str):
        from mechinterp.autograder.chapters import get_chapter

        self.slug = slug
        try:
            self.chapter = get_chapter(slug)
            self.checks = self.chapter.checks()
        except Exception:  # an older checkout without this chapter
            self.chapter, self.checks = types.SimpleNamespace(slug=slug), {}

    def grade(self, name: str, fn) -> tuple[bool, str]:
        from mechinterp.autograder.harness import run_check

        result = run_check(self.checks[name], fn)
        return result.passed, result.message

    def passes(self, name: str, fn) -> None:
        pass

    def reference_passes(self, reference: dict) -> None:
        pass

    def fails(self, name: str, fn, hint: str) -> None:
        if name not in self.checks:
            RECORDS.append({"chapter": self.slug, "exercise": name, "hint": hint, "kind": "absent"})
            return
        passed, message = self.grade(name, fn)
        RECORDS.append({"chapter": self.slug, "exercise": name, "hint": hint, "passed": passed, "message": message,
                        "kind": classify(passed, message, hint)})


def classify(passed: bool, message: str, hint: str) -> str:
    if passed:
        return "accepted"
    if hint in message:
        return "generic" if GENERIC.search(hint) else "named"
    return "generic" if GENERIC.search(message) else "misleading"


class Plugin:
    def pytest_configure(self, config):
        fake = types.ModuleType("check_testing")
        fake.CheckTester = RecordingTester
        sys.modules["check_testing"] = fake


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", default=None, help="write every record here")
    args = p.parse_args()
    pytest.main([str(ROOT / "tests" / "chapters"), "-q", "-p", "no:cacheprovider",
                 "--deselect", str(ROOT / "tests/chapters/test_ioi_gpt2_online.py")], plugins=[Plugin()])
    counts = Counter((r["chapter"], r["kind"]) for r in RECORDS)
    kinds = ["named", "generic", "misleading", "accepted", "absent"]
    print(f"\n{'chapter':22s}" + "".join(f"{k:>11s}" for k in kinds))
    for chapter in sorted({r["chapter"] for r in RECORDS}):
        print(f"{chapter:22s}" + "".join(f"{counts[chapter, k]:11d}" for k in kinds))
    total = Counter(r["kind"] for r in RECORDS)
    print(f"{'all':22s}" + "".join(f"{total[k]:11d}" for k in kinds))
    for r in RECORDS:
        if r["kind"] in ("misleading", "accepted", "generic"):
            print(f"  {r['kind']:10s} {r['chapter']}.{r['exercise']}: expected {r['hint']!r}, got "
                  f"{r.get('message', '')[:150]!r}")
    if args.json:
        Path(args.json).write_text(json.dumps(RECORDS, indent=1))


if __name__ == "__main__":
    main()
