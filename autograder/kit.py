"""The student kit: the course without `mechinterp.solutions`, its checks grading from answer packs.

    mechinterp build --student-kit kit/      # kit/packs/<NN>.safetensors and kit/dist/mechinterp_course_kit-*.whl

`build_kit` records one answer pack per chapter (`replay.record`: every reference call the chapter's checks
make, as data) and builds a wheel from this checkout with `solutions/` left out and the packs installed as
`mechinterp/autograder/packs/`. Installed instead of the full package, `check(...)`, `mechinterp check` and
`mechinterp start` work as before; `mechinterp build` and `mechinterp reproduce` need the full package.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mechinterp.autograder import replay
from mechinterp.autograder.chapters import chapters, get_chapter

KIT_NAME = "mechinterp-course-kit"


@dataclass
class Kit:
    packs: dict[str, Path]
    wheel: Path | None
    live_only: dict[str, list[str]]  # exercises whose check the pack could not cover for the reference


def repo_root() -> Path:
    root = Path(replay.__file__).resolve().parent.parent
    if not (root / "pyproject.toml").exists() or not (root / "solutions").is_dir():
        raise RuntimeError("build the student kit from a checkout of the course (pip install -e .)")
    return root


def kit_pyproject(text: str) -> str:
    """The course's pyproject.toml for the kit: another distribution name, no solutions, the packs as data."""
    text = re.sub(r'^name = "mechinterp-course"$', f'name = "{KIT_NAME}"', text, count=1, flags=re.M)
    text = text.replace(', "mechinterp.solutions" = "solutions"', "")
    text = text.replace('    "mechinterp.solutions",\n', "")
    text = text.replace('[tool.setuptools.package-data]\n',
                        '[tool.setuptools.package-data]\n"mechinterp.autograder" = ["packs/*.safetensors"]\n', 1)
    if "mechinterp.solutions" in text or KIT_NAME not in text:
        raise RuntimeError("pyproject.toml changed shape: update kit_pyproject")
    return text


def build_kit(out: Path, chapter_names: list[str] | None = None, wheel: bool = True) -> Kit:
    out = Path(out)
    selected = [get_chapter(n) for n in chapter_names] if chapter_names else list(chapters().values())
    packs, live_only = {}, {}
    for ch in selected:
        pack = replay.record(ch.slug)
        live_only[ch.slug] = sorted(n for n, ok in pack["reference_passes"].items() if not ok)
        packs[ch.slug] = out / "packs" / f"{ch.slug}.safetensors"
        replay.save_pack(pack, packs[ch.slug])
    built = None
    if wheel:
        root = repo_root()
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "kit"
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.ckpt", "packs")
            shutil.copytree(root / "course", src / "course", ignore=ignore)
            shutil.copytree(root / "autograder", src / "autograder", ignore=ignore)
            shutil.copy(root / "README.md", src / "README.md")
            (src / "pyproject.toml").write_text(kit_pyproject((root / "pyproject.toml").read_text()))
            (src / "autograder" / "packs").mkdir()
            for path in packs.values():
                shutil.copy(path, src / "autograder" / "packs" / path.name)
            dist = out / "dist"
            proc = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist),
                                   str(src)], capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"building the kit's wheel failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        built = max(dist.glob("mechinterp_course_kit-*.whl"), key=lambda p: p.stat().st_mtime)
    return Kit(packs, built, live_only)
