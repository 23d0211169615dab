"""The check harness: run a learner's function in isolation, compare it with the reference, explain the gap.

A check is a function `check_<exercise>(fn)` registered with `@exercise(chapter, points=...)`. It calls the
learner's `fn` through `call(...)` (which snapshots inputs, traps calls into the reference solutions and turns
`NotImplementedError` into "not implemented yet") and compares outputs with `expect_close(...)` (which names
the likely mistake). `run_check` adds the per-check timeout, seeding and isolation used by `grade()`.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib
import inspect
import io
import math
import os
import re
import signal
import sys
import textwrap
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mechinterp.autograder import isolation
from torch import Tensor

DEFAULT_TIMEOUT_S = 20.0


class CheckFailure(AssertionError):
    """A learner-facing failure: the message is the hint. Rendered without a traceback in Jupyter."""

    def _render_traceback_(self) -> list[str]:  # IPython calls this instead of printing a traceback
        if not self.args:
            return ["✗ check failed"]
        # wrapped: notebook and nbgrader feedback pages show an error's lines unwrapped, cutting long hints off
        lines = textwrap.wrap(f"✗ {self.args[0]}", width=100, subsequent_indent="  ", break_on_hyphens=False)
        return [f"\x1b[31m{line}\x1b[0m" for line in lines]


class NotImplementedYet(CheckFailure):
    pass


class CheckTimeout(CheckFailure):
    pass


# ------------------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Check:
    chapter: str
    exercise: str
    points: int
    func: Callable[[Callable], None]
    timeout_s: float = DEFAULT_TIMEOUT_S
    # "module:Owner.attribute" of library functions that compute this exercise in full (refused while checked)
    forbidden: tuple[str, ...] = ()


REGISTRY: dict[str, dict[str, Check]] = {}


_CASE_OFFSET = [0]  # the pass run_check is in: 0 for the recorded cases, N for the hidden ones


def case_seed(seed: int) -> int:
    """The seed a check draws one of its test cases from: as recorded, or, in the hidden pass that
    `MECHINTERP_HIDDEN_SEED=N` adds (see `run_check`), shifted to inputs that no student's answer pack holds."""
    return seed + 7919 * _CASE_OFFSET[0]


def hidden_seed() -> int:
    """`MECHINTERP_HIDDEN_SEED` (an instructor's nbgrader config sets it for autograding), 0 when unset."""
    return int(os.environ.get("MECHINTERP_HIDDEN_SEED") or 0)


def clear_check_caches(module) -> None:
    """Empty a checks module's memoised helpers (models, reference runs drawn from case seeds, a recording):
    a value computed for one pass, or one mode, must not stand in for another's."""
    for value in list(vars(module).values()):
        if isinstance(value, functools._lru_cache_wrapper):
            value.cache_clear()


def _use_offset(check: Check, offset: int) -> None:
    if _CASE_OFFSET[0] != offset:
        _CASE_OFFSET[0] = offset
        clear_check_caches(sys.modules[check.func.__module__])

_DTYPE_WORDS = re.compile(r"\b(float16|float32|float64|bfloat16|int32|int64|long|bool|dtype|integer tensor)\b",
                          re.IGNORECASE)


@functools.cache
def states_dtype(chapter: str, exercise: str) -> bool:
    """Whether the exercise's docstring (in the chapter's notebook source, as the learner reads it) names a
    dtype. Outputs are held to the reference's dtype only then: elsewhere float64 maths with equal values
    passes."""
    from mechinterp.autograder.chapters import get_chapter

    try:
        source = get_chapter(chapter).source.read_text(encoding="utf-8")
    except (KeyError, OSError):
        return True
    for cell in re.split(r"^# %%.*$", source, flags=re.MULTILINE):  # the jupytext cells
        if f"def {exercise}(" not in cell:
            continue
        try:
            tree = ast.parse(cell)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == exercise:
                return bool(_DTYPE_WORDS.search(ast.get_docstring(node) or ""))
    return True


