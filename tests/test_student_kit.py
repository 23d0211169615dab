"""The student kit: a wheel of the course without `mechinterp.solutions`, whose checks grade from answer packs.
(That replayed grading equals live grading on every mutant and alternative is tested by every chapter's check
tests: tests/chapters/check_testing.py grades each function both ways.)"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from mechinterp.autograder.build import exercise_of, inject, reference_body, student_notebook, tags
from mechinterp.autograder.chapters import get_chapter
from mechinterp.autograder.kit import build_kit, kit_pyproject

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
KIT_CHAPTERS = ["superposition", "induction_heads"]


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    out = tmp_path_factory.mktemp("kit")
    built = build_kit(out, KIT_CHAPTERS)
    target = out / "installed"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target",
                    str(target), str(built.wheel)], check=True, capture_output=True)
    return built, target


def test_the_wheel_holds_no_solutions_and_no_reference_body(kit):
    built, _ = kit
    with zipfile.ZipFile(built.wheel) as wheel:
        names = wheel.namelist()
        sources = {n: wheel.read(n).decode() for n in names if n.endswith(".py")}
    assert not [n for n in names if "/solutions/" in n or n.startswith("mechinterp/solutions")]
    assert {f"mechinterp/autograder/packs/{slug}.safetensors" for slug in KIT_CHAPTERS} <= set(names)
    squashed = {n: "".join(text.split()) for n, text in sources.items()}
    for slug in KIT_CHAPTERS:
        ch = get_chapter(slug)
        for name in ch.checks():
            body = "".join(reference_body(ch, name).split())
            if len(body) < 40:  # one-liners (a drill's `return "b"`) are not a function's code
                continue
            assert not [n for n, text in squashed.items() if body in text], f"{slug}.{name}'s body is in the kit"


def test_packs_hold_drill_answers_only_as_digests(kit):
    from mechinterp.autograder.replay import load_pack

    built, _ = kit
    pack = load_pack(built.packs["superposition"])
    ref = get_chapter("superposition").solutions()
    for name, sha in pack["answers"].items():
        assert len(sha) == 64 and str(getattr(ref, name)()) not in {sha}
    assert not [n for n in pack["calls"] if n.startswith("drill_")]


def _kit_python(target: Path, code: str, packs: Path | None = None) -> subprocess.CompletedProcess:
    """Python with the installed kit first on the path and `mechinterp.solutions` impossible to import."""
    prelude = ("import sys; sys.modules['mechinterp.solutions'] = None\n"
               "import mechinterp.autograder as a\n"
               f"assert a.__file__.startswith({str(target)!r}), a.__file__\n")
    env = {**os.environ, "PYTHONPATH": str(target)}
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, env=env,
                          timeout=600)


@pytest.mark.parametrize("slug", KIT_CHAPTERS)
def test_a_learner_grades_a_whole_chapter_from_the_kit(kit, tmp_path, slug):
    _, target = kit
    ch = get_chapter(slug)
    finished = student_notebook(ch)
    for cell in finished.cells:
        if "exercise" in tags(cell):
            cell.source = inject(cell.source, reference_body(ch, exercise_of(cell)), markers=False)
    nbformat.write(finished, tmp_path / "done.ipynb")
    nbformat.write(student_notebook(ch), tmp_path / "untouched.ipynb")
    total = sum(c.points for c in ch.checks().values())
    code = ("from mechinterp.autograder.cli import main\n"
            f"print('DONE', main(['check', {slug!r}, {str(tmp_path / 'done.ipynb')!r}]))\n"
            f"print('UNTOUCHED', main(['check', {slug!r}, {str(tmp_path / 'untouched.ipynb')!r}]))\n")
    proc = _kit_python(target, code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert f"score: {total}/{total}" in out and "DONE 0" in out
    assert f"score: 0/{total}" in out and "not implemented yet" in out


def test_without_a_pack_the_kit_says_what_is_missing(kit):
    _, target = kit
    proc = _kit_python(target, "from mechinterp.autograder.chapters import get_chapter\n"
                               "get_chapter('ioi').checks()\n")
    assert proc.returncode != 0 and "answer pack" in proc.stderr


def test_kit_pyproject_drops_only_the_solutions():
    text = kit_pyproject((REPO / "pyproject.toml").read_text())
    assert "mechinterp.solutions" not in text and 'name = "mechinterp-course-kit"' in text
    assert '"mechinterp.autograder" = ["packs/*.safetensors"]' in text and "torch>=" in text


def test_recording_after_live_grading_still_records_memoised_reference_runs():
    """A check's memoised helper (superposition caches the reference's training run) filled by live grading
    must not hide those reference calls from the recorder (the full suite grades live before it records)."""
    import importlib

    from mechinterp.autograder import replay
    from mechinterp.autograder.build import reference_namespace
    from mechinterp.autograder.harness import run_check

    ch = get_chapter("superposition")
    learner = reference_namespace(ch)
    check = ch.checks()["train_toy_models"]
    assert run_check(check, learner["train_toy_models"]).passed  # fills the cache live
    pack = replay.record("superposition")
    assert "train_toy_models" in pack["calls"]
    importlib.import_module("mechinterp.autograder.checks.superposition")._reference_loss.cache_clear()
    with replay.replaying("superposition", pack):
        assert run_check(check, learner["train_toy_models"]).passed
