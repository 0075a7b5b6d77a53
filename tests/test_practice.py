"""Practice mode: the answer checker, the number checker, hints, and ``tutor practice``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import strategies
import sympy
from hypothesis import assume, given
from hypothesis import strategies as st

from tutor import ExpressionError, ProblemError, derive, load, loads
from tutor.practice import (
    Item,
    check_answer,
    check_number,
    derivative_questions,
    read_expression,
    respond,
    score,
    tolerance,
)
from tutor.problem import read_text
from tutor.render import practice as render

SEED_W = derive(load("seed-w"))


# -- the acceptance table on seed-w ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "verdict", "mistake"),
    [
        ("2*x*(w*x-y)", "correct", None),
        ("x*2*(x*w - y)", "correct", None),
        ("2*w*x**2 - 2*x*y", "unsimplified", None),
        ("2*(w*x-y)", "wrong", "chain_factor"),
        ("-2*x*(w*x-y)", "wrong", "sign"),
        ("4*x*(w*x-y)", "wrong", "constant_factor"),
        ("2*w*(w*x-y)", "wrong", "other_symbol"),
        ("2*x*(w*x+y)", "wrong", None),
    ],
    ids=lambda v: str(v),
)
def test_seed_w_answers_are_judged_and_mistakes_named(text, verdict, mistake):
    judged = check_answer(SEED_W, "w", text)
    assert (judged.verdict, judged.mistake) == (verdict, mistake)


def test_missing_chain_factor_is_named_x():
    judged = check_answer(SEED_W, "w", "2*(w*x-y)")
    assert judged.factor == sympy.Symbol("x", real=True)
    reply = render.reply(Item(derivative_questions(SEED_W)[0]), _judged(judged), SEED_W)
    assert "Missing chain-rule factor x" in reply


def test_a_wrong_answer_shows_the_problems_own_point_with_both_values():
    judged = check_answer(SEED_W, "w", "2*(w*x-y)")
    ce = judged.counterexample
    assert ce is not None and dict(ce.values) == {"x": 3.0, "y": 6.0, "w": 0.5}
    # Exact by hand: 2·3·(0.5·3 − 6) = −27 and 2·(0.5·3 − 6) = −9.
    assert (ce.expected, ce.answer) == (-27.0, -9.0)
    reply = render.reply(Item(derivative_questions(SEED_W)[0]), _judged(judged), SEED_W)
    assert "at x = 3, y = 6, w = 0.5 your answer gives −9, but ∂L/∂w = −27." in reply


def test_unsimplified_but_correct_is_said_so():
    judged = check_answer(SEED_W, "w", "2*w*x**2 - 2*x*y")
    assert judged.accepted and judged.proof == "sympy"
    reply = render.reply(Item(derivative_questions(SEED_W)[0]), _judged(judged), SEED_W)
    assert reply == "Correct, but not simplified: it equals 2x(wx − y)."


def test_the_derivatives_own_form_is_simplified_even_when_sympy_distributes_a_number():
    """SymPy holds 2*(b + w*x - y) as 2*b + 2*w*x - 2*y; the student typed the short form."""
    derivation = derive(load("linear-bias"))
    assert check_answer(derivation, "b", "2*(b + w*x - y)").verdict == "correct"


def test_a_kinked_derivative_written_with_abs_is_accepted_at_random_points():
    """sign(z) cannot be typed; z/abs(z) equals it wherever z ≠ 0, which random points miss."""
    judged = check_answer(derive(load("abs-error")), "w", "x*(w*x - y)/abs(w*x - y)")
    assert judged.accepted and judged.proof == "points"


def _judged(judgement):
    from tutor.practice import Reply

    return Reply("judged", judgement)


# -- hints ------------------------------------------------------------------------------


def test_hint_names_the_chain_rule_and_step_and_show_reveal_more():
    item = Item(derivative_questions(SEED_W)[0])
    item, hint = respond(item, "hint", SEED_W)
    text = render.reply(item, hint, SEED_W)
    assert text.startswith("The outer function is a square, u² with u = wx − y")
    assert "chain rule" in text
    item, step = respond(item, "step", SEED_W)
    assert render.reply(item, step, SEED_W).startswith("[chain] ∂/∂w[(wx − y)²] = 2(wx − y)")
    item, shown = respond(item, "show", SEED_W)
    assert render.reply(item, shown, SEED_W).endswith("∂L/∂w = 2x(wx − y)")
    assert item.hints == 3


def test_hints_before_the_first_answer_spoil_right_first_time():
    item = Item(derivative_questions(SEED_W)[0])
    item, _ = respond(item, "hint", SEED_W)
    item, _ = respond(item, "2*x*(w*x-y)", SEED_W)
    assert item.solved and not item.right_first_time
    clean, _ = respond(Item(derivative_questions(SEED_W)[0]), "2*x*(w*x-y)", SEED_W)
    assert clean.right_first_time
    summary = score([item, clean])
    assert (summary.items, summary.right_first_time, summary.hints) == (2, 1, 1)


# -- hostile and malformed answers ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("__import__('os').system('touch hacked')", "attribute access"),
        ("__import__('os')", "calls '__import__'"),
        ("x.__class__", "attribute access"),
        ("(lambda: 1)()", "lambda"),
        ("9**9**9", "stacks"),
        ("open('/etc/passwd')", "'open'"),
        ("w^2", "write powers with '**'"),
        ("2w", "write '2*w'"),
        ("ln(w)", "Did you mean 'log'?"),
        ("z*w", "'z', which is not a symbol of this problem (symbols: w, x, y)"),
        ("\x1b[31mw", "control character"),
        ("w" + "+w" * 1200, "limit is 2000"),
        ("2*x*(w*x - y", "not a valid expression"),
    ],
    ids=lambda v: v[:20] if isinstance(v, str) else v,
)
def test_hostile_answers_are_refused_with_the_parsers_reason(text, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ExpressionError) as caught:
        check_answer(SEED_W, "w", text)
    assert expected in caught.value.message
    assert "the loss" not in caught.value.message
    assert list(tmp_path.iterdir()) == []


# -- numbers ----------------------------------------------------------------------------


def _first_update_questions():
    import dataclasses

    from tutor.autodiff import TensorFlowBackend
    from tutor.descent import descend
    from tutor.practice import update_questions

    problem = dataclasses.replace(load("seed-w"), steps=1)
    return update_questions(descend(derive(problem), TensorFlowBackend()))


def test_first_update_077_is_accepted_and_078_is_not():
    gradient, updated = _first_update_questions()
    # By hand: ∂L/∂w = 2·3·(0.5·3 − 6) = −27; w ← 0.5 − 0.01·(−27) = 0.77.
    assert (gradient.expected, gradient.alternative) == (-27.0, -27.0)
    assert updated.expected == pytest.approx(0.77, abs=2**-24)  # float32 rounding of 0.77
    assert check_number(gradient, "-27", 2, "float32").verdict == "correct"
    assert check_number(gradient, "27", 2, "float32").mistake == "sign"
    assert check_number(updated, "0.77", 2, "float32").verdict == "correct"
    assert check_number(updated, "0.5 - 0.01*(-27)", 2, "float32").verdict == "correct"
    assert check_number(updated, "0.78", 2, "float32").verdict == "wrong"
    # Stepping up the gradient: 0.5 + 0.01·(−27) = 0.23.
    assert check_number(updated, "0.23", 2, "float32").mistake == "sign"


def test_a_wrong_update_shows_the_substituted_formula():
    _, updated = _first_update_questions()
    item, reply = respond(Item(updated), "0.78", SEED_W)
    assert item.verdicts == ("wrong",)
    text = render.reply(item, reply, SEED_W)
    assert text == "Not quite: w − η·∂L/∂w = 0.5 − 0.01·(−27); work it out to 2 decimals."


def test_tolerance_is_half_a_unit_in_the_last_decimal_plus_float32_rounding():
    # 0.775 is 0.005 from both 0.77 and 0.78: half a unit of the second decimal.
    assert tolerance(0.0, 2, "float32") == 0.005
    assert tolerance(1e5, 2, "float32") == pytest.approx(0.005 + 2 * 2**-24 * 1e5)
    assert tolerance(1.0, 3, "float64") == pytest.approx(0.0005)


@pytest.mark.parametrize("text", ["w", "__import__('os')", "1/0", "0.7.7"])
def test_a_number_answer_is_refused_when_it_is_not_a_number(text):
    _, updated = _first_update_questions()
    with pytest.raises(ExpressionError):
        check_number(updated, text, 2, "float32")


# -- the [practice] key -----------------------------------------------------------------

_FILE = """title = "t"
loss = "(w*x - y)**2"
[values]
x = 3.0
y = 6.0
w = 0.5
[descent]
wrt = ["w"]
learning_rate = 0.01
steps = 20
"""


def test_practice_decimals_defaults_to_two_and_can_be_set():
    assert loads(_FILE).practice_decimals == 2
    assert loads(_FILE + "[practice]\ndecimals = 3\n").practice_decimals == 3


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("decimals = 2.5", "must be a whole number"),
        ("decimals = 2.0", "write decimals = 2"),
        ('decimals = "2"', "must be a whole number, not the text '2'"),
        ("decimals = -1", "between 0 and 6"),
        ("decimals = 12", "between 0 and 6"),
        ("digits = 2", "unknown key. Allowed in [practice]: decimals."),
    ],
)
def test_check_refuses_a_bad_practice_table_naming_the_line(table, expected):
    report = read_text(_FILE + "[practice]\n" + table + "\n", source="p.toml")
    assert report.problem is None
    (error,) = report.errors
    assert expected in error.message
    assert error.line == 12


def test_tutor_check_reports_a_bad_decimals_with_exit_2(run_cli, tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(_FILE + "[practice]\ndecimals = 9\n")
    status, out, _ = run_cli("check", str(path))
    assert status == 2
    assert f"{path}:12: practice.decimals: must be between 0 and 6, not 9" in out


# -- the command -----------------------------------------------------------------------


def _practice(run_cli, monkeypatch, answers: str, *args: str):
    monkeypatch.setattr(sys, "stdin", io.StringIO(answers))
    return run_cli("practice", *args)


def test_json_record_keeps_every_item_for_a_teacher(run_cli, monkeypatch):
    answers = "2*(w*x-y)\nhint\n2*x*(w*x-y)\n-27\n0.78\n0.77\n"
    status, out, err = _practice(
        run_cli, monkeypatch, answers, "seed-w", "--updates", "1", "--format", "json"
    )
    assert status == 0, err
    record = json.loads(out)["practice"]
    assert (record["problem"], record["seed"], record["status"]) == ("seed-w", None, "completed")
    assert record["values"] == {"x": 3.0, "y": 6.0, "w": 0.5}
    derivative, gradient, updated = record["items"]
    assert derivative == {
        "kind": "derivative",
        "symbol": "w",
        "step": None,
        "answer": "2*(w*x-y)",
        "verdict": "wrong",
        "mistake": "chain_factor",
        "hints": 1,
        "attempts": 2,
        "solved": True,
        "mistakes": ["chain_factor"],
    }
    assert (gradient["step"], gradient["gradient"], gradient["verdict"]) == (1, -27.0, "correct")
    assert gradient["values"] == {"x": 3.0, "y": 6.0, "w": 0.5}
    assert (updated["answer"], updated["verdict"], updated["attempts"]) == ("0.78", "wrong", 2)
    assert updated["updated"] == pytest.approx(0.77, abs=2**-24)
    assert record["score"] == {
        "items": 3,
        "answered": 3,
        "right_first_time": 1,
        "hints": 1,
        "mistakes": {"chain_factor": 1, "other": 1},
    }
    # The dialogue went to standard error, so standard output is the one object.
    assert "Missing chain-rule factor x" in err
    assert len(out.splitlines()) == 1


def test_end_of_input_ends_the_practice_with_its_summary(run_cli, monkeypatch):
    status, out, _ = _practice(run_cli, monkeypatch, "-2*x*(w*x-y)\n", "seed-w")
    assert status == 0
    assert "Sign error" in out
    assert "Practice summary (ended early):" in out
    assert "  mistakes: sign error 1" in out


def test_seed_draws_the_numbers_of_handout_variant_one(run_cli, monkeypatch):
    from tutor.variants import draw

    expected = draw(load("seed-w"), count=1, seed=7)[0].problem.values
    status, out, _ = _practice(
        run_cli, monkeypatch, "", "seed-w", "--seed", "7", "--updates", "0", "--format", "json"
    )
    assert status == 0
    assert json.loads(out)["practice"]["values"] == dict(expected)
    assert json.loads(out)["practice"]["seed"] == 7


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["seed-w", "--wrt", "q"], "'q' is not a symbol with a value"),
        (["seed-w", "--updates", "-1"], "--updates"),
        (["nosuch"], "neither a file nor a shipped problem"),
        (["seed-w", "--format", "xml"], "--format"),
    ],
)
def test_bad_practice_options_are_refused(refuses, args, expected):
    refuses(["practice", *args], expected)


def test_practice_without_updates_never_imports_tensorflow():
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tutor", "practice", "seed-w", "--updates", "0"],
        input="2*x*(w*x-y)\n",
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Correct: ∂L/∂w = 2x(wx − y)." in result.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert "sympy" in imported
    assert not {name for name in imported if name.split(".")[0] == "tensorflow"}


# -- properties -------------------------------------------------------------------------


def _problem_of(loss: sympy.Expr, symbol: sympy.Symbol):
    """Return the derivation of a problem file whose loss is ``loss``, or None if refused.

    Also None where the descent analysis warns that the Hessian is complex at the
    starting values (a negative base of a fractional power): that is the analysis's
    concern, not the checker's. The starting values avoid the round numbers where
    generated losses have their singular points.
    """
    names = sorted(str(s) for s in loss.free_symbols)
    text = "\n".join(
        [
            'title = "generated"',
            f'loss = "{loss}"',
            "[values]",
            *(f"{n} = {0.37 + 1.13 * k}" for k, n in enumerate(names)),
            "[descent]",
            f'wrt = ["{symbol}"]',
            "learning_rate = 0.01",
            "steps = 1",
        ]
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return derive(loads(text, problem_id="generated"))
    except (ProblemError, ExpressionError, np.exceptions.ComplexWarning):
        return None


def _readable(derivation, expr: sympy.Expr) -> bool:
    try:
        read_expression(derivation.problem, str(expr))
    except ExpressionError:
        return False
    return True


@given(strategies.smooth_losses_and_symbols(), st.data())
def test_checker_accepts_every_form_sympy_proves_equal(loss_and_symbol, data):
    """Precondition: the loss is a valid problem and the rewritten derivative is within the
    parser's limits (an answer a student could type)."""
    loss, symbol = loss_and_symbol
    derivation = _problem_of(loss, symbol)
    assume(derivation is not None)
    result = derivation.partial(str(symbol)).result
    form = data.draw(strategies.equal_forms(result))
    assume(_readable(derivation, form))
    judged = check_answer(derivation, str(symbol), str(form))
    assert judged.accepted, (str(form), judged)


