"""Shared by every chapter's check tests: `ref`, the chapter's reference namespace (each test module names its
chapter in a module-level `CH`)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def ref(request) -> dict:
    from mechinterp.autograder.build import reference_namespace

    return reference_namespace(request.module.CH)
