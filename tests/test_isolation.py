"""Learner code runs in a child process: whatever it does there, it scores only its own exercise 0, and the
grader (its comparisons, torch, its time) is untouched for the checks that follow."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import torch
from mechinterp.autograder import grade, isolation
from mechinterp.autograder.chapters import get_chapter
from mechinterp.autograder.harness import run_check
from mechinterp.autograder.learner import load_learner

pytestmark = pytest.mark.skipif(not isolation.available(), reason="no fork here: learner code runs in-process")

CHECKS = get_chapter("ioi").checks()


def correct(logits, end, io, s):
    rows = torch.arange(len(end))
    last = logits[rows, end]
    return last[rows, io] - last[rows, s]


def wrong(logits, end, io, s):
    return 2 * correct(logits, end, io, s)


def verdict(fn, exercise="logit_diff", **kw):
    r = run_check(CHECKS[exercise], fn, **kw)
    return r.passed, r.message


def still_honest():
    """After a cheat: a correct function passes, a wrong one fails with its hint."""
    assert verdict(correct) == (True, "passed")
    passed, message = verdict(wrong)
    assert not passed and "times 2" in message
    assert torch.get_default_dtype() == torch.float32 and torch.allclose is torch._C._VariableFunctions.allclose


def exits(*a):
    os._exit(0)


def interrupts(*a):
    raise KeyboardInterrupt


def sys_exits(*a):
    sys.exit(0)


def swallows_everything(*a):
    while True:
        try:
            while True:
                pass
        except BaseException:  # noqa: BLE001 - the cheat: survive any exception a timer could raise
            pass


def stops_timers_and_sleeps(*a):
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    time.sleep(10_000)


def leaves_a_thread(*args):
    threading.Thread(target=time.sleep, args=(10_000,)).start()  # non-daemon: would keep a process alive
    return correct(*args)


def patches_torch(*args):
    torch.allclose = lambda *a, **k: True
    torch.Tensor.__eq__ = lambda *a, **k: True
    torch.set_default_dtype(torch.float64)
    return wrong(*args)


def patches_the_grader_later(*args):
    from mechinterp.autograder import harness

    def later():
        time.sleep(0.05)
        harness.expect_close = lambda *a, **k: None

    threading.Thread(target=later, daemon=True).start()
    return correct(*args)


def reads_the_expected_value(logits, end, io, s):
    f = sys._getframe().f_back
    while f is not None:
        for value in list(f.f_locals.values()):
            if isinstance(value, torch.Tensor) and value.shape == end.shape and value.is_floating_point():
                return value.clone()
        f = f.f_back
    return torch.zeros(len(end))


class Liar(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.equal, torch.Tensor.__eq__):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})


def returns_a_liar(logits, end, io, s):
    return torch.zeros(len(end)).as_subclass(Liar)


def _copy_of_the_reference():
    import types

    from mechinterp.solutions import ioi as ref

    original = ref.logit_diff
    return types.FunctionType(original.__code__, original.__globals__, "my_logit_diff", original.__defaults__)


copied_reference = _copy_of_the_reference()  # made before grading, as a learner's cell would


def calls_a_copy_of_the_reference(logits, end, io, s):
    return copied_reference(logits, end, io, s)


@pytest.mark.parametrize("cheat, says", [
    (copied_reference, "calls the reference solution (logit_diff)"),
    (calls_a_copy_of_the_reference, "calls the reference solution (logit_diff)"),
    (exits, "ended the process"),
    (interrupts, "raised KeyboardInterrupt"),
    (sys_exits, "raised SystemExit"),
    (returns_a_liar, "times 0"),
    (reads_the_expected_value, "logit difference"),
    (patches_torch, "times 2"),
])
def test_cheats_score_zero_and_change_nothing(cheat, says):
    passed, message = verdict(cheat)
    assert not passed and says in message, message
    still_honest()


def test_a_thread_left_running_or_patching_later_changes_nothing():
    assert verdict(leaves_a_thread) == (True, "passed")
    assert verdict(patches_the_grader_later) == (True, "passed")
    time.sleep(0.1)
    still_honest()


def test_time_limits_are_cpu_time_and_a_waiting_call_is_stopped(monkeypatch):
    passed, message = verdict(swallows_everything, timeout_s=1)
    assert not passed and "timed out after 1 s of CPU time" in message, message
    monkeypatch.setattr(isolation, "WALL_MIN_S", 2.0)
    passed, message = verdict(stops_timers_and_sleeps, timeout_s=0.2)
    assert not passed and "wall-clock" in message, message
    still_honest()


@contextlib.contextmanager
def every_core_busy(n: int):
    """n forked processes spinning at 100% CPU until the block ends."""
    hogs = []
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            while True:
                pass
        hogs.append(pid)
    try:
        yield
    finally:
        for pid in hogs:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def test_a_busy_machine_does_not_time_out_correct_code():
    """Both cores saturated by other processes: CPU-time limits do not count the time spent waiting for a core."""
    def slow_but_correct(*args):  # ~0.4 s of CPU alone; several times that in wall time under this load
        t = time.process_time()
        while time.process_time() - t < 0.4:
            pass
        return correct(*args)

    with every_core_busy(max(2, os.cpu_count() or 2)):
        passed, message = verdict(slow_but_correct, timeout_s=1.5)
    assert passed, message


@pytest.mark.slow
def test_every_reference_passes_every_check_with_both_cores_saturated():
    """Each chapter's reference graded while busy processes (one per core, plus one) keep every core at 100%:
    CPU-time limits, and a wall-clock backstop far above them, never fail correct code on a loaded machine."""
    from mechinterp.autograder.build import reference_namespace
    from mechinterp.autograder.chapters import chapters

    failed = []
    with every_core_busy((os.cpu_count() or 2) + 1):
        for ch in chapters().values():
            report = grade(ch.slug, reference_namespace(ch))
            failed += [f"{ch.slug}.{r.exercise}: {r.message}" for r in report.results if not r.passed]
    assert not failed, failed


KILLERS = """
import os, signal, sys
from mechinterp.autograder.chapters import get_chapter
from mechinterp.autograder.harness import run_check

