"""A finding: one measured number from a reference run, beside the paper's value and the accepted range."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    name: str
    paper: str  # the paper's value or qualitative claim, as text
    ours: float  # what our reference run measured
    lo: float = -math.inf  # accepted range for `ours`, inclusive
    hi: float = math.inf
    unit: str = ""

    @property
    def passed(self) -> bool:
        return self.lo <= self.ours <= self.hi

    @property
    def bound(self) -> str:
        if math.isinf(self.lo) and math.isinf(self.hi):
            return "(reported)"
        if self.lo == self.hi:
            return f"= {self.lo:g}"
        if math.isinf(self.lo):
            return f"≤ {self.hi:g}"
        if math.isinf(self.hi):
            return f"≥ {self.lo:g}"
        return f"in [{self.lo:g}, {self.hi:g}]"


def format_findings(chapter: str, findings: list[Finding]) -> str:
    """A plain-text table: finding | paper | ours | required | pass/fail."""
    rows = [("finding", "paper", "ours", "required", "")]
    for f in findings:
        rows.append((f.name, f.paper, f"{f.ours:.4g}{f.unit}", f.bound, "PASS" if f.passed else "FAIL"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [f"Findings — {chapter}"]
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    n_pass = sum(f.passed for f in findings)
    lines.append(f"{n_pass}/{len(findings)} findings reproduced")
    return "\n".join(lines)
