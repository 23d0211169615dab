"""The course website builds with `mkdocs build --strict` and renders the executed solution notebook."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_site_builds_strict_with_the_executed_chapter(built, tmp_path):
    site_src = tmp_path / "site-src"
    shutil.copytree(REPO / "docs", site_src / "docs")
    shutil.copy(REPO / "mkdocs.yml", site_src / "mkdocs.yml")
    (site_src / "docs" / "chapters").mkdir(exist_ok=True)
    for b in built.values():
        shutil.copy(b.solution, site_src / "docs" / "chapters" / b.solution.name)
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(site_src / "mkdocs.yml")],
                          capture_output=True, text=True, timeout=600, cwd=site_src)  # its .cache/ goes there
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = (site_src / "site" / "chapters" / "01_superposition" / "index.html").read_text()
    assert "Toy models of superposition" in page
    assert "data:image/png;base64" in page  # the figures were rendered
    assert "angle gaps" in page  # and the measured outputs


def test_readme_commands_match_ci():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    setup = 'pip install torch==2.13.0 && pip install -e ".[dev]"'
    assert setup in readme and setup in ci
    test_command = next(line.strip() for line in readme.splitlines() if line.strip().startswith("python -m pytest"))
    assert test_command in ci
