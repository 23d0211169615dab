"""Check harness, per-chapter checks, notebook builder, nbgrader integration and the CLI.

    from mechinterp.autograder import grade, check
    report = grade("superposition", globals())      # or a module, or a dict
    check("superposition", "feature_importance", feature_importance)
"""

from __future__ import annotations

from mechinterp.autograder.grading import check, grade
from mechinterp.autograder.harness import CheckFailure, Report, Result

__all__ = ["check", "grade", "CheckFailure", "Report", "Result"]


def _unfinished_message(shell, etype, value, tb, tb_offset=None):
    """IPython handler for NotImplementedError: when an exercise stub raised it (a function defined in the
    notebook, raising with no message), one line naming the exercise instead of a traceback. It is still an
    error (nbgrader scores the cell 0 and Run All stops); any other NotImplementedError keeps its traceback."""
    last = tb
    while last is not None and last.tb_next is not None:
        last = last.tb_next
    frame = last.tb_frame if last is not None else None
    if frame is None or value.args or frame.f_code.co_name.startswith("<") \
            or frame.f_globals.get("__name__") != "__main__":
        return shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
    name = frame.f_code.co_name
    stb = [f"\x1b[33m✗ {name} is not written yet (its body still raises NotImplementedError), and this cell "
           f"needs it: write {name}, run its check, then run this cell again.\x1b[0m"]
    shell._showtraceback(etype, value, stb)
    return stb


def _install_notebook_messages() -> None:
    """In a Jupyter/IPython kernel, unfinished exercises are reported in one line (see `_unfinished_message`)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        return
    shell = get_ipython()
    if shell is not None and not getattr(shell, "_mechinterp_messages", False):
        shell.set_custom_exc((NotImplementedError,), _unfinished_message)
        shell._mechinterp_messages = True


_install_notebook_messages()
