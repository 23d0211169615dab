"""The course website builds with `mkdocs build --strict` and renders the executed solution notebook."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(built, tmp_path_factory) -> Path:
    """The website as the README builds it: the site notebooks (executed, student view) + mkdocs --strict."""
    site_src = tmp_path_factory.mktemp("site-src")
    shutil.copytree(REPO / "docs", site_src / "docs")
    shutil.copy(REPO / "mkdocs.yml", site_src / "mkdocs.yml")
    shutil.copytree(REPO / "autograder", site_src / "autograder")  # mkdocs.yml's hooks live there
    (site_src / "docs" / "chapters").mkdir(exist_ok=True)
    for b in built.values():
        shutil.copy(b.site, site_src / "docs" / "chapters" / b.site.name)
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(site_src / "mkdocs.yml")],
                          capture_output=True, text=True, timeout=600, cwd=site_src)  # its .cache/ goes there
    assert proc.returncode == 0, proc.stderr[-3000:]
    return site_src / "site"


def test_site_builds_strict_with_the_executed_chapter(site):
    page = (site / "chapters" / "01_superposition" / "index.html").read_text()
    assert "Toy models of superposition" in page
    assert "data:image/png;base64" in page  # the figures were rendered
    assert "angle gaps" in page  # and the measured outputs
    assert 'src="../../assets/mathjax/MathJax.js' in page and (site / "assets" / "mathjax" / "MathJax.js").exists()
    from mechinterp.autograder.chapters import get_chapter

    exercises = len(get_chapter("superposition").checks())  # exercises and drills
    assert page.count('class="reference-solution"') == exercises  # solutions collapsed, one per exercise
    assert "Exercise 1.1 — feature_importance" in page  # full table-of-contents names
    assert "md-footer__link--next" in page  # previous / next


def _internal_links(page: Path, site: Path) -> list[tuple[str, Path]]:
    import re

    out = []
    for href in re.findall(r'href="([^"#?]+)[^"]*"', page.read_text()):
        if "://" in href or href.startswith(("mailto:", "data:", "javascript:")):
            continue
        target = (site / href.lstrip("/")) if href.startswith("/") else (page.parent / href)
        target = target.resolve()
        out.append((href, target / "index.html" if target.is_dir() or href.endswith("/") else target))
    return out


def test_every_internal_link_resolves(site):
    broken = [(str(p.relative_to(site)), href) for p in site.rglob("*.html")
              for href, target in _internal_links(p, site) if not target.exists()]
    assert broken == []


def test_pages_in_a_real_headless_chromium(site):
    """Each page in Debian's Chromium (via playwright): maths typeset, every figure loaded, no console error
    other than fonts the offline machine cannot reach, no JavaScript exception."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium on this machine (.ci/run installs Debian's)")
    from playwright.sync_api import sync_playwright

    pages = sorted(site.glob("*/index.html")) + sorted(site.glob("chapters/*/index.html")) + [site / "index.html"]
    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for path in pages:
            tab = browser.new_page()
            console, errors, failed = [], [], []
            tab.on("console", lambda m, console=console: console.append((m.type, m.text)))
            tab.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            tab.on("requestfailed", lambda r, failed=failed: failed.append(r.url))
            tab.goto(path.as_uri())
            tab.wait_for_load_state("load")
            is_chapter = "chapters" in path.parts
            if is_chapter:  # MathJax 2: wait until it has typeset the page (its queue is empty)
                tab.wait_for_function("() => window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0 "
                                      "&& MathJax.Hub.queue.running === 0", timeout=60_000)
            name = str(path.relative_to(site))
            offline = [u for u in failed if not u.startswith("file://")]  # web fonts, unreachable offline
            problems += [f"{name}: failed to load {u}" for u in failed if u.startswith("file://")]
            problems += [f"{name}: {e}" for e in errors]
            problems += [f"{name}: console {t}: {m}" for t, m in console if t == "error"
                         and not (offline and "net::" in m)]
            broken = tab.evaluate("() => [...document.images].filter(i => !i.complete || i.naturalWidth === 0)"
                                  ".map(i => i.src.slice(0, 60))")
            problems += [f"{name}: image not loaded {b}" for b in broken]
            if is_chapter:
                raw = tab.evaluate("() => [...document.querySelectorAll('.jp-RenderedMarkdown')]"
                                   ".map(e => e.innerText).join(' ').match(/\\$[^$\\n]{1,60}\\$/g) || []")
                problems += [f"{name}: maths left as text {r}" for r in raw[:3]]
                closed = tab.evaluate("() => [...document.querySelectorAll('details.reference-solution')]"
                                      ".every(d => !d.open)")
                problems += [] if closed else [f"{name}: a reference solution is open by default"]
            tab.close()
        browser.close()
    assert problems == [], "\n".join(problems[:20])


def test_readme_commands_match_ci():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    setup = 'pip install torch==2.13.0 && pip install -e ".[dev]"'
    assert setup in readme and setup in ci
    test_command = next(line.strip() for line in readme.splitlines() if line.strip().startswith("python -m pytest"))
    assert test_command in ci
