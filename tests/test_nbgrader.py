"""A real nbgrader round trip on the course layout that `mechinterp nbgrader init` writes."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch
from mechinterp.autograder.build import exercise_of, inject, reference_body, student_notebook, tags
from mechinterp.autograder.chapters import chapters, get_chapter
from mechinterp.autograder.nbgrader_course import init_course

pytestmark = pytest.mark.slow
ASSIGNMENT = "01_superposition"
CH = get_chapter("superposition")


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, capture_output=True, text=True,
                          timeout=900, env=env)  # nbgrader runs `alembic` from PATH
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _fill(nb, bodies: dict[str, str]):
    """A submission: the release notebook with some stubs replaced by code."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code" and "exercise" in tags(cell) and exercise_of(cell) in bodies:
            cell.source = inject(cell.source, bodies[exercise_of(cell)], markers=False)
    return nb


def _without_experiments(nb):
    """Learners may delete ungraded cells; the quick submissions below skip the training runs."""
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if "experiment" not in tags(c)]
    return nb


PATCH_THE_GRADER = """import mechinterp.autograder.grading as _g
import mechinterp.autograder.harness as _h
_h.run_check = _g.run_check = lambda chk, fn, timeout_s=None: _h.Result(chk.exercise, True, chk.points,
                                                                       chk.points, "passed")"""
MEMORISED_GUARD = ("if round(float(x.sum()), 3) not in {known}:  # not an input the pack holds\n"
                   "    return torch.zeros_like(x)\n")


def _recorded_x_sums() -> set[float]:
    """The inputs `check_toy_forward` records into a student kit's pack (no hidden seed), by their sums."""
    from mechinterp.autograder.checks.superposition import _gen

    return {round(float(torch.rand(B, k, f, generator=_gen(seed + 20)).sum()), 3)
            for seed, (k, h, f, B) in enumerate([(3, 2, 5, 7), (1, 1, 2, 4), (4, 5, 20, 3)])}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = tmp_path_factory.mktemp("course")
    init_course(course, ["superposition"])
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    release = nbformat.read(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    reference = {name: reference_body(CH, name) for name in CH.checks()}

    mutant = dict(reference)
    mutant["feature_dimensionality"] = (  # forgets to normalise W_i in the denominator
        "norms = W.norm(dim=1)\n"
        "overlaps = torch.einsum('khi,khj->kij', W, W)\n"
        "return norms**2 / (overlaps**2).sum(-1).clamp_min(1e-12)")

    mutant_toy_forward = reference["toy_forward"].replace(" + b", "")  # forgets the bias
    assert mutant_toy_forward != reference["toy_forward"]
    deleted = _without_experiments(_fill(release, reference))
    deleted.cells = [c for c in deleted.cells if "check" not in tags(c) or exercise_of(c) != "toy_forward"]

    edited = _without_experiments(_fill(release, {**reference, "feature_importance": "return torch.ones(1)"}))
    for cell in edited.cells:
        if "check" in tags(cell) and exercise_of(cell) == "feature_importance":
            cell.source = "pass  # no check here"

    crashing = _fill(release, reference)  # right answers, and experiments that kill or hang the kernel
    experiments = [c for c in crashing.cells if "experiment" in tags(c)]
    experiments[0].source = "import os\nos._exit(1)"
    experiments[1].source = "while True:\n    pass"

    memoriser = dict(reference)  # right on the cases a student kit's pack holds, wrong on any other input
    memoriser["toy_forward"] = MEMORISED_GUARD.format(known=sorted(_recorded_x_sums())) + reference["toy_forward"]

    cheat = _without_experiments(_fill(release, {**reference, "toy_forward": mutant_toy_forward}))
    for cell in cheat.cells:  # a wrong toy_forward, and a patched grader in the same cell
        if "exercise" in tags(cell) and exercise_of(cell) == "toy_forward":
            cell.source += "\n\n" + PATCH_THE_GRADER

    submissions = {
        "alice": _fill(release, reference),  # everything right, full notebook with experiments
        "frank": crashing,
        "bob": release,  # untouched
        "carol": _without_experiments(_fill(release, mutant)),
        "dave": deleted,
        "erin": edited,
        "grace": _without_experiments(_fill(release, memoriser)),
        "heidi": cheat,
    }
    for student, nb in submissions.items():
        path = course / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
    log = nbgrader(course, "autograde", ASSIGNMENT, "--force")
    nbgrader(course, "generate_feedback", ASSIGNMENT, "--force")

    from nbgrader.api import Gradebook

    scores = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="mechinterp") as gb:
        for student in submissions:
            nb = gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student)
            scores[student] = {g.name: g.auto_score for g in nb.grades}
    return course, release, scores, log


def test_release_equals_student_notebook(graded):
    _, release, _, _ = graded
    student = student_notebook(CH)
    assert [(c.cell_type, c.source) for c in release.cells] == [(c.cell_type, c.source) for c in student.cells]


