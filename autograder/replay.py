"""Answer packs: checks that grade without the reference code on the learner's machine.

A check compares the learner's output with what the reference (`mechinterp.solutions.<chapter>`, the `ref` of
each checks module) returns on the same seeded inputs, and with the outputs of anticipated mistakes, many of
which are computed from reference calls too. `record(slug)` runs every check of a chapter once against the
reference with `ref` replaced by a recorder: each reference call is stored as (function, digest of its
arguments) -> its result, as plain data (tensors, numbers, strings, containers). `Replayer` then stands in for
`ref`: a call with the same arguments returns the recorded result. The check code itself (inputs, tolerances,
mistakes and their hints, the diagnosis order) runs unchanged, so a replayed verdict is the live verdict.

Drill answers are stored as SHA-256 digests, never as text. A reference call whose arguments were never
recorded (a check that feeds the learner's own output to the reference) raises `NotReplayable`, and the check
reports that this exercise is graded only with the full package (`tests/chapters` lists which, by measuring).

    pack = record("induction_heads")            # {"calls": {name: {digest: result}}, "answers": ...}
    save_pack(pack, path); ref = Replayer(load_pack(path))
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import importlib
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch
from mechinterp.autograder.harness import CheckFailure, clear_check_caches
from torch import Tensor, nn

PACK_FORMAT = 1


class NotReplayable(CheckFailure):
    """A reference call the pack does not hold: this exercise needs the full package to be graded."""


# ------------------------------------------------------------------------------------ argument digests


def digest(value: Any) -> str:
    h = hashlib.sha256()
    _feed(h, value, 0)
    return h.hexdigest()[:32]


def _feed(h, value: Any, depth: int) -> None:  # noqa: C901 - one branch per kind of argument
    if depth > 40:
        raise NotReplayable("an argument nested too deeply to digest")
    tag = lambda s: h.update(s.encode() + b"\0")  # noqa: E731
    if value is None or isinstance(value, (bool, int, str)):
        tag(f"{type(value).__name__}:{value!r}")
    elif isinstance(value, float):
        tag("float:" + struct.pack("<d", value).hex())
    elif isinstance(value, Tensor):
        t = value.detach().cpu().contiguous()
        tag(f"tensor:{t.dtype}:{tuple(t.shape)}")
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(value, torch.Generator):
        tag("generator")
        h.update(value.get_state().numpy().tobytes())
    elif isinstance(value, (torch.dtype, torch.device)):
        tag(f"{type(value).__name__}:{value}")
    elif isinstance(value, (list, tuple)):
        tag(f"{type(value).__name__}:{len(value)}")
        for v in value:
            _feed(h, v, depth + 1)
    elif isinstance(value, dict):
        tag(f"dict:{len(value)}")
        for k in sorted(value, key=repr):
            _feed(h, k, depth + 1)
            _feed(h, value[k], depth + 1)
    elif isinstance(value, (set, frozenset)):
        tag(f"set:{len(value)}")
        for v in sorted(value, key=repr):
            _feed(h, v, depth + 1)
    elif isinstance(value, functools.partial):
        tag("partial")
        _feed(h, (value.func, value.args, value.keywords), depth + 1)
    elif isinstance(value, nn.Module):
        tag(f"module:{type(value).__qualname__}")
        for name, t in value.state_dict().items():
            tag(name)
            _feed(h, t, depth + 1)
        _feed(h, {k: v for k, v in vars(value).items() if not k.startswith("_")}, depth + 1)
    elif callable(value) and hasattr(value, "__qualname__"):
        code = getattr(value, "__code__", None)
        tag(f"callable:{getattr(value, '__module__', '')}.{value.__qualname__}:"
            f"{code.co_firstlineno if code else ''}")
    elif dataclasses.is_dataclass(value) or hasattr(value, "__dict__"):
        tag(f"object:{type(value).__qualname__}")
        fields = vars(value) if hasattr(value, "__dict__") else {}
        if dataclasses.is_dataclass(value):
            fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        _feed(h, fields, depth + 1)
    else:
        raise NotReplayable(f"an argument of type {type(value).__name__} cannot be digested")


# --------------------------------------------------------------------------------- recording


def _plain(value: Any, depth: int = 0) -> Any:
    """A reference result as plain data, or a marker for what cannot be stored."""
    if isinstance(value, Tensor):
        return value.detach().cpu().clone()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        items = [_plain(v, depth + 1) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict) and all(isinstance(k, (str, int)) for k in value):
        return {k: _plain(v, depth + 1) for k, v in value.items()}
    return {"__unreplayable__": type(value).__name__}


def _is_drill(name: str) -> bool:
    return name.startswith("drill_")


def _answer_digest(answer: Any) -> str:
    if isinstance(answer, str):
        answer = answer.strip().lower()
    return hashlib.sha256(repr(answer).encode()).hexdigest()


class Recorder:
    """Stands in for a solutions module: calls the real reference and stores each result."""

    def __init__(self, module):
        self._module, self.calls, self.answers = module, {}, {}

    def __getattr__(self, name: str):
        value = getattr(self._module, name)
        if not callable(value) or isinstance(value, type):
            return value

        def recorded(*args, **kwargs):
            try:
                key = digest((args, kwargs))  # before the call: a generator argument advances during it
            except NotReplayable:
                key = None  # not stored: replaying this call raises NotReplayable
            result = value(*args, **kwargs)
            if _is_drill(name):
                self.answers[name] = _answer_digest(result)
            elif key is not None:
                self.calls.setdefault(name, {})[key] = _plain(result)
            return result

        return recorded


def computed(ref: Any, name: str, thunk, *key: Any) -> Any:
    """A value a check derives from the reference in a way a plain call cannot carry (gradients through it, a
    hook it returns): `thunk()` live, stored under (name, digest of `key`) when recording, read back when
    replaying."""
    if isinstance(ref, Replayer):
        result = ref._pack.get("calls", {}).get(name, {}).get(digest(key))
        if result is None:
            raise NotReplayable(f"this check needs {name} on inputs the answer pack does not hold: it is graded "
                                "only with the full course package")
        return _fresh(result)
    result = thunk()
    if isinstance(ref, Recorder):
        ref.calls.setdefault(name, {})[digest(key)] = _plain(result)
    return result


class HashedAnswer:
    """A drill's answer known only by its digest: equal to the learner's answer when the digests match."""

    def __init__(self, sha: str):
        self.sha = sha

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, Tensor) and other.numel() == 1:
            other = other.item()
        return _answer_digest(other) == self.sha

    def __hash__(self) -> int:
        return hash(self.sha)

    def __repr__(self) -> str:
        return "<the drill's answer>"


class Replayer:
    """Stands in for a solutions module from a pack: a call returns the result recorded for its arguments."""

    def __init__(self, pack: dict):
        self._pack = pack

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        pack = self._pack
        if name in pack.get("constants", {}):
            return pack["constants"][name]
        if name in pack.get("answers", {}):
            sha = pack["answers"][name]
            return lambda *a, **k: HashedAnswer(sha)
        calls = pack.get("calls", {}).get(name)
        if calls is None:
            raise NotReplayable(f"the answer pack has no record of the reference's {name}: this exercise is "
                                "graded only with the full course package")

        def replayed(*args, **kwargs):
            result = calls.get(digest((args, kwargs)))
            if result is None or (isinstance(result, dict) and "__unreplayable__" in result):
                raise NotReplayable(f"this check needs the reference's {name} on inputs the answer pack does not "
                                    "hold: it is graded only with the full course package")
            return _fresh(result)

        return replayed


def _fresh(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.clone()
    if isinstance(value, list):
        return [_fresh(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_fresh(v) for v in value)
    if isinstance(value, dict):
        return {k: _fresh(v) for k, v in value.items()}
    return value


@contextlib.contextmanager
def _ref_replaced(slug: str, stand_in) -> Iterator[Any]:
    module = importlib.import_module(f"mechinterp.autograder.checks.{slug}")
    saved = module.ref
    module.ref = stand_in
    clear_check_caches(module)
    try:
        yield module
    finally:
        module.ref = saved
        clear_check_caches(module)


def record(slug: str) -> dict:
    """Run every check of chapter `slug` against the reference, recording every reference call."""
    from mechinterp.autograder.build import reference_namespace
    from mechinterp.autograder.chapters import get_chapter
    from mechinterp.autograder.harness import run_check

    ch = get_chapter(slug)
    real = ch.solutions()
    learner = reference_namespace(ch)  # the reference bodies as a learner's notebook would define them
    recorder = Recorder(real)
    with _ref_replaced(slug, recorder):
        verdicts = {name: run_check(chk, learner[name]) for name, chk in ch.checks().items()}
    constants = {k: _plain(v) for k, v in vars(real).items() if not k.startswith("_")
                 and isinstance(v, (int, float, str, tuple, list, dict, Tensor)) and not callable(v)
                 and "__unreplayable__" not in repr(_plain(v))}
    return {"format": PACK_FORMAT, "chapter": slug, "calls": recorder.calls, "answers": recorder.answers,
            "constants": constants, "reference_passes": {n: r.passed for n, r in verdicts.items()}}


@contextlib.contextmanager
def replaying(slug: str, pack: dict) -> Iterator[None]:
    """Within the block, chapter `slug`'s checks read the reference from `pack` instead of the code."""
    with _ref_replaced(slug, Replayer(pack)):
        yield