@given(strategies.smooth_losses_and_symbols(), st.data())
def test_checker_rejects_perturbed_derivatives_with_a_counterexample(loss_and_symbol, data):
    loss, symbol = loss_and_symbol
    derivation = _problem_of(loss, symbol)
    assume(derivation is not None)
    result = derivation.partial(str(symbol)).result
    wrong = data.draw(strategies.perturbed(result, symbol))
    assume(_readable(derivation, wrong))
    judged = check_answer(derivation, str(symbol), str(wrong))
    assert judged.verdict == "wrong", (str(wrong), judged)


def test_intro_lists_the_data_rows_and_the_constants_to_type():
    data = render.intro(derive(load("least-squares")), 1)
    assert "Loss: L = (1/5) Σᵢ (b + wxᵢ − yᵢ)²" in data
    assert "Data, row i = 1…5: xᵢ = 0, 1, 2, 3, 4; yᵢ = 1.1, 2.9, 5.2, 7.1, 8.8" in data
    assert "Constants: lam = 0.5 (λ in the loss)" in render.intro(derive(load("ridge")), 1)


def test_no_update_question_asks_for_a_number_that_is_not_finite():
    """w ← w − 4w³ from w = 100: w₁ ≈ −4·10⁶, w₂ ≈ 2.6·10²⁰, and the third gradient
    4·w₂³ ≈ 7·10⁶¹ overflows float32 (largest 3.4·10³⁸)."""
    from tutor.autodiff import TensorFlowBackend
    from tutor.descent import descend
    from tutor.practice import update_questions

    problem = loads(
        'title = "t"\nloss = "w**4"\n[values]\nw = 100.0\n'
        '[descent]\nwrt = ["w"]\nlearning_rate = 1.0\nsteps = 5\n'
    )
    traj = descend(derive(problem), TensorFlowBackend())
    questions = update_questions(traj)
    assert (traj.status, len(traj.updates)) == ("diverged", 3)
    assert [(q.step, q.quantity) for q in questions] == [
        (1, "gradient"),
        (1, "updated"),
        (2, "gradient"),
        (2, "updated"),
    ]
    assert all(np.isfinite([q.expected, q.gradient, *q.values.values()]).all() for q in questions)


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("exp(exp(exp(exp(w))))", "wrong"),
        ("exp(exp(exp(exp(w)))) - exp(exp(exp(exp(w)))) + 2*x*(w*x - y)", "correct"),
    ],
)
def test_an_answer_far_beyond_float64_is_judged_without_computing_it_exactly(text, verdict):
    """exp(exp(exp(exp(10)))) has more digits than any computer holds; where a part of an
    answer overflows float64, the point is left to the others (or to SymPy)."""
    assert check_answer(SEED_W, "w", text).verdict == verdict


