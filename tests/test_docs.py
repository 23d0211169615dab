"""The course website builds with `mkdocs build --strict` and renders the executed solution notebook."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import threading
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
    assert 'src="../../assets/mathjax/mechinterp.js' in page
    assert (site / "assets" / "mathjax" / "es5" / "tex-svg.js").exists()
    from mechinterp.autograder.chapters import get_chapter

    exercises = len(get_chapter("superposition").checks())  # exercises and drills
    assert page.count('class="reference-solution"') == exercises  # solutions collapsed, one per exercise
    assert "Exercise 1.1 — feature_importance" in page  # full table-of-contents names
    assert "md-footer__link--next" in page  # previous / next


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


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
    problems, typeset = [], {}
    # served over HTTP on the loopback interface, as a web server would (browsers refuse web fonts from file://)
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for path in pages:
            tab = browser.new_page()
            console, errors, failed = [], [], []
            tab.on("console", lambda m, console=console: console.append((m.type, m.text)))
            tab.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            tab.on("requestfailed", lambda r, failed=failed: failed.append(r.url))
            tab.goto(base + str(path.relative_to(site).parent).removeprefix(".") + "/")
            tab.wait_for_load_state("load")
            is_chapter = "chapters" in path.parts
            if is_chapter:  # MathJax 3: wait until it has typeset the page
                tab.wait_for_function("async () => { if (!window.MathJax || !MathJax.startup || !MathJax.startup."
                                      "promise) return false; await MathJax.startup.promise; return true; }",
                                      timeout=60_000)
            name = str(path.relative_to(site))
            offline = [u for u in failed if not u.startswith(base)]  # web fonts on the internet, unreachable offline
            problems += [f"{name}: failed to load {u}" for u in failed if u.startswith(base)]
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
                typeset[name] = tab.evaluate("() => document.querySelectorAll('mjx-container').length")
                closed = tab.evaluate("() => [...document.querySelectorAll('details.reference-solution')]"
                                      ".every(d => !d.open)")
                problems += [] if closed else [f"{name}: a reference solution is open by default"]
            tab.close()
        browser.close()
    server.shutdown()
    assert problems == [], "\n".join(problems[:20])
    assert typeset["chapters/01_superposition/index.html"] > 50, typeset  # chapter 01 has ~80 formulas


def test_readme_commands_match_ci():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    setup = 'pip install torch==2.13.0 && pip install -e ".[dev]"'
    assert setup in readme and setup in ci
    test_command = next(line.strip() for line in readme.splitlines() if line.strip().startswith("python -m pytest"))
    assert test_command in ci
