"""The distribution installs under the one `mechinterp` namespace, from a wheel built via the sdist."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line and (REPO / line).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for rel in _tracked_files():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, src / rel)
    dist = tmp_path_factory.mktemp("dist")
    # sdist first, then the wheel from the sdist: proves the sdist carries everything
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(src)],
                   check=True, capture_output=True, timeout=600)
    (whl,) = dist.glob("*.whl")
    return whl


def test_wheel_holds_only_the_mechinterp_namespace(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"mechinterp", "mechinterp_course-0.1.0.dist-info"}, tops
    assert "mechinterp/course/chapters/01_superposition.py" in names
    assert "mechinterp/autograder/harness.py" in names and "mechinterp/solutions/superposition.py" in names
    assert not any(n.startswith("mechinterp/__init__") for n in names)  # an implicit namespace package


def test_wheel_installs_and_imports(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, timeout=300)
    # the dependencies (torch, ...) come from this environment; the course itself only from the wheel
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    probe = ("import importlib.util as u, importlib.resources as r\n"
             "for generic in ('course', 'solutions', 'autograder'):\n"
             "    assert u.find_spec(generic) is None, generic\n"
             "assert r.files('mechinterp.course.chapters').joinpath('01_superposition.py').is_file()\n"
             "from mechinterp.autograder import grade\n"
             "import mechinterp.solutions.superposition as ref\n"
             "print(ref.__file__)\n"
             "print(grade('superposition', {}).max_score)\n")
    proc = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    where, max_score = proc.stdout.split()
    assert where.startswith(site) and max_score == "18"


def test_editable_install_maps_the_folders():
    import mechinterp.autograder
    import mechinterp.course
    import mechinterp.solutions

    assert Path(mechinterp.solutions.__file__).parent == REPO / "solutions"
    assert Path(mechinterp.autograder.__file__).parent == REPO / "autograder"
    assert Path(mechinterp.course.__file__).parent == REPO / "course"


def test_pyproject_lists_every_package():
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = {v: k for k, v in config["package-dir"].items()}
    found = set()
    for top, name in mapping.items():
        for init in (REPO / top).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / top)
            found.add(".".join([name, *rel.parts]))
    assert found == set(config["packages"])


def test_the_toolkit_never_imports_the_answers():
    """Learners use the toolkit; it must not depend on (or reveal) `mechinterp.solutions`."""
    root = Path(__file__).resolve().parents[1] / "course" / "toolkit"
    offenders = [p.name for p in root.glob("*.py") if "mechinterp.solutions" in p.read_text()]
    assert offenders == []