def _encode(value: Any, tensors: dict[str, Tensor]) -> Any:
    """JSON for everything but tensors, which go to `tensors` under a key the JSON names."""
    if isinstance(value, Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = value.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, tensors) for v in value]}
    if isinstance(value, list):
        return [_encode(v, tensors) for v in value]
    if isinstance(value, dict):
        return {"__dict__": [[k, _encode(v, tensors)] for k, v in value.items()]}  # keys: str or int, kept
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"a pack holds plain data, not {type(value).__name__}")


def _decode(value: Any, tensors: dict[str, Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__tuple__" in value:
            return tuple(_decode(v, tensors) for v in value["__tuple__"])
        return {k: _decode(v, tensors) for k, v in value["__dict__"]}
    return value


def save_pack(pack: dict, path: Path) -> None:
    """One safetensors file: the tensors, and the rest of the pack as JSON in its metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, Tensor] = {}
    tree = json.dumps(_encode(pack, tensors))
    path.write_bytes(safetensors.torch.save(tensors, metadata={"pack": tree}))


def load_pack(path: Path) -> dict:
    """Packs are data (safetensors and JSON): loading one runs no code."""
    with safetensors.safe_open(str(path), "pt") as f:
        tree = json.loads(f.metadata()["pack"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
    return _decode(tree, tensors)


def packs_dir() -> Path:
    """Where the student kit installs its packs (`MECHINTERP_PACKS` overrides it, e.g. for a kit being built)."""
    import os

    return Path(os.environ.get("MECHINTERP_PACKS") or Path(__file__).parent / "packs")


def reference_module(slug: str):
    """What a checks module uses as `ref`: the solutions module when it is installed, otherwise (the student kit)
    a `Replayer` over the chapter's answer pack."""
    try:
        return importlib.import_module(f"mechinterp.solutions.{slug}")
    except ImportError:
        path = packs_dir() / f"{slug}.safetensors"
        if not path.exists():
            raise ImportError(f"neither mechinterp.solutions.{slug} nor its answer pack ({path}) is installed") \
                from None
        return Replayer(load_pack(path))
