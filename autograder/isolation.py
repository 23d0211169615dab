"""Run learner code in a forked child process, so that nothing it does can reach the grader.

`run_isolated(thunk, cpu_seconds)` forks; the child runs `thunk()` (the learner's call, with the harness's traps)
and sends back, through a pipe, only plain data: base `torch.Tensor`s (any subclass is rebuilt as a plain
tensor), Python numbers, strings, lists, tuples and dicts. The parent reads it with `torch.load(weights_only=True)`,
which refuses anything else, and does all comparing and diagnosing itself. So an exercise that calls
`os._exit`, raises `KeyboardInterrupt`/`SystemExit`, loops forever, switches off timers, starts threads,
monkeypatches torch or the harness, or changes global torch state (default dtype, threads, seeds) affects only
its own child, and scores only its own exercise 0.

On Linux (x86_64, aarch64) the child of a learner call also gets a seccomp filter: it may send signals only to
itself, and may not trace or write into another process, so it cannot kill the grader (its parent) either.

Time limits are CPU time of the child (RLIMIT_CPU), not wall-clock time: a machine busy with other work does
not turn a correct, slower run into a timeout. A child that waits without computing (sleep, input, a lock) is
stopped by a generous wall-clock backstop.

Not isolated (the call runs in-process, with the same traps as before): platforms without `fork`, a process that
has initialised CUDA (CUDA does not survive a fork), or `MECHINTERP_ISOLATE=0`.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import io
import os
import resource
import select
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

WALL_FACTOR, WALL_MIN_S = 6.0, 60.0  # wall-clock backstop: max(WALL_MIN_S, WALL_FACTOR x the CPU limit)
_IN_CHILD = False


def available() -> bool:
    if _IN_CHILD or os.environ.get("MECHINTERP_ISOLATE", "1") == "0" or not hasattr(os, "fork"):
        return False
    return not (torch.cuda.is_available() and torch.cuda.is_initialized())


@dataclass
class Outcome:
    status: str  # "ok" (value set), "fail" (message: the learner's failure), "died" (message: what happened)
    value: Any = None
    message: str = ""
    kind: str = ""  # for "fail": the CheckFailure subclass name raised in the child
    output: str = ""  # what the learner's code printed


class Unsupported:
    """Stands for a returned object that cannot cross to the grader (it is not plain data)."""

    def __init__(self, type_name: str):
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<{self.type_name}>"


def plain(value: Any, depth: int = 0) -> Any:
    """`value` as plain data (base tensors, numbers, strings, containers); other objects become a marker dict."""
    if depth > 32:
        return {"__unsupported__": "a structure nested too deeply"}
    if isinstance(value, Tensor):
        with torch._C.DisableTorchFunctionSubclass():
            t = torch.Tensor.as_subclass(value.detach(), Tensor)
            if t.device.type == "meta":
                return {"__unsupported__": "meta tensor"}
            t = t.cpu().clone().contiguous()
            # the graph cannot cross processes; whether the learner's output was attached to one can
            return t.requires_grad_(True) if value.requires_grad and t.is_floating_point() else t
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, bool):
        return bool.__bool__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value.view(np.ndarray), copy=True))
    if isinstance(value, np.generic):
        return plain(value.item(), depth + 1)
    if isinstance(value, list):  # the base types' iterators: a subclass's own __iter__ does not run
        return [plain(v, depth + 1) for v in list.__iter__(value)]
    if isinstance(value, tuple):
        return tuple(plain(v, depth + 1) for v in tuple.__iter__(value))
    if isinstance(value, dict):
        out = {}
        for k, v in dict.items(value):
            key = plain(k, depth + 1)
            if not isinstance(key, (str, int, float, bool)):
                return {"__unsupported__": "a dict with non-scalar keys"}
            out[key] = plain(v, depth + 1)
        return out
    return {"__unsupported__": type(value).__name__}


def _restore(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__unsupported__"}:
            return Unsupported(str(value["__unsupported__"]))
        return {k: _restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_restore(v) for v in value)
    return value


def _scrub_callers(frame) -> None:
    """Blank the locals of every frame above `frame`: the child never returns into them, and the check's
    expected values must not be readable from learner code walking the stack."""
    f = frame.f_back
    while f is not None:
        if f.f_locals is f.f_globals:  # a module (or notebook cell) frame: its locals ARE the learner's globals
            f = f.f_back
            continue
        try:  # cells stay: closures defined in these frames (the check's own helpers) read them
            keep = set(f.f_code.co_cellvars) | set(f.f_code.co_freevars)
            names = [n for n in f.f_locals if n not in keep]
            if sys.version_info >= (3, 13):
                for name in names:
                    f.f_locals[name] = None
            else:
                loc = f.f_locals
                for name in names:
                    loc[name] = None
                ctypes.pythonapi.PyFrame_LocalsToFast(ctypes.py_object(f), ctypes.c_int(1))
        except Exception:  # noqa: BLE001 - best effort; never stop the child over it
            pass
        f = f.f_back


# seccomp filter for a learner call's child: no signal to any process but itself (the grader is its parent), no
# tracing or writing another process's memory. Per architecture: (AUDIT_ARCH, syscalls whose first argument
# must be the child's own pid, syscalls refused outright).
_SYSCALLS = {
    "x86_64": (0xC000003E, (62, 200, 234, 129, 297), (424, 101, 310, 311)),  # kill tkill tgkill rt_sig*queueinfo;
    "aarch64": (0xC00000B7, (129, 130, 131, 138, 240), (424, 117, 270, 271)),  # pidfd_send_signal ptrace vm_rw
}


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def _forbid_signalling_others() -> bool:
    """Install the filter in this process (a learner call's child); False where the platform has none."""
    import platform

    table = _SYSCALLS.get(platform.machine())
    if table is None or not sys.platform.startswith("linux"):
        return False
    arch, checked, refused = table
    ld, jeq, ret = 0x20, 0x15, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, BPF_RET|K
    allow, deny = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM
    first_allow = 3 + len(checked) + len(refused)
    check_pid, last_deny = first_allow + 1, first_allow + 4
    prog = [(ld, 0, 0, 4), (jeq, 0, first_allow - 2, arch), (ld, 0, 0, 0)]
    for i, nr in enumerate(checked):
        prog.append((jeq, check_pid - (3 + i) - 1, 0, nr))
    for i, nr in enumerate(refused):
        prog.append((jeq, last_deny - (3 + len(checked) + i) - 1, 0, nr))
    prog += [(ret, 0, 0, allow), (ld, 0, 0, 16), (jeq, 0, 1, os.getpid()), (ret, 0, 0, allow), (ret, 0, 0, deny)]
    filters = (_SockFilter * len(prog))(*[_SockFilter(*f) for f in prog])
    fprog = _SockFprog(len(prog), filters)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, ctypes.c_ulong(1), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        return False  # PR_SET_NO_NEW_PRIVS
    return libc.prctl(22, ctypes.c_ulong(2), ctypes.byref(fprog), ctypes.c_ulong(0), ctypes.c_ulong(0)) == 0


def signal_guard_works() -> bool:
    """Whether this machine lets a child install the filter and then refuses its signal to the parent (probed
    with signal 0, which only asks whether the process exists)."""
    if not hasattr(os, "fork"):
        return False
    pid = os.fork()
    if pid == 0:
        try:
            if _forbid_signalling_others():
                try:
                    os.kill(os.getppid(), 0)
                except PermissionError:
                    os._exit(0)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _child(write_fd: int, thunk: Callable[[], Any], cpu_seconds: float, seed: int, nested: bool) -> None:
    global _IN_CHILD
    _IN_CHILD = not nested
    status = 0
    try:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig in (signal.SIGALRM, signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        soft = max(1, int(cpu_seconds + 0.999))
        resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 2))  # SIGXCPU at soft, SIGKILL at hard
        gc.disable()  # a collection would touch (and so copy) every page of the parent's heap
        torch.set_num_threads(1)  # the parent's OpenMP pool does not survive a fork
        if not nested:  # (a nested child must still be able to stop its own children)
            _forbid_signalling_others()  # the learner's code cannot kill or trace the grader
        # Each call gets its own (reproducible) random state, as successive in-process calls would: code that
        # ignores a seed argument then gives different results on two calls, and a check can see it.
        torch.manual_seed(10_007 * seed + 1)
        np.random.seed(seed + 1)
        __import__("random").seed(seed + 1)
        printed = io.StringIO()
        payload: dict
        _scrub_callers(sys._getframe())
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):  # no progress bars
            try:
                payload = {"status": "ok", "value": thunk()}
            except BaseException as e:  # noqa: BLE001 - the harness turned learner errors into CheckFailure
                payload = {"status": "fail", "message": str(e.args[0]) if e.args else type(e).__name__,
                           "kind": type(e).__name__}
        payload["output"] = printed.getvalue()[-4000:]
        try:
            payload["value"] = plain(payload.get("value"))
        except BaseException as e:  # noqa: BLE001
            payload = {"status": "fail", "message": f"your function returned something the grader cannot read "
                       f"({type(e).__name__}: {e})", "kind": "CheckFailure", "output": payload["output"]}
        buf = io.BytesIO()
        torch.save(payload, buf)
        data = buf.getvalue()
        view = memoryview(data)
        while view:
            n = os.write(write_fd, view)
            view = view[n:]
    except BaseException:  # noqa: BLE001
        status = 1
    finally:
        os._exit(status)


