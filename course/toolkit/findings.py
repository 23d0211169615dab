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
    kind: str = ""  # "sanity" for identities and checks of the machinery; otherwise inferred (see `category`)
    contrast: float | None = None  # the same measurement where the effect must be absent, in the same run
    contrast_name: str = ""  # what that is: "the 1-layer model", "random 5-head sets (best of 10)", ...

    @property
    def category(self) -> str:
        """"phenomenon" (a bound that fails when the effect is absent), "sanity" (an identity or a check of the
        machinery: a test, not a finding) or "measurement" (a number with no bound, printed, never counted)."""
        if self.kind:
            return self.kind
        return "measurement" if math.isinf(self.lo) and math.isinf(self.hi) else "phenomenon"

    @property
    def passed(self) -> bool:
        return self.lo <= self.ours <= self.hi

    @property
    def contrast_fails(self) -> bool:
        """True when the bound rejects the contrast: the bound can fail, and does where the effect is absent."""
        return self.contrast is not None and not self.lo <= self.contrast <= self.hi

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


GROUPS = (("phenomenon", "Phenomena (each bound fails when the effect is absent)"),
          ("sanity", "Sanity checks (identities and machinery: tests, not findings)"),
          ("measurement", "Measurements (no bound: reported, not counted)"))


def format_findings(chapter: str, findings: list[Finding]) -> str:
    """A plain-text table per category: finding | paper | ours | required | pass/fail."""
    lines = [f"Findings — {chapter}"]
    for category, title in GROUPS:
        group = [f for f in findings if f.category == category]
        if not group:
            continue
        rows = [("finding", "paper", "ours", "required", "", "contrast (same run)")]
        for f in group:
            status = "" if category == "measurement" else "PASS" if f.passed else "FAIL"
            against = "" if f.contrast is None else f"{f.contrast:.4g}{f.unit}: {f.contrast_name}"
            rows.append((f.name, f.paper, f"{f.ours:.4g}{f.unit}", f.bound, status, against))
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        lines += ["", f"{title}:"]
        for i, r in enumerate(rows):
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
    phenomena = [f for f in findings if f.category == "phenomenon"]
    sanity = [f for f in findings if f.category == "sanity"]
    lines.append("")
    lines.append(f"{sum(f.passed for f in phenomena)}/{len(phenomena)} phenomena reproduced; "
                 f"{sum(f.passed for f in sanity)}/{len(sanity)} sanity checks pass; "
                 f"{len(findings) - len(phenomena) - len(sanity)} measurements reported")
    return "\n".join(lines)