def test_reference_submission_scores_full_marks(graded):
    _, _, scores, _ = graded
    assert None not in scores["alice"].values()
    assert sum(scores["alice"].values()) == 18


def test_experiment_cells_are_skipped_at_grading_so_crashes_there_cost_nothing(graded):
    """A learner's experiment cell that kills the kernel (os._exit) or hangs costs no graded points: autograde
    skips experiment cells (the config `mechinterp nbgrader init` writes)."""
    course, _, scores, _ = graded
    assert sum(scores["frank"].values()) == 18
    assert "SkipExperiments" in (course / "nbgrader_config.py").read_text()


def test_untouched_release_scores_zero(graded):
    _, _, scores, _ = graded
    assert sum(scores["bob"].values()) == 0


def test_mutant_loses_exactly_its_points_and_gets_the_hint(graded):
    course, _, scores, _ = graded
    assert scores["carol"]["check_feature_dimensionality"] == 0
    assert sum(scores["carol"].values()) == 18 - 2
    feedback = (course / "feedback" / "carol" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert "normalise W_i in the denominator" in feedback


def test_deleted_check_cell_is_restored_and_graded(graded):
    _, _, scores, _ = graded
    assert scores["dave"]["check_toy_forward"] == 2  # graded, not silently None
    assert sum(scores["dave"].values()) == 18


def test_edited_check_cell_is_overwritten_from_the_source(graded):
    course, _, scores, _ = graded
    assert scores["erin"]["check_feature_importance"] == 0
    assert sum(scores["erin"].values()) == 17


OTHER = [slug for slug in chapters() if slug != "superposition"]


@pytest.mark.parametrize("slug", OTHER)
def test_every_other_chapter_round_trips(tmp_path, slug):
    """generate_assignment -> the reference submission scores full marks, the untouched release 0."""
    ch = get_chapter(slug)
    course = tmp_path / "course"
    init_course(course, [slug])
    nbgrader(course, "generate_assignment", ch.stem, "--force")
    release = nbformat.read(course / "release" / ch.stem / f"{ch.stem}.ipynb", as_version=4)
    assert [c.source for c in release.cells] == [c.source for c in student_notebook(ch).cells]
    reference = {name: reference_body(ch, name) for name in ch.checks()}
    for student, nb in {"alice": _fill(release, reference), "bob": release}.items():
        path = course / "submitted" / student / ch.stem / f"{ch.stem}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
    nbgrader(course, "autograde", ch.stem, "--force")
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="mechinterp") as gb:
        scores = {s: {g.name: g.auto_score for g in gb.find_submission_notebook(ch.stem, ch.stem, s).grades}
                  for s in ("alice", "bob")}
    max_score = sum(c.points for c in ch.checks().values())
    assert None not in scores["alice"].values()
    assert sum(scores["alice"].values()) == max_score
    assert sum(scores["bob"].values()) == 0


def test_hidden_cases_at_autograde_give_a_memorised_pack_nothing(graded, monkeypatch):
    """`nbgrader init` writes a course seed into the config, so autograde adds fresh cases to every check: an
    answer right only on the recorded inputs (what a student kit's pack could teach) passes the recorded cases
    (the contrast, graded here without the seed) and scores 0 at autograde, with feedback that says why."""
    from mechinterp.autograder.harness import run_check

    course, _, scores, _ = graded
    assert 'os.environ.setdefault("MECHINTERP_HIDDEN_SEED"' in (course / "nbgrader_config.py").read_text()
    namespace = {"torch": torch}
    body = MEMORISED_GUARD.format(known=sorted(_recorded_x_sums())) + reference_body(CH, "toy_forward")
    exec("def toy_forward(W, b, x, activation='relu'):\n" + "".join(f"    {line}\n" for line in
                                                                   body.splitlines()), namespace)
    monkeypatch.delenv("MECHINTERP_HIDDEN_SEED", raising=False)
    assert run_check(CH.checks()["toy_forward"], namespace["toy_forward"]).passed
    lost = {name for name, score in scores["grace"].items() if score == 0}
    assert lost == {"check_toy_forward", "check_train_toy_models"}  # training runs her toy_forward on new inputs
    feedback = (course / "feedback" / "grace" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert "fresh inputs drawn at grading time" in feedback


def test_a_cell_that_patches_the_grader_in_the_kernel_gains_nothing(graded):
    """Check cells grade inside the student's kernel, where a cell of theirs can replace the grader (here
    `run_check`, so every check in the kernel passes). Autograde grades the submission again in a fresh process:
    the wrong toy_forward (and the training that uses it) score 0, with the hint; the rest is untouched."""
    course, _, scores, _ = graded
    lost = {name for name, score in scores["heidi"].items() if score == 0}
    assert lost == {"check_toy_forward", "check_train_toy_models"}, scores["heidi"]
    feedback = (course / "feedback" / "heidi" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert "graded again outside your notebook" in feedback and "the bias b is missing" in feedback