def run_isolated(thunk: Callable[[], Any], cpu_seconds: float, seed: int = 0, nested: bool = False) -> Outcome:
    """Run `thunk()` in a forked child with a CPU-time limit; return what happened, as plain data. nested: the
    child may isolate again (e.g. a whole grading run whose learner calls each get their own child)."""
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_fd)
        _child(write_fd, thunk, cpu_seconds, seed, nested)
    os.close(write_fd)
    wall = max(WALL_MIN_S, WALL_FACTOR * cpu_seconds)
    deadline = time.monotonic() + wall
    chunks, waited_out = [], False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                waited_out = True
                os.kill(pid, signal.SIGKILL)
                break
            ready, _, _ = select.select([read_fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(read_fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
    finally:
        os.close(read_fd)
        _, wait_status = os.waitpid(pid, 0)
    data = b"".join(chunks)
    if waited_out:
        return Outcome("died", message=f"did not return within {wall:.0f} s of wall-clock time while using "
                       "little CPU: is it waiting (input(), sleep, a lock)?")
    if os.WIFSIGNALED(wait_status) and os.WTERMSIG(wait_status) in (signal.SIGXCPU, signal.SIGKILL) and not data:
        return Outcome("died", message=f"timed out after {cpu_seconds:g} s of CPU time: look for an infinite loop "
                       "or a far too slow implementation (a Python loop over elements instead of tensor ops?)")
    try:
        payload = torch.load(io.BytesIO(data), weights_only=True) if data else None
    except Exception:  # noqa: BLE001 - whatever the child wrote, the grader only accepts plain data
        payload = None
    if not isinstance(payload, dict) or payload.get("status") not in ("ok", "fail"):
        if os.WIFSIGNALED(wait_status):
            what = f"was killed by signal {signal.Signals(os.WTERMSIG(wait_status)).name}"
        else:
            what = f"ended the process (exit code {os.WEXITSTATUS(wait_status)}) before returning, e.g. with " \
                   "os._exit or a crash in native code"
        return Outcome("died", message=f"your function {what}")
    return Outcome(payload["status"], _restore(payload.get("value")), str(payload.get("message", "")),
                   str(payload.get("kind", "")), str(payload.get("output", "")))