def test_an_empty_answer_is_refused_as_empty():
    with pytest.raises(ExpressionError, match="the answer is empty"):
        check_answer(SEED_W, "w", "  ")


class _InterruptedInput(io.StringIO):
    """Standard input that gives its lines, then is interrupted as by Ctrl-C."""

    def readline(self, *args):
        line = super().readline(*args)
        if not line:
            raise KeyboardInterrupt
        return line


def test_an_interrupted_json_practice_still_ends_with_its_record(run_cli, monkeypatch):
    monkeypatch.setattr(sys, "stdin", _InterruptedInput("2*(w*x-y)\n"))
    status, out, err = run_cli("practice", "seed-w", "--updates", "0", "--format", "json")
    assert status == 130
    record = json.loads(out)["practice"]
    assert record["status"] == "interrupted"
    assert record["score"]["mistakes"] == {"chain_factor": 1}
    assert "Practice summary (interrupted):" in err


def test_a_right_number_is_confirmed_rounded_with_the_float32_value_beside_it():
    """w ← −7 − 0.01·(−976) is 2.76 exactly, but 2.7600002 in float32 (NumPy, same order)."""
    from tutor.autodiff import TensorFlowBackend
    from tutor.descent import descend
    from tutor.practice import update_questions

    text = _FILE.replace("x = 3.0", "x = -8.0").replace("y = 6.0", "y = -5.0")
    derivation = derive(loads(text.replace("w = 0.5", "w = -7.0").replace("20", "1")))
    _, updated = update_questions(descend(derivation, TensorFlowBackend()))
    w32 = np.float32(-7.0) - np.float32(0.01) * np.float32(2 * -8 * (-7 * -8 + 5))
    assert updated.expected == float(w32) == pytest.approx(2.76, abs=2**-21)
    item, reply = respond(Item(updated), "2.76", derivation)
    assert render.reply(item, reply, derivation) == (
        f"Correct: w = 2.76 (the tutor's float32 value: {str(w32)})."
    )