def exercise(chapter: str, points: int = 1, timeout_s: float = DEFAULT_TIMEOUT_S, forbidden: tuple[str, ...] = ()):
    """Register `check_<name>(fn)` as the check for exercise `<name>` of `chapter`. forbidden: library functions
    ("module:Owner.attribute") that implement the exercise in full; calling one while it is checked scores 0."""

    def register(func: Callable[[Callable], None]) -> Callable[[Callable], None]:
        name = func.__name__.removeprefix("check_")
        REGISTRY.setdefault(chapter, {})[name] = Check(chapter, name, points, func, timeout_s, tuple(forbidden))
        return func

    return register


# ----------------------------------------------------------------------------- calling learner code


class ReferenceCalled(Exception):
    """Raised by a reference function while learner code runs (see `_trap_reference_calls`)."""


@dataclass
class _Running:
    """The check `run_check` is running: its twins and forbidden functions are refused, its time limit applies
    (CPU seconds per call of learner code), and each isolated call gets its own RNG seed (the call count)."""

    check: Check | None  # None: learner code called outside run_check
    limit_s: float
    calls: int = 0


_RUNNING: list[_Running] = []


def _reference_functions() -> Iterator[Any]:
    """Every plain function (and method) defined in an imported `mechinterp.solutions.*` module, and every
    toolkit function marked as a complete twin of the exercise being checked (`toolkit.twins.exercise_twin`)."""
    for name, module in list(sys.modules.items()):
        if module is None:
            continue
        if name.startswith("mechinterp.course.toolkit") and _RUNNING:
            running = (_RUNNING[-1].check.chapter, _RUNNING[-1].check.exercise)
            for f in list(vars(module).values()):
                if inspect.isfunction(f) and f.__module__ == name and \
                        getattr(f, "__exercise_twin__", None) == running:
                    yield inspect.unwrap(f)  # a decorated twin: trap the function itself, not its wrapper
        if not name.startswith("mechinterp.solutions"):
            continue
        for obj in list(vars(module).values()):
            members = vars(obj).values() if isinstance(obj, type) else (obj,)
            for f in members:
                f = getattr(f, "__func__", f)
                if inspect.isfunction(f) and f.__module__ == name and not f.__code__.co_freevars:
                    yield f


@functools.cache
def _trap_code(name: str):
    namespace: dict = {}
    exec(f"def trap(*args, **kwargs):\n    raise __import__('mechinterp.autograder.harness', "
         f"fromlist=['_']).ReferenceCalled({name!r})", namespace)
    return namespace["trap"].__code__


def _copies_of(codes: set, fn: Any) -> list:
    """Functions reachable from the learner's `fn` (itself, its module's globals, its closure) that run a
    reference's code object: `types.FunctionType(ref.__code__, ...)` copies made before grading."""
    if not inspect.isfunction(fn):
        return []
    reachable = [fn, *fn.__globals__.values(), *(c.cell_contents for c in fn.__closure__ or () if _filled(c))]
    return [f for f in reachable if inspect.isfunction(f) and f.__code__ in codes]


def _filled(cell) -> bool:
    try:
        cell.cell_contents  # noqa: B018
        return True
    except ValueError:
        return False


@contextlib.contextmanager
def _trap_reference_calls(fn: Any = None) -> Iterator[None]:
    """While the learner's code runs, every reference function raises ReferenceCalled when called.

    Swapping `__code__` catches the reference however it was imported (module attribute or a name bound
    earlier) at no cost per call, unlike a profiler hook, which would slow training loops several-fold. Copies
    of a reference made with `types.FunctionType` (same code object, another function) within the learner's
    reach are trapped the same way."""
    saved = [(f, f.__code__) for f in _reference_functions()]
    by_code = {code: f for f, code in saved}
    saved += [(copy, copy.__code__) for copy in _copies_of(set(by_code), fn)
              if all(copy is not f for f, _ in saved)]
    patched = _patch_forbidden()
    try:
        for f, code in saved:
            ref = by_code[code]  # a copy is reported as the reference it copies
            what = ref.__qualname__ if ref.__module__.startswith("mechinterp.solutions") else \
                f"{ref.__module__.removeprefix('mechinterp.course.')}.{ref.__qualname__}, a complete " \
                "implementation of this exercise"
            f.__code__ = _trap_code(what)
        yield
    finally:
        for f, code in saved:
            f.__code__ = code
        for owner, attr, original in reversed(patched):
            setattr(owner, attr, original)


