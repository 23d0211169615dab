"""Chapter 05 on GPT-2 small: Wang et al.'s headline numbers through the chapter's own code. Online only — skipped,
with the reason, when the Hugging Face hub cannot be reached (CI and the course's offline default)."""

from __future__ import annotations

import pytest


def test_gpt2_small_reproduces_the_ioi_headlines():
    from mechinterp.course.toolkit.hub import _in_local_cache, _reachable

    reason = None if _in_local_cache("gpt2") else _reachable("gpt2")
    if reason is not None:
        pytest.skip(f"the Hugging Face hub is not reachable: {reason}")
    from mechinterp.course.toolkit.findings import format_findings
    from mechinterp.solutions.ioi import findings_gpt2

    found = findings_gpt2("cpu")
    print(format_findings("ioi (GPT-2 small)", found))
    for f in found:
        assert f.passed, f"{f.name}: ours {f.ours:.4g}, required {f.bound} (paper: {f.paper})"
