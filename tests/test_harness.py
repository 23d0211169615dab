"""The check harness itself: diagnostics, isolation, timeouts, the honesty guard, determinism, the public API."""

from __future__ import annotations

import pytest
import torch
from mechinterp.autograder import CheckFailure, check, grade
from mechinterp.autograder.harness import Check, call, expect_close, expect_equal_answer, run_check


def failure(got, want, **kw) -> str:
    with pytest.raises(CheckFailure) as e:
        expect_close(got, want, **kw)
    return str(e.value)


WANT = torch.arange(1.0, 13.0).reshape(3, 4)


def test_expect_close_accepts_tolerable_differences():
    expect_close(WANT + 1e-7, WANT)


@pytest.mark.parametrize("got, fragment", [
    ([1, 2], "should be a torch.Tensor"),
    (WANT.T.contiguous(), "transposed"),
    (WANT.reshape(12), "has shape [12], expected [3, 4]"),
    (WANT.double(), "float64"),
    (torch.where(WANT > 5, WANT, torch.nan), "NaN"),
    (-WANT, "wrong sign"),
    (WANT * 3, "times 3"),
    (WANT + 0.5, "off by a constant +0.5"),
    (WANT.to("meta"), "is on meta"),
])
def test_expect_close_diagnoses(got, fragment):
    assert fragment in failure(got, WANT)


def test_named_factor_and_square_transpose():
    assert "1/n_features" in failure(WANT / 4, WANT, factors={"n_features": 4})
    square = torch.arange(9.0).reshape(3, 3)
    assert "transposed" in failure(square.T, square)


def test_mistake_hint_wins_over_generic_diagnosis():
    msg = failure(WANT * 2, WANT, mistakes={"you doubled it by summing twice": WANT * 2})
    assert msg.startswith("you doubled it")


def test_generic_difference_reports_location():
    got = WANT.clone()
    got[1, 2] = 100
    assert "at index [1, 2]" in failure(got, WANT)


def test_call_reports_not_implemented_exceptions_and_mutation():
    def stub(x):
        raise NotImplementedError()

    with pytest.raises(CheckFailure, match="not implemented yet"):
        call(stub, WANT)

    def broken(x):
        return x @ torch.ones(5)

    with pytest.raises(CheckFailure, match="raised RuntimeError"):
        call(broken, WANT)

    def mutates(x):
        x += 1
        return x

    original = WANT.clone()
    with pytest.raises(CheckFailure, match="in place"):
        call(mutates, WANT)
    assert torch.equal(WANT, original)


def test_honesty_guard_rejects_calls_into_the_reference():
    from mechinterp.solutions import superposition as ref
    from mechinterp.solutions.superposition import feature_importance as imported_early

    def wrapper(k, n, d):
        return imported_early(k, n, d)

    def via_module(k, n, d):
        return ref.feature_importance(k, n, d) + 0

    for fn in (ref.feature_importance, wrapper, via_module):
        with pytest.raises(CheckFailure, match="calls the reference solution"):
            check("superposition", "feature_importance", fn)
    # the reference works normally again afterwards
    assert ref.feature_importance(1, 2, 0.5).tolist() == [[1.0, 0.5]]


def test_one_failing_exercise_does_not_stop_the_others(superposition_reference):
    learner = dict(superposition_reference)
    learner["toy_forward"] = lambda *a, **k: 1 / 0
    learner["feature_importance"] = lambda *a, **k: (_ for _ in ()).throw(SystemExit(3))
    del learner["classify_phase"]
    report = grade("superposition", learner)
    by_name = {r.exercise: r for r in report.results}
    assert not by_name["toy_forward"].passed and "ZeroDivisionError" in by_name["toy_forward"].message
    assert not by_name["feature_importance"].passed and "SystemExit" in by_name["feature_importance"].message
    assert "not defined" in by_name["classify_phase"].message
    assert by_name["feature_dimensionality"].passed
    assert report.score == report.max_score - 1 - 2 - 1


def test_timeout_scores_zero_and_returns_promptly():
    def spin():
        while True:
            pass

    result = run_check(Check("x", "spin", 2, lambda fn: call(fn), timeout_s=0.5), spin)
    assert not result.passed and result.points == 0 and "timed out" in result.message


def test_untouched_stubs_score_zero_with_not_implemented(superposition_reference):
    def stub(*args, **kwargs):
        raise NotImplementedError()

    learner = {name: stub for name in superposition_reference if not name.startswith("_")}
    report = grade("superposition", learner)
    assert report.score == 0
    assert all(r.message.startswith("not implemented yet") for r in report.results)


def test_grading_is_deterministic(superposition_reference):
    first = grade("superposition", superposition_reference)
    second = grade("superposition", superposition_reference)
    assert [(r.exercise, r.points, r.message) for r in first.results] == [
        (r.exercise, r.points, r.message) for r in second.results]
    assert first.score == first.max_score == 18


