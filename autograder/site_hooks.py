"""mkdocs hooks for the course website (`hooks:` in mkdocs.yml).

Maths is typeset by MathJax 3 served from the site itself, so it renders offline: after each build the
MathJax files that the `django-static-mathjax` package ships (a dependency-free PyPI package, in the `[dev]`
extra) are copied to `site/assets/mathjax/`, beside a small loader, `mechinterp.js`, that the notebook pages'
`custom_mathjax_url` points to. The SVG output is used: it draws glyphs from JavaScript font data, so no web
font has to load (web fonts would also need the site to be served over HTTP).
"""

from __future__ import annotations

import shutil
from pathlib import Path

# nbconvert's page template configures MathJax 2 (`MathJax.Hub.Config`) when MathJax is present: the loader
# gives it a no-op `Hub`, sets MathJax 3's own options, and loads MathJax 3 (tex-svg) next to itself.
LOADER = r"""window.MathJax = {
  tex: {inlineMath: [["$", "$"], ["\\(", "\\)"]], displayMath: [["$$", "$$"], ["\\[", "\\]"]],
        processEscapes: true},
  svg: {fontCache: "global"},
  options: {enableMenu: false}
};
window.MathJax.Hub = {Config: function () {}, Queue: function () {}};
(function () {
  var here = document.currentScript.src.replace(/[^/]*$/, "");
  var script = document.createElement("script");
  script.src = here + "es5/tex-svg.js";
  script.async = true;
  document.head.appendChild(script);
})();
"""


def mathjax_source() -> Path:
    import mathjax  # django-static-mathjax: MathJax 3's distribution as package data

    return Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"


def on_post_build(config, **kwargs) -> None:
    target = Path(config["site_dir"]) / "assets" / "mathjax"
    if not (target / "es5" / "tex-svg.js").exists():
        shutil.copytree(mathjax_source(), target / "es5", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("sre", "chtml", "*-chtml*.js", "node-main*"))
    (target / "mechinterp.js").write_text(LOADER)