def to_parent(logits, end, io, s):
    os.kill(os.getppid(), signal.SIGKILL)

def to_group(logits, end, io, s):
    os.kill(0, signal.SIGKILL)

check = get_chapter("ioi").checks()["logit_diff"]
for fn in (to_parent, to_group):
    result = run_check(check, fn)
    print(fn.__name__, result.passed, result.message)
print("the grader is still here")
"""


@pytest.mark.skipif(not isolation.signal_guard_works(),
                    reason="no seccomp signal filter here (it is for Linux on x86_64 and aarch64)")
def test_learner_code_cannot_kill_the_grader(tmp_path):
    """A learner's call may not signal any process but its own child (a seccomp filter): killing the grader (its
    parent) or the grader's process group fails that exercise, and grading goes on. In a session of its own, so
    that a failure of the filter cannot take pytest with it."""
    proc = subprocess.run([sys.executable, "-c", KILLERS], capture_output=True, text=True, timeout=300,
                          start_new_session=True, cwd=tmp_path)
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    assert "the grader is still here" in proc.stdout
    for name in ("to_parent", "to_group"):
        assert f"{name} False your function raised PermissionError" in proc.stdout, proc.stdout


def test_drill_answers_are_plain_values():
    class AlwaysEqual:
        def __eq__(self, other):
            return True

    class Sly(str):
        def __eq__(self, other):
            return True

        def strip(self):
            return self

        def lower(self):
            return self

    for answer in (AlwaysEqual(), Sly("z")):
        passed, _ = verdict(lambda answer=answer: answer, "drill_circuit_order")
        assert not passed
    assert verdict(lambda: " C ", "drill_circuit_order")[0]


def test_module_level_code_cannot_patch_the_grader(tmp_path):
    src = tmp_path / "learner.py"
    src.write_text(textwrap.dedent("""
        import torch
        from mechinterp.autograder import harness, grading
        harness.expect_close = lambda *a, **k: None
        grading.run_check = lambda chk, fn, *a, **k: harness.Result(chk.exercise, True, chk.points, chk.points, "")
        torch.allclose = lambda *a, **k: True
        torch.set_default_dtype(torch.float64)
        raise SystemExit(0)
    """) + textwrap.dedent("""
        def logit_diff(logits, end, io, s):
            return 3 * logits[torch.arange(len(end)), end, io]
    """))
    namespace, problems = load_learner(src)
    assert any("SystemExit" in p for p in problems)
    assert "logit_diff" in namespace  # the statements after the failing one still ran
    report = grade("ioi", namespace)
    by_name = {r.exercise: r for r in report.results}
    assert not by_name["logit_diff"].passed and report.score == 0
    still_honest()


def test_the_frame_reading_cheat_is_stopped_by_isolation_itself(monkeypatch):
    """Positive control: run in-process, the same cheat would pass."""
    monkeypatch.setenv("MECHINTERP_ISOLATE", "0")
    assert verdict(reads_the_expected_value)[0]


def test_a_notebook_cell_keeps_its_globals():
    """check(...) called at a cell's top level: the child must not blank the cell's (module) frame, whose
    locals are the notebook's globals that the learner's function reads."""
    cell = textwrap.dedent("""
        import torch
        from mechinterp.autograder import check

        def helper(last, rows, a):
            return last[rows, a]

        def logit_diff(logits, end, io, s):
            rows = torch.arange(len(end))
            last = logits[rows, end]
            return helper(last, rows, io) - helper(last, rows, s)

        check("ioi", "logit_diff", logit_diff)
    """)
    exec(compile(cell, "<cell>", "exec"), {"__name__": "__main__"})
