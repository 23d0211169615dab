"""Findings are facts: each chapter's reference experiments, rerun, against the papers' values.

The bounds live with each Finding (solutions/<chapter>.py) and are printed by `mechinterp reproduce`."""

from __future__ import annotations

import pytest
from mechinterp.autograder.chapters import chapters
from mechinterp.course.toolkit.findings import format_findings

pytestmark = pytest.mark.slow
_CACHE: dict = {}

# how many findings each chapter asserts (a chapter that silently drops one fails here)
COUNTS = {"superposition": 12, "probing": 13, "induction_heads": 12, "patching": 14, "ioi": 32,
          "integrated_gradients": 13, "sparse_autoencoders": 14, "editing": 20,
          "lie_detection": 30}


def _findings(slug):
    if slug not in _CACHE:
        _CACHE[slug] = chapters()[slug].solutions().findings("cpu")
        print(format_findings(slug, _CACHE[slug]))
    return _CACHE[slug]


def test_every_chapter_has_findings():
    assert set(COUNTS) == set(chapters())


@pytest.mark.parametrize("slug, i", [(slug, i) for slug, n in COUNTS.items() for i in range(n)])
def test_finding(slug, i):
    findings = _findings(slug)
    assert len(findings) == COUNTS[slug]
    f = findings[i]
    assert f.lo <= f.ours <= f.hi, f"{f.name}: ours {f.ours:.4g}, required {f.bound} (paper: {f.paper})"
    if f.category == "phenomenon":  # the bound must fail where the effect is absent, measured in the same run
        assert f.contrast is not None and f.contrast_name, f"{f.name}: a phenomenon without a same-run contrast"
        assert f.contrast_fails, (f"{f.name}: the contrast ({f.contrast_name}: {f.contrast:.4g}) also meets "
                                  f"{f.bound}, so the bound cannot tell the effect from its absence")


def test_superposition_pentagon_is_regular():
    """Stated directly, as the paper does: five 72° gaps and D_i = 2/5 for every feature."""
    by_name = {f.name: f for f in _findings("superposition")}
    assert by_name["n=5,m=2,p=0.02: worst |angle gap - 72°| over all seeds"].ours < 2.0
    assert abs(by_name["n=5,m=2,p=0.02: feature dimensionality D_i, min over seeds"].ours - 0.4) <= 0.03
    assert abs(by_name["n=5,m=2,p=0.02: feature dimensionality D_i, max over seeds"].ours - 0.4) <= 0.03


def test_ioi_report_puts_both_circuits_beside_wang():
    from mechinterp.solutions.ioi import report

    text = report("cpu")
    print(text)
    header, _, *rows = text.splitlines()[1:]
    assert "zoo/ioi-lm" in header and "zoo/ioi-lm-v2" in header and "Wang" in header
    by_class = {r.split("|")[0].strip(): [c.strip() for c in r.split("|")[1:]] for r in rows}
    assert by_class["name mover"][0] == "9.9, 9.6, 10.0"
    assert by_class["s-suppression"][1] != "—" and by_class["s-suppression"][2] != "—"