def _patch_forbidden() -> list[tuple[Any, str, Any]]:
    """Replace the running check's forbidden library functions by ones that raise ReferenceCalled."""
    patched = []
    for spec in _RUNNING[-1].check.forbidden if _RUNNING else ():
        module_name, _, path = spec.partition(":")
        try:
            owner = importlib.import_module(module_name)
            *owners, attr = path.split(".")
            for part in owners:
                owner = getattr(owner, part)
            original = getattr(owner, attr)
        except (ImportError, AttributeError):
            continue  # the library is not installed: nothing to refuse

        def refuse(*args, spec=spec, **kwargs):
            raise ReferenceCalled(f"{spec.replace(':', '.')}, a complete implementation of this exercise")

        setattr(owner, attr, refuse)
        patched.append((owner, attr, original))
    return patched


def _snapshot(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.detach().clone().requires_grad_(value.requires_grad)
    if isinstance(value, (list, tuple)):
        return type(value)(_snapshot(v) for v in value)
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    return value


def _changed(before: Any, after: Any) -> bool:
    if isinstance(before, Tensor):
        return before.shape != after.shape or not torch.equal(before, after.detach())
    if isinstance(before, (list, tuple)):
        return len(before) != len(after) or any(_changed(b, a) for b, a in zip(before, after, strict=False))
    if isinstance(before, dict):
        return any(_changed(before[k], after.get(k)) for k in before)
    return False


def _learner_frame(tb) -> str:
    """The innermost traceback line that is in learner code (not torch, not this harness)."""
    frames = [f for f in traceback.extract_tb(tb) if "site-packages" not in f.filename
              and not f.filename.startswith(str(Path(__file__).parent))]
    if not frames:
        return ""
    f = frames[-1]
    where = f.filename.strip("<>") if f.filename.startswith("<cell") else "your code" \
        if f.filename.startswith("<") else Path(f.filename).name
    return f" (line {f.lineno} of {where}: `{(f.line or '').strip()}`)"


def call(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Call the learner's `fn` on copies of the inputs; fail helpfully on anything but a clean return."""
    given_args, given_kwargs = _snapshot((args, kwargs))  # the learner works on copies of the inputs
    return _invoke(fn, (args, kwargs), given_args, given_kwargs)


def call_observed(observe: Callable[[], Any], fn: Callable, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """Like `call`, and also `observe()` evaluated right after `fn` returns, in the process where `fn` ran:
    (output, observation). For behaviour a check must see — how often a wrapped forward function was called,
    hooks left on a model, gradients through the learner's output — which lives where the learner's code ran.
    `observe` must return plain data (tensors, numbers, strings, containers)."""
    given_args, given_kwargs = _snapshot((args, kwargs))
    return _invoke(fn, (args, kwargs), given_args, given_kwargs, observe)


def _invoke_observed(fn, before, given_args, given_kwargs, observe):
    out = _invoke_here(fn, before, given_args, given_kwargs)
    return out if observe is None else (out, observe())


def _invoke(fn: Callable, before: Any, given_args: tuple, given_kwargs: dict, observe=None) -> Any:
    if not callable(fn):
        raise CheckFailure(f"expected a function, got {type(fn).__name__}")
    if not isolation.available():
        return _invoke_observed(fn, before, given_args, given_kwargs, observe)
    # a partial, not a closure: the child blanks the locals of every frame above it (see isolation)
    running = _RUNNING[-1] if _RUNNING else _Running(None, DEFAULT_TIMEOUT_S)
    running.calls += 1
    outcome = isolation.run_isolated(functools.partial(_invoke_observed, fn, before, given_args, given_kwargs,
                                                       observe), running.limit_s, seed=running.calls)
    if outcome.output:
        print(outcome.output, end="" if outcome.output.endswith("\n") else "\n")
    if outcome.status == "ok":
        return outcome.value
    if outcome.status == "died":
        raise CheckTimeout(outcome.message) if "timed out" in outcome.message else CheckFailure(outcome.message)
    if outcome.kind == "NotImplementedYet":
        raise NotImplementedYet(outcome.message)
    if outcome.kind in ("CheckFailure", "CheckTimeout"):
        raise CheckFailure(outcome.message)
    raise CheckFailure(f"your function raised {outcome.kind}: {outcome.message}")


def _invoke_here(fn: Callable, before: Any, given_args: tuple, given_kwargs: dict) -> Any:
    try:
        with _trap_reference_calls(fn):
            out = fn(*given_args, **given_kwargs)
    except ReferenceCalled as e:
        what = e.args[0] if "complete implementation" in e.args[0] else f"the reference solution ({e.args[0]})"
        raise CheckFailure(f"your function calls {what}; write it yourself") from None
    except NotImplementedError:
        raise NotImplementedYet("not implemented yet: replace `raise NotImplementedError()` with your code") from None
    except CheckFailure:
        raise
    except Exception as e:  # learner code may raise anything; report it, don't crash the grader
        msg = f"{type(e).__name__}: {e}".strip()
        raise CheckFailure(f"your function raised {msg}{_learner_frame(e.__traceback__)}") from None
    except BaseException as e:  # SystemExit, KeyboardInterrupt raised BY the learner's code
        raise CheckFailure(f"your function raised {type(e).__name__}{_learner_frame(e.__traceback__)}: return a "
                           "value instead of exiting or interrupting") from None
    if _changed(before, (given_args, given_kwargs)):
        raise CheckFailure(
            "your function modified its input in place (e.g. `x += ...`, `x[...] = ...`, `.relu_()`): "
            "use out-of-place operations or work on a `.clone()`"
        )
    return out


# --------------------------------------------------------------------------------- comparisons


def _fmt_shape(t: Tensor) -> str:
    return "[" + ", ".join(str(s) for s in t.shape) + "]"


def _close(a: Tensor, b: Tensor, atol: float, rtol: float) -> bool:
    if a.shape != b.shape:
        return False
    return bool(torch.allclose(a.double(), b.double(), atol=atol, rtol=rtol, equal_nan=True))


def expect_close(
    got: Any,
    want: Tensor,
    *,
    what: str = "output",
    case: str = "",
    atol: float = 1e-5,
    rtol: float = 1e-4,
    mistakes: Mapping[str, Tensor] | None = None,
    factors: Mapping[str, float] | None = None,
    check_dtype: bool | None = None,
) -> None:
    """Pass if `got` matches `want`; otherwise raise CheckFailure naming the most likely mistake.

    mistakes: hint -> the output a specific plausible mistake would produce on the same inputs.
    factors: name -> value of constants the learner may have multiplied or divided by by mistake.
    """
    where = f" ({case})" if case else ""
    if not isinstance(got, Tensor):
        raise CheckFailure(f"{what} should be a torch.Tensor, got {type(got).__name__}{where}")
    if got.device != want.device:
        raise CheckFailure(
            f"{what} is on {got.device}, expected {want.device}{where}: create new tensors on the input's "
            "device (e.g. `torch.zeros(..., device=x.device)`)"
        )
    if torch.isnan(want).any() or torch.isinf(want).any():
        raise RuntimeError("reference produced NaN/inf: this is a bug in the check, not in your code")
    got_d = got.detach()
    for hint, bad in (mistakes or {}).items():  # a specific mistake explains more than a generic diff
        if bad.shape == got_d.shape and not _close(want, bad, atol, rtol) and _close(got_d, bad, atol, rtol):
            raise CheckFailure(f"{hint}{where}")
    if got_d.shape != want.shape:
        if got_d.ndim >= 2 and got_d.transpose(-1, -2).shape == want.shape and _close(
            got_d.transpose(-1, -2), want, atol, rtol
        ):
            raise CheckFailure(f"{what} is transposed: expected shape {_fmt_shape(want)}, got "
                               f"{_fmt_shape(got_d)}{where}")
        raise CheckFailure(f"{what} has shape {_fmt_shape(got_d)}, expected {_fmt_shape(want)}{where}")
    if check_dtype is None:  # by default: as the docstring says (see states_dtype)
        check = _RUNNING[-1].check if _RUNNING and _RUNNING[-1].check is not None else None
        check_dtype = states_dtype(check.chapter, check.exercise) if check else True
    if check_dtype and got_d.dtype != want.dtype:
        raise CheckFailure(f"{what} has dtype {got_d.dtype}, expected {want.dtype}{where}"
                           + (": a Python float or NumPy array may have made it float64"
                              if got_d.dtype == torch.float64 else ""))
    if torch.isnan(got_d).any() or torch.isinf(got_d).any():
        n_bad = int((~torch.isfinite(got_d.double())).sum())
        raise CheckFailure(f"{what} contains {n_bad} NaN/inf value(s){where}: look for a division by zero "
                           "or the log/sqrt of something that can be 0")
    if _close(got_d, want, atol, rtol):
        return
    g, w = got_d.double().flatten(), want.double().flatten()
    if g.numel() > 0 and _close(-g, w, atol, rtol):
        raise CheckFailure(f"{what} has the wrong sign (it is minus the expected value){where}")
    if want.ndim >= 2 and want.shape[-1] == want.shape[-2] and _close(got_d.transpose(-1, -2), want, atol, rtol):
        raise CheckFailure(f"{what} is transposed (rows and columns swapped){where}")
    if float(w @ w) > 0:
        scale = float(g @ w) / float(w @ w)
        if abs(scale - 1) > 1e-3 and _close(g, scale * w, atol, rtol * 10):
            named = _name_factor(scale, factors or {})
            raise CheckFailure(f"{what} is the expected value times {scale:.4g}{named}{where}")
    if g.numel() > 1:
        offset = float((g - w).mean())
        if abs(offset) > atol and _close(g - offset, w, atol, rtol):
            raise CheckFailure(f"{what} is off by a constant {offset:+.4g} everywhere{where}")
    diff = (g - w).abs()
    i = int(diff.argmax())
    index = tuple(int(j) for j in torch.unravel_index(torch.tensor(i), want.shape)) if want.ndim else ()
    raise CheckFailure(
        f"{what} differs from the expected value{where}: largest error {float(diff[i]):.3g} at index "
        f"{list(index)} (expected {float(w[i]):.4g}, got {float(g[i]):.4g})"
    )


def _name_factor(scale: float, factors: Mapping[str, float]) -> str:
    """' (= 1/n_features: ...)' when the scale matches a named constant, its inverse or its square."""
    for name, value in factors.items():
        for candidate, label in ((value, name), (1 / value, f"1/{name}"), (value**2, f"{name}²"),
                                 (1 / value**2, f"1/{name}²")):
            if value not in (0, 1) and math.isclose(scale, candidate, rel_tol=1e-3):
                return f" (= {label}: check where you sum, average, multiply or divide)"
    if math.isclose(abs(scale), 2, rel_tol=1e-3) or math.isclose(abs(scale), 0.5, rel_tol=1e-3):
        return " (a factor of 2: a doubled or halved term?)"
    return ""


def as_number(got: Any, what: str = "the result") -> float:
    """A learner's scalar result as a float: Python/NumPy numbers and one-element tensors are accepted."""
    if isinstance(got, Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, np.generic) and got.size == 1:
        got = got.item()
    if not isinstance(got, (int, float)) or isinstance(got, bool):
        raise CheckFailure(f"return a number (a Python float) as {what}, got {type(got).__name__}")
    return float(got)


def expect_equal_answer(got: Any, want: Any, hints: Mapping[Any, str], *, default_hint: str) -> None:
    """For drills: exact answers (ints, option letters) with a hint per anticipated wrong answer."""
    if isinstance(got, str):
        got = got.strip().lower()
    if isinstance(got, Tensor) and got.numel() == 1:
        got = got.item()
    if got == want:
        return
    raise CheckFailure(hints.get(got, default_hint))


# ----------------------------------------------------------------------------------- running


@dataclass
class Result:
    exercise: str
    passed: bool
    points: int
    max_points: int
    message: str
    seconds: float = 0.0


@dataclass
class Report:
    chapter: str
    results: list[Result] = field(default_factory=list)

    @property
    def score(self) -> int:
        return sum(r.points for r in self.results)

    @property
    def max_score(self) -> int:
        return sum(r.max_points for r in self.results)

    def table(self) -> str:
        rows = [("exercise", "points", "result")]
        for r in self.results:
            rows.append((r.exercise, f"{r.points}/{r.max_points}", ("✓ " if r.passed else "✗ ") + r.message))
        w0 = max(len(r[0]) for r in rows)
        w1 = max(len(r[1]) for r in rows)
        lines = [f"{a.ljust(w0)}  {b.rjust(w1)}  {c}" for a, b, c in rows]
        lines.insert(1, "-" * (w0 + w1 + 12))
        lines.append(f"score: {self.score}/{self.max_score}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


class _Alarm:
    """Per-check time limit: SIGALRM in the main thread (interrupts Python-level loops)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.armed = False

    def _fire(self, signum, frame):  # noqa: ARG002
        raise CheckTimeout(f"timed out after {self.seconds:g} s: look for an infinite loop or a far too "
                           "slow implementation (a Python loop over elements instead of tensor ops?)")

    def __enter__(self):
        if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
            self.armed = True
        return self

    def __exit__(self, *exc):
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)
        return False


def run_check(check: Check, fn: Any, timeout_s: float | None = None) -> Result:
    """Run one check in isolation: any failure, exception or timeout scores this exercise 0."""
    start = time.perf_counter()
    passed, message = False, ""
    try:
        if fn is None:
            raise CheckFailure(f"`{check.exercise}` is not defined: run the cell that defines it")
        limit = timeout_s or check.timeout_s
        # Isolated learner calls are limited by CPU time in their child; the wall-clock alarm is then only a
        # backstop for the check as a whole (its reference runs are trusted code and may be slow on a busy machine).
        alarm = limit if not isolation.available() else max(isolation.WALL_MIN_S, 30 * limit)
        hidden = hidden_seed()
        with (_Alarm(alarm), torch.random.fork_rng(devices=[]), torch.enable_grad(),
              contextlib.redirect_stderr(io.StringIO())):  # progress bars of the reference's own runs
            # the recorded cases; with MECHINTERP_HIDDEN_SEED, then the same checks on fresh cases
            try:
                for offset in [0, hidden] if hidden else [0]:
                    _use_offset(check, offset)
                    torch.manual_seed(0)
                    _RUNNING.append(_Running(check, limit))
                    try:
                        check.func(fn)
                    except CheckFailure as e:
                        if offset:
                            raise CheckFailure(f"{e.args[0] if e.args else 'check failed'} [on fresh inputs "
                                               "drawn at grading time]") from None
                        raise
                    finally:
                        _RUNNING.pop()
            finally:
                _use_offset(check, 0)
        passed, message = True, "passed"
    except CheckFailure as e:
        message = str(e.args[0]) if e.args else "check failed"
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # SystemExit, errors raised while comparing odd return values, ...
        message = f"the check could not run your function: {type(e).__name__}: {e}"
    return Result(check.exercise, passed, check.points if passed else 0, check.points, message,
                  time.perf_counter() - start)
