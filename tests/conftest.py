"""Shared fixtures: isolated Jupyter/IPython dirs, the reference namespace, one executed build per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _isolated_jupyter(tmp_path_factory):
    """A developer's own Jupyter/IPython/nbgrader config must not change results."""
    base = tmp_path_factory.mktemp("jupyter-home")
    saved = {k: os.environ.get(k) for k in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR",
                                             "IPYTHONDIR")}
    for key in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        os.environ[key] = str(base / key.lower())
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def superposition_reference() -> dict:
    from mechinterp.autograder.build import reference_namespace
    from mechinterp.autograder.chapters import get_chapter

    return reference_namespace(get_chapter("superposition"))


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> dict:
    """`mechinterp build` of every chapter once per session (executes the solution notebooks): slug -> Built."""
    from mechinterp.autograder.build import build
    from mechinterp.autograder.chapters import chapters

    out = tmp_path_factory.mktemp("build")
    return {slug: build(slug, out) for slug in chapters()}
