"""Findings are facts: the chapter's reference experiments, rerun, against the paper's values.

The bounds live with each Finding (solutions/<chapter>.py) and are printed by `mechinterp reproduce`."""

from __future__ import annotations

import pytest
from mechinterp.autograder.chapters import chapters
from mechinterp.solutions.findings import format_findings

pytestmark = pytest.mark.slow
_CACHE: dict = {}


def _findings(slug):
    if slug not in _CACHE:
        _CACHE[slug] = chapters()[slug].solutions().findings("cpu")
        print(format_findings(slug, _CACHE[slug]))
    return _CACHE[slug]


SUPERPOSITION_FINDINGS = 12


@pytest.mark.parametrize("i", range(SUPERPOSITION_FINDINGS))
def test_superposition_finding(i):
    findings = _findings("superposition")
    assert len(findings) == SUPERPOSITION_FINDINGS
    f = findings[i]
    assert f.lo <= f.ours <= f.hi, f"{f.name}: ours {f.ours:.4g}, required {f.bound} (paper: {f.paper})"


def test_superposition_pentagon_is_regular():
    """Stated directly, as the paper does: five 72° gaps and D_i = 2/5 for every feature."""
    by_name = {f.name: f for f in _findings("superposition")}
    assert by_name["n=5,m=2,p=0.02: worst |angle gap - 72°| over all seeds"].ours < 2.0
    assert abs(by_name["n=5,m=2,p=0.02: feature dimensionality D_i, min over seeds"].ours - 0.4) <= 0.03
    assert abs(by_name["n=5,m=2,p=0.02: feature dimensionality D_i, max over seeds"].ours - 0.4) <= 0.03