def test_check_prints_on_success_and_raises_assertion_on_failure(capsys, superposition_reference):
    check("superposition", "feature_importance", superposition_reference["feature_importance"])
    assert "✓ feature_importance: passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="start the powers at 0"):
        check("superposition", "feature_importance",
              lambda k, n, d: (d ** torch.arange(1, n + 1).float()).repeat(k, 1))
    with pytest.raises(KeyError, match="no exercise"):
        check("superposition", "nonexistent", lambda: None)


def test_check_failure_renders_without_traceback_in_ipython():
    lines = CheckFailure("hint text")._render_traceback_()
    assert len(lines) == 1 and "hint text" in lines[0]
    long = "word " * 60  # a long hint is wrapped, not cut off by a page that does not wrap error lines
    lines = CheckFailure(long)._render_traceback_()
    assert len(lines) > 2 and all(len(line) <= 100 + 9 for line in lines)  # + the colour codes
    assert " ".join(line[5:-4].strip() for line in lines).replace("✗ ", "").split() == long.split()


def test_expect_equal_answer():
    expect_equal_answer(" B ", "b", {}, default_hint="x")
    with pytest.raises(CheckFailure, match="specific"):
        expect_equal_answer(3, 2, {3: "specific"}, default_hint="generic")
    with pytest.raises(CheckFailure, match="generic"):
        expect_equal_answer(4, 2, {3: "specific"}, default_hint="generic")


def test_grade_accepts_a_module(tmp_path, monkeypatch):
    import importlib

    (tmp_path / "my_answers.py").write_text("import torch\n"
                                            "def feature_importance(k, n, d):\n"
                                            "    return (d ** torch.arange(n, dtype=torch.float32)).repeat(k, 1)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    report = grade("superposition", importlib.import_module("my_answers"))
    assert report.results[0].passed and report.score == 1


def test_dtype_is_held_to_the_reference_only_where_the_docstring_states_it():
    """float64 maths with equal values passes where the exercise names no dtype, and fails where it does."""
    from mechinterp.autograder.chapters import get_chapter
    from mechinterp.autograder.harness import states_dtype
    from mechinterp.solutions import induction_heads as ih
    from mechinterp.solutions import superposition as sp

    assert not states_dtype("induction_heads", "prev_token_score") and states_dtype("superposition",
                                                                                    "feature_importance")

    def prev_token_score_float64(pattern):
        p = pattern.double()
        return p.diagonal(-1, -2, -1).mean((0, -1))

    result = run_check(get_chapter("induction_heads").checks()["prev_token_score"], prev_token_score_float64)
    assert result.passed, result.message
    assert torch.allclose(prev_token_score_float64(torch.eye(3)[None, None].expand(1, 2, 3, 3).clone()).float(),
                          ih.prev_token_score(torch.eye(3)[None, None].expand(1, 2, 3, 3).clone()))

    def feature_importance_float64(n_instances, n_features, decay):
        return (decay ** torch.arange(n_features, dtype=torch.float64)).repeat(n_instances, 1)

    result = run_check(get_chapter("superposition").checks()["feature_importance"], feature_importance_float64)
    assert not result.passed and "dtype" in result.message
    assert sp.feature_importance(2, 3, 0.5).dtype == torch.float32


def test_a_hidden_seed_adds_a_pass_on_fresh_cases_after_the_recorded_one(monkeypatch):
    """Recorded cases first (a pack's), then with MECHINTERP_HIDDEN_SEED the same check on shifted cases, whose
    failure says so; the seeds return to the recorded ones afterwards."""
    from mechinterp.autograder import harness

    seen = []

    def probe(fn):
        seen.append(harness.case_seed(5))
        fn(seen[-1])

    chk = harness.Check("drill", "probe", 1, probe)
    monkeypatch.delenv("MECHINTERP_HIDDEN_SEED", raising=False)
    assert harness.run_check(chk, lambda s: None).passed and seen == [5]
    monkeypatch.setenv("MECHINTERP_HIDDEN_SEED", "2")
    seen.clear()
    assert harness.run_check(chk, lambda s: None).passed
    assert seen[0] == 5 and seen[1] not in (5, harness.case_seed(6))
    assert harness.case_seed(5) == 5  # back to the recorded cases

    def memorised(seed):  # right on the recorded case only
        if seed != 5:
            raise harness.CheckFailure("wrong")

    def check_memorised(fn):
        fn(harness.case_seed(5))

    result = harness.run_check(harness.Check("drill", "m", 1, check_memorised), memorised)
    assert not result.passed and "fresh inputs drawn at grading time" in result.message, result.message
