"""mkdocs hooks for the course website (`hooks:` in mkdocs.yml).

MathJax is served from the site itself, so the maths renders offline: the MathJax 2.7 files that the
`jupyter-server-mathjax` package ships (a PyPI dependency of the `[dev]` extra) are copied to
`site/assets/mathjax/` after each build, where the notebook pages' `custom_mathjax_url` points.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def mathjax_source() -> Path:
    import jupyter_server_mathjax

    return Path(jupyter_server_mathjax.__file__).parent / "static"


def on_post_build(config, **kwargs) -> None:
    target = Path(config["site_dir"]) / "assets" / "mathjax"
    if not (target / "MathJax.js").exists():
        shutil.copytree(mathjax_source(), target, dirs_exist_ok=True)
