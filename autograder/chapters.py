"""The chapter registry: chapters are found from their sources, `course/chapters/NN_slug.py`."""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from types import ModuleType

_SOURCE = re.compile(r"^(\d\d)_([a-z0-9_]+)\.py$")
_CHECK_CALL = re.compile(r'^check\(\s*"[a-z0-9_]+",\s*"([A-Za-z0-9_]+)"', re.MULTILINE)


@dataclass(frozen=True)
class Chapter:
    number: int
    slug: str
    source: Path

    @property
    def stem(self) -> str:  # "01_superposition": notebook and nbgrader assignment name
        return f"{self.number:02d}_{self.slug}"

    def solutions(self) -> ModuleType:
        return importlib.import_module(f"mechinterp.solutions.{self.slug}")

    def checks(self) -> dict:
        """exercise name -> Check, in the order the notebook checks them (its check cells, top to bottom)."""
        from mechinterp.autograder.harness import REGISTRY

        importlib.import_module(f"mechinterp.autograder.checks.{self.slug}")
        registered = REGISTRY.get(self.slug, {})
        order = {name: i for i, name in enumerate(self.check_order())}
        return dict(sorted(registered.items(), key=lambda item: order.get(item[0], len(order))))

    def check_order(self) -> list[str]:
        """The exercises in the order the chapter's check cells name them."""
        return _CHECK_CALL.findall(self.source.read_text(encoding="utf-8"))


@cache
def chapters() -> dict[str, Chapter]:
    folder = Path(str(resources.files("mechinterp.course.chapters")))
    found = {}
    for path in sorted(folder.iterdir()):
        m = _SOURCE.match(path.name)
        if m:
            found[m.group(2)] = Chapter(int(m.group(1)), m.group(2), path)
    return found


class UnknownName(KeyError):
    """An unknown chapter or exercise name (a KeyError; the CLI reports exactly these as usage errors)."""


def get_chapter(name: str) -> Chapter:
    """Accept a slug ('superposition'), a number ('1', '01') or a stem ('01_superposition')."""
    table = chapters()
    key = name.strip().lower()
    for ch in table.values():
        if key in (ch.slug, ch.stem, str(ch.number), f"{ch.number:02d}"):
            return ch
    listing = ", ".join(f"{c.number:02d} {c.slug}" for c in table.values())
    raise UnknownName(f"unknown chapter {name!r}; chapters: {listing}")
