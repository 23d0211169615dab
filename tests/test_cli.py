"""The `mechinterp` command line as a learner and an instructor use it."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from mechinterp.autograder.build import exercise_of, inject, reference_body, student_notebook, tags
from mechinterp.autograder.chapters import get_chapter
from mechinterp.autograder.cli import main

CH = get_chapter("superposition")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_start_creates_then_never_overwrites_edits(tmp_path, capsys):
    ws = tmp_path / "ws"
    assert main(["start", str(ws)]) == 0
    nb_path = ws / "01_superposition.ipynb"
    assert "created" in capsys.readouterr().out
    assert main(["start", str(ws)]) == 0
    assert "up to date" in capsys.readouterr().out

    nb = nbformat.read(nb_path, as_version=4)
    nb.cells[0].source += "\n\nmy notes"
    nbformat.write(nb, nb_path)
    before = _digest(nb_path)
    assert main(["start", str(ws)]) == 0
    assert "skipped, you have edited it" in capsys.readouterr().out
    assert _digest(nb_path) == before

    assert main(["start", str(ws), "--force"]) == 0
    assert "replaced" in capsys.readouterr().out
    backups = list(ws.glob("01_superposition.backup-*.ipynb"))
    assert len(backups) == 1 and _digest(backups[0]) == before
    assert "my notes" not in nb_path.read_text()


def test_check_untouched_notebook_reports_not_implemented(tmp_path, capsys):
    path = tmp_path / "01_superposition.ipynb"
    nbformat.write(student_notebook(CH), path)
    before = _digest(path)
    assert main(["check", "superposition", str(path)]) == 1
    out = capsys.readouterr().out
    assert "score: 0/18" in out and "not implemented yet" in out and "Traceback" not in out
    assert _digest(path) == before  # the learner's file is never written


def test_check_graded_notebook_with_broken_cells(tmp_path, capsys):
    nb = student_notebook(CH)
    for cell in nb.cells:
        if "exercise" in tags(cell):
            name = exercise_of(cell)
            if name == "toy_forward":
                cell.source = "def toy_forward(W, b, x, activation='relu'):\n    return undefined_name"
            elif name != "classify_phase":
                cell.source = inject(cell.source, reference_body(CH, name), markers=False)
        elif "experiment" in tags(cell):
            cell.source = "raise RuntimeError('this training run would crash')"
    nb.cells.append(nbformat.v4.new_code_cell("def broken(:\n    pass"))  # a syntax error in a scratch cell
    path = tmp_path / "mine.ipynb"
    nbformat.write(nb, path)
    assert main(["check", "1", str(path)]) == 1
    out = capsys.readouterr().out
    # toy_forward (2) is broken, classify_phase (1) untouched, train_toy_models (3) calls the broken toy_forward
    assert "score: 12/18" in out
    assert "NameError: name 'undefined_name' is not defined" in out
    # the hint quotes the learner's failing line and names its cell; results come in the notebook's order
    cell = next(i + 1 for i, c in enumerate(nb.cells) if "exercise" in tags(c) and exercise_of(c) == "toy_forward")
    assert f"(line 2 of cell {cell}: `return undefined_name`)" in out
    shown = [name for name in CH.check_order() if f" {name}" in out]
    assert shown == sorted(shown, key=out.index)


def test_check_python_file_full_marks(tmp_path, capsys):
    lines = ["import math", "import torch", "from torch import Tensor", "from tqdm import tqdm",
             "NOT_REPRESENTED, DEDICATED, SUPERPOSED = 0, 1, 2"]
    for cell in student_notebook(CH).cells:
        if "exercise" in tags(cell):
            lines.append(inject(cell.source, reference_body(CH, exercise_of(cell)), markers=False))
    path = tmp_path / "answers.py"
    path.write_text("\n\n".join(lines))
    assert main(["check", "superposition", str(path)]) == 0
    assert "score: 18/18" in capsys.readouterr().out


def test_unknown_chapter_is_a_clear_error(capsys):
    assert main(["check", "nope", "x.ipynb"]) == 2
    assert "unknown chapter 'nope'; chapters: 01 superposition" in capsys.readouterr().err


def test_a_key_error_inside_a_command_keeps_its_traceback(monkeypatch):
    """Only an unknown name is a usage error (exit 2); a bug raising KeyError is not reported as "error: 'x'"."""
    import mechinterp.autograder.cli as cli

    def broken(args):
        return {}["x"]

    monkeypatch.setattr(cli, "_cmd_reproduce", broken)
    with pytest.raises(KeyError, match="x"):
        cli.main(["reproduce", "superposition"])


def test_nbgrader_init_layout(tmp_path, capsys):
    assert main(["nbgrader", "init", str(tmp_path / "course")]) == 0
    config = (tmp_path / "course" / "nbgrader_config.py").read_text()
    assert "add_missing_cells = True" in config and "c.Execute.timeout" in config
    assert (tmp_path / "course" / "source" / "01_superposition" / "01_superposition.ipynb").exists()


def test_console_script_is_installed():
    proc = subprocess.run([str(Path(sys.executable).parent / "mechinterp"), "list"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and "superposition" in proc.stdout


def test_zoo_list_and_verify(capsys):
    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert "zoo/attn-only-2l" in out and "zoo/text-lm" in out
    assert main(["zoo", "verify", "attn-only-2l"]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "FAIL" not in out


def test_check_survives_a_file_that_exits_at_the_top_level_or_in_an_exercise(tmp_path, capsys):
    top = tmp_path / "top.py"
    top.write_text("import os\nos._exit(0)\n")
    assert main(["check", "ioi", str(top)]) == 1
    out = capsys.readouterr().out
    assert "no report" in out and "os._exit" in out
    inside = tmp_path / "inside.py"
    inside.write_text("import os\nimport torch\n\ndef logit_diff(logits, end, io, s):\n    os._exit(0)\n\n"
                      "def drill_circuit_order():\n    return 'c'\n")
    assert main(["check", "ioi", str(inside)]) == 1
    out = capsys.readouterr().out
    assert "ended the process" in out and "drill_circuit_order" in out and "score: 1/" in out


def test_nbgrader_config_follows_the_course_folder_when_moved(tmp_path):
    import shutil

    from traitlets.config.loader import PyFileConfigLoader

    assert main(["nbgrader", "init", str(tmp_path / "course"), "--chapters", "superposition"]) == 0
    shutil.move(tmp_path / "course", tmp_path / "moved")
    config = PyFileConfigLoader("nbgrader_config.py", path=str(tmp_path / "moved")).load_config()
    assert config.CourseDirectory.root == str(tmp_path / "moved")
    assert config.CourseDirectory.db_url == f"sqlite:///{tmp_path / 'moved' / 'gradebook.db'}"


def test_nbgrader_init_can_keep_the_experiments(tmp_path):
    assert main(["nbgrader", "init", str(tmp_path / "a"), "--chapters", "superposition"]) == 0
    assert main(["nbgrader", "init", str(tmp_path / "b"), "--chapters", "superposition", "--run-experiments"]) == 0
    assert "SkipExperiments" in (tmp_path / "a" / "nbgrader_config.py").read_text()
    assert "SkipExperiments" not in (tmp_path / "b" / "nbgrader_config.py").read_text()
