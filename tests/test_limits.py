"""Hostile and huge inputs: each is refused or finishes, with one line and the right status.

Each case here failed before the fix it names: a traceback, a hang, a
terminal escape reaching the screen, a file written through a link.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tutor import load
from tutor._clean import clean, escape_for_json
from tutor.errors import OutputError, ProblemError

SEED_W = """\
title = "{title}"
loss = "{loss}"

[values]
x = {x}
y = 6.0
w = 0.5

[descent]
wrt = ["w"]
learning_rate = 0.01
steps = 3
"""

needs_tex = pytest.mark.skipif(
    shutil.which("latexmk") is None, reason="TeX Live and latexmk are installed by .ci/run"
)


def problem_file(tmp_path: Path, name: str = "p.toml", **fields: str) -> Path:
    text = SEED_W.format(**{"title": "t", "loss": "(w*x - y)**2", "x": "3.0", **fields})
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# -- the cleaner ----------------------------------------------------------------------

UNSAFE = [
    "\x1b[31mred\x1b[0m",
    "\x1b]0;window title\x07",
    "\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\",
    "\x9b2J",
    "bell\x07 back\x08 cr\r",
    "\u202eoverride\u202c",
    "\u2066isolate\u2069",
    "mark\u200f\u200e\u061c",
    "del\x7f c1\x85\x90",
]


@pytest.mark.parametrize("text", UNSAFE, ids=range(len(UNSAFE)))
def test_clean_leaves_nothing_a_terminal_obeys(text):
    cleaned = clean(text)
    assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in cleaned)
    assert not any(0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069 for c in cleaned)
    assert "\u200e" not in cleaned and "\u200f" not in cleaned and "\u061c" not in cleaned


def test_clean_keeps_newlines_tabs_and_the_printable_text_of_a_sequence():
    assert clean("a\tb\n\x1b[1mbold\x1b[0m") == "a\tb\nbold"


def test_json_keeps_unsafe_characters_as_escapes():
    import json

    raw = json.dumps({"t": "a\u202eb\x85"}, ensure_ascii=False)
    escaped = escape_for_json(raw)
    assert "\u202e" not in escaped and "\x85" not in escaped
    assert json.loads(escaped) == {"t": "a\u202eb\x85"}


HOSTILE_TITLE = "Evil \x1b[2J\x1b]0;pwned\x07 \u202etxt.exe\u202c \x9b31m"


def assert_clean(stream: str) -> None:
    """No escape, control (but newline) or bidi character in what reaches a screen."""
    bad = [c for c in stream if c not in "\n" and clean(c) == ""]
    assert not bad, [hex(ord(c)) for c in bad]


@pytest.mark.parametrize(
    "args",
    [
        ["show", "{path}", "--format", "plain"],
        ["show", "{path}", "--format", "latex"],
        ["show", "{path}", "--format", "json"],
        ["check", "{path}"],
        ["step", "{path}", "--format", "plain"],
        ["step", "{path}", "--format", "json"],
        ["verify", "{path}", "--examples", "5"],
    ],
    ids=lambda a: "-".join(a[:3:2]),
)
def test_escapes_in_a_title_never_reach_the_terminal(run_cli, tmp_path, args):
    toml_title = "".join(
        f"\\u{ord(c):04x}" if ord(c) < 32 or 0x7F <= ord(c) < 0xA0 else c for c in HOSTILE_TITLE
    )
    path = problem_file(tmp_path, title=toml_title)
    status, out, err = run_cli(*[a.format(path=path) for a in args])
    assert status == 0, err
    assert_clean(out)
    assert_clean(err)


@pytest.mark.parametrize(
    "text",
    [
        'title = "t"\nloss = "w"\n"\\u001b[31mkey\u202e" = 1\n[values]\nw = 1.0\n',
        'title = "t"\nloss = "w"\n[values]\nw = 1.0\n[descent]\nwrt = ["\\u001b]0;x\\u0007w"]\n',
        'title = "t"\nloss = "w"\n[values]\n"w\u2066" = 1.0\n',
    ],
    ids=["key", "wrt", "bidi-key"],
)
@pytest.mark.parametrize("command", ["check", "show", "step"])
def test_escapes_in_keys_and_wrt_never_reach_the_terminal(run_cli, tmp_path, text, command):
    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    status, out, err = run_cli(command, str(path))
    assert status == 2
    assert_clean(out)
    assert_clean(err)
    if command != "check":
        one_line_error(err)


def test_an_error_line_is_cut_to_a_readable_length(run_cli, tmp_path):
    keys = "\n".join(f"k{i} = 1" for i in range(90_000))
    path = tmp_path / "p.toml"
    path.write_text(f'title = "t"\nloss = "w"\n{keys}\n[values]\nw = 1.0\n', encoding="utf-8")
    status, out, err = run_cli("show", str(path))
    assert status == 2
    assert len(one_line_error(err)) <= 1000


# -- numbers too large for a float ----------------------------------------------------


@pytest.mark.parametrize("digits", [400, 5_000])
def test_a_giant_integer_value_is_refused_in_one_line(run_cli, tmp_path, digits):
    path = problem_file(tmp_path, x="3" + "0" * (digits - 1))
    status, out, err = run_cli("step", str(path))
    assert status == 2
    line = one_line_error(err)
    assert "p.toml" in line and len(line) < 300


@pytest.mark.parametrize("digits", [400, 1_900])
def test_a_giant_integer_in_the_loss_is_refused_in_one_line(run_cli, tmp_path, digits):
    path = problem_file(tmp_path, loss="(w*x - y)**2 + " + "9" * digits)
    status, out, err = run_cli("step", str(path))
    assert status == 2
    assert "above the limit" in one_line_error(err)


def test_a_giant_step_count_is_named_by_its_length(tmp_path):
    path = problem_file(tmp_path)
    path.write_text(path.read_text().replace("steps = 3", "steps = " + "9" * 400))
    with pytest.raises(ProblemError, match="an integer of 400 digits"):
        load(path)


# -- reading problem files ------------------------------------------------------------


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = problem_file(tmp_path)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load(path).values["x"] == 3.0


@pytest.mark.parametrize("special", ["/dev/zero", "fifo", "folder"])
def test_the_api_refuses_what_is_not_a_regular_file_without_reading_it(tmp_path, special):
    if special == "fifo":
        path = tmp_path / "p.toml"
        os.mkfifo(path)
    elif special == "folder":
        path = tmp_path / "p.toml"
        path.mkdir()
    else:
        path = Path(special)
    start = time.monotonic()
    with pytest.raises(ProblemError, match="not a regular file"):
        load(path)
    assert time.monotonic() - start < 5  # a FIFO would block, /dev/zero fill memory


def test_at_most_the_size_limit_is_read(tmp_path, monkeypatch):
    from tutor import problem as problem_module

    path = problem_file(tmp_path)
    monkeypatch.setattr(problem_module, "MAX_FILE_BYTES", 20)
    with pytest.raises(ProblemError, match="larger than 20 bytes"):
        load(path)


# -- output targets -------------------------------------------------------------------


def test_standard_output_on_a_full_disk_is_one_line_and_exit_2():
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "tutor", "list"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert "No space left on device" in one_line_error(done.stderr)


def test_a_symlinked_target_is_refused_and_what_it_names_is_untouched(run_cli, tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    (tmp_path / "out.tex").symlink_to(precious)
    status, out, err = run_cli("handout", "seed-w", "-o", str(tmp_path / "out.tex"))
    assert status == 2
    assert "symbolic link" in one_line_error(err)
    assert precious.read_text() == "keep me"


@pytest.mark.parametrize("target", ["folder.tex", "fifo.tex", "x" * 5000 + ".tex"])
def test_a_bad_target_is_refused_in_one_line_with_nothing_written(run_cli, tmp_path, target):
    (tmp_path / "folder.tex").mkdir()
    os.mkfifo(tmp_path / "fifo.tex")
    before = sorted(tmp_path.iterdir())
    status, out, err = run_cli("handout", "seed-w", "-o", str(tmp_path / target))
    assert status == 2
    one_line_error(err)
    assert sorted(tmp_path.iterdir()) == before


def test_a_device_is_never_replaced(tmp_path):
    from tutor._files import write_atomic

    with pytest.raises(OutputError, match="device or a pipe"):
        write_atomic(Path("/dev/null"), b"x")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_a_failed_write_is_one_line_and_leaves_no_temporary_file(
    run_cli, tmp_path, monkeypatch, code
):
    import tutor._files as files

    def fail(*args):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(files.os, "replace", fail)
    status, out, err = run_cli("handout", "seed-w", "-o", str(tmp_path / "h.tex"))
    assert status == 2
    assert os.strerror(code) in one_line_error(err)
    assert list(tmp_path.iterdir()) == []


def test_a_new_file_takes_the_umask_and_a_replaced_file_keeps_its_mode(tmp_path):
    from tutor._files import write_atomic

    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "new.tex", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new.tex").st_mode) == 0o640
    kept = tmp_path / "kept.tex"
    kept.write_text("old")
    kept.chmod(0o604)
    write_atomic(kept, b"new")
    assert stat.S_IMODE(os.stat(kept).st_mode) == 0o604 and kept.read_text() == "new"


# -- TeX ------------------------------------------------------------------------------

LOOPING_TEMPLATE = r"\documentclass{article}\begin{document}\def\x{\x}\x\end{document}"


def _processes_in(folder: Path) -> list[int]:
    """Return the ids of processes whose working folder lies under ``folder``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = os.readlink(entry / "cwd")
            except OSError:
                continue
            if cwd.startswith(str(folder)):
                found.append(int(entry.name))
    return found


@needs_tex
def test_a_looping_template_is_stopped_with_every_tex_process(run_cli, tmp_path, monkeypatch):
    import tempfile

    import tutor._files as files

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setattr(files, "TEX_TIMEOUT", 3)
    template = tmp_path / "loop.tex.j2"
    template.write_text(LOOPING_TEMPLATE)
    old_pdf = tmp_path / "h.pdf"
    old_pdf.write_bytes(b"%PDF of an older build")
    status, out, err = run_cli(
        "handout", "seed-w", "-o", str(tmp_path / "h.tex"), "--pdf", "--template", str(template)
    )
    assert status == 2
    assert "longer than 3 s" in one_line_error(err)
    time.sleep(0.2)
    assert _processes_in(scratch) == []  # pdflatex too, not only latexmk
    assert list(scratch.iterdir()) == []  # the temporary folder is gone
    assert not old_pdf.exists()  # a PDF that no longer matches its .tex


@needs_tex
def test_sigterm_during_a_build_kills_tex_and_removes_the_temporary_folder(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    template = tmp_path / "loop.tex.j2"
    template.write_text(LOOPING_TEMPLATE)
    env = {**os.environ, "TMPDIR": str(scratch)}
    command = [sys.executable, "-m", "tutor", "handout", "seed-w", "-o", "h.tex", "--pdf"]
    process = subprocess.Popen(
        [*command, "--template", str(template)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not _processes_in(scratch) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_in(scratch), "TeX never started"
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 143
    assert "terminated" in one_line_error(err)
    time.sleep(0.2)
    assert _processes_in(scratch) == []
    assert list(scratch.iterdir()) == []


# -- generated code -------------------------------------------------------------------


@pytest.mark.parametrize("variables", ["tensor", "variable"])
def test_show_code_runs_for_symbols_named_as_the_code_names_things(run_cli, tmp_path, variables):
    """Symbols called tf, tape, math, loss and grad_w would shadow the script's own names."""
    path = tmp_path / "names.toml"
    path.write_text(
        'title = "t"\nloss = "(tf*tape - loss)**2 + math*grad_w"\n'
        "[values]\ntf = 0.5\ntape = 3.0\nloss = 6.0\nmath = 0.25\ngrad_w = 1.0\n"
        f'[descent]\nwrt = ["tf"]\nlearning_rate = 0.01\nsteps = 1\nvariables = "{variables}"\n'
    )
    status, code, err = run_cli("step", str(path), "--show-code", "--format", "seed")
    assert status == 0, err
    script, tutor_line = code.rsplit("\n", 2)[0], code.rsplit("\n", 2)[1]
    (tmp_path / "update.py").write_text(script + "\n")
    done = subprocess.run(
        [sys.executable, str(tmp_path / "update.py")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    # The script prints the tutor's own first line: (0.5·3 − 6)² + 0.25·1 = 20.5 before,
    # tf = 0.5 + 0.01·27 = 0.77 after, labelled by the symbol's own name.
    assert done.stdout == tutor_line + "\n" == "Loss = 20.50,  tf = 00.77 \n"


def test_a_long_data_column_is_wrapped_in_the_code():
    from tutor import loads
    from tutor.render.code import update_code

    rows = 50_000
    xs = ", ".join("1.0" for _ in range(rows))
    problem = loads(
        f'title = "t"\nloss = "(w*x - 1)**2"\n[values]\nw = 0.5\n[data]\nx = [{xs}]\n'
        '[descent]\nwrt = ["w"]\nlearning_rate = 0.1\nsteps = 1\n'
    )
    lines = update_code(problem).splitlines()
    assert max(map(len, lines)) < 100  # TeX's buffer and the listing's margin
    assert sum(line.count("1.0") for line in lines) == rows


# -- a rate the dtype cannot hold -----------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "dtype"), [("1e-320", "float32"), ("1e-40", "float32"), ("1e-320", "float64")]
)
def test_a_rate_that_rounds_to_zero_in_the_dtype_is_refused(refuses, rate, dtype):
    """float32(1e-40) is subnormal and TensorFlow flushes it to 0; float64 too at 1e-320."""
    refuses(["step", "seed-w", "--lr", rate, "--dtype", dtype], f"rounds to 0 in {dtype}")


def test_a_file_rate_that_rounds_to_zero_is_named_at_its_key(tmp_path):
    path = problem_file(tmp_path)
    path.write_text(path.read_text().replace("learning_rate = 0.01", "learning_rate = 1e-50"))
    with pytest.raises(ProblemError, match=r"p.toml:\d+: descent.learning_rate: rounds to 0"):
        load(path)


def test_the_smallest_normal_rate_is_allowed(run_cli):
    status, out, err = run_cli(
        "step", "seed-w", "--lr", "1.2e-38", "--steps", "1", "--format", "seed"
    )
    assert (status, out) == (0, "Loss = 20.25,  w = 00.50 \n"), err


# -- work and memory ------------------------------------------------------------------


def rows_file(tmp_path: Path, rows: int, steps: int) -> Path:
    """A least-squares fit over ``rows`` one-digit rows (short enough for the size limit)."""
    xs = ",".join(str(i % 10) for i in range(rows))
    ys = ",".join(str((3 * i) % 10) for i in range(rows))
    path = tmp_path / "rows.toml"
    path.write_text(
        f'title = "rows"\nloss = "(w*x + b - y)**2"\n[values]\nw = 0.5\nb = 0.0\n'
        f"[data]\nx = [{xs}]\ny = [{ys}]\n"
        f'[descent]\nwrt = ["w", "b"]\nlearning_rate = 0.001\nsteps = {steps}\n'
    )
    return path


def test_steps_times_rows_is_capped_in_the_file(tmp_path):
    from tutor.problem import MAX_ROW_STEPS

    path = rows_file(tmp_path, 100_000, MAX_ROW_STEPS // 100_000 + 1)
    with pytest.raises(ProblemError, match="use at most 5000 steps for 100000 rows"):
        load(path)


def test_steps_times_rows_is_capped_on_the_command_line(refuses, tmp_path_factory):
    path = rows_file(tmp_path_factory.mktemp("src"), 100_000, 10)
    refuses(["step", str(path), "--steps", "1000000"], "use at most 5000 steps")


def test_a_million_steps_stay_allowed_without_data(run_cli):
    status, out, err = run_cli("check", "seed-w")
    assert status == 0
    from tutor.problem import work_problem

    assert work_problem(1_000_000, 0) is None


def test_symbolic_gradients_over_many_rows_are_evaluated_in_bounded_blocks(monkeypatch):
    """The per-block result equals one evaluation over all points, bit for bit."""
    import numpy as np

    from tutor import derive, loads
    from tutor import descent as descent_module

    xs = ", ".join(str(float(i % 7)) for i in range(300))
    problem = loads(
        f'title = "t"\nloss = "(w*x + b - 1)**2"\n[values]\nw = 0.5\nb = 0.1\n[data]\nx = [{xs}]\n'
        '[descent]\nwrt = ["w", "b"]\nlearning_rate = 0.01\nsteps = 1\n'
    )
    derivation = derive(problem)
    points = np.random.default_rng(0).uniform(-2, 2, size=(50, 2))
    whole = descent_module.symbolic_columns(derivation, ("w", "b"), points)
    monkeypatch.setattr(descent_module, "BLOCK_ELEMENTS", 700)  # two points a block
    blocked = descent_module.symbolic_columns(derivation, ("w", "b"), points)
    assert np.array_equal(whole, blocked)


# -- values the dtype cannot hold, and JSON that always ends with a summary ------------


def test_a_value_beyond_float32_is_refused_rather_than_blamed_on_the_rate(refuses):
    """x = 1e155 becomes inf in float32 before any update; the rate 0.1 < 4 is not to blame."""
    refuses(
        ["step", "seed-x", "--set", "x=1e155", "--format", "json"],
        "--set x=…: 1e+155 is beyond float32's range",
    )


def test_a_file_value_beyond_its_dtype_is_named_at_its_key(tmp_path):
    path = problem_file(tmp_path, x="1e40")
    with pytest.raises(ProblemError, match=r"values.x: 1e\+40 is beyond float32's range"):
        load(path)
    path.write_text(path.read_text() + 'dtype = "float64"\n')
    assert load(path).values["x"] == 1e40


def test_json_lines_end_with_a_summary_when_the_run_fails(capsys, monkeypatch):
    import json

    from tutor.cli import main
    from tutor.render import jsonl

    def broken(traj):
        raise ValueError("a field could not be written")

    monkeypatch.setattr(jsonl, "summary", broken)
    with pytest.raises(ValueError):
        main(["step", "seed-w", "--format", "json", "--steps", "3"])
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["step"] for line in lines[:-1]] == [1, 2, 3]
    assert json.loads(lines[-1]) == {
        "summary": {
            "problem": "seed-w",
            "status": "error",
            "reason": "a field could not be written",
            "steps": 3,
        }
    }


def test_json_lines_end_with_an_interrupted_summary_on_ctrl_c():
    """Ctrl-C during a long run: the lines written so far, then the summary, then exit 130."""
    import json

    command = [sys.executable, "-m", "tutor", "step", "seed-x", "--steps", "1000000"]
    with subprocess.Popen(
        [*command, "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        first = process.stdout.readline()  # the run has started writing
        assert json.loads(first)["step"] == 1
        process.send_signal(signal.SIGINT)
        rest = process.stdout.read()  # from the same buffered reader as the first line
        process.wait(timeout=60)
    lines = [first, *rest.splitlines()]
    last = json.loads(lines[-1])["summary"]
    assert last["status"] == "interrupted"
    assert last["steps"] == len(lines) - 1
    # Every line before it is a whole update, numbered in order.
    assert [json.loads(line)["step"] for line in lines[:-1]] == list(range(1, len(lines)))
    assert process.returncode == 130


def test_verify_over_many_rows_is_refused_beyond_its_work_limits(refuses, tmp_path_factory):
    """Points × compared rows is capped: 1001 points over 20 000 of the 100 000 rows."""
    path = rows_file(tmp_path_factory.mktemp("src"), 100_000, 10)
    refuses(["verify", str(path), "--batch", "1001"], "use --batch 1000 or fewer")
    refuses(["verify", str(path), "--examples", "501"], "use --examples 500 or fewer")


def test_a_large_data_set_is_compared_on_evenly_spaced_rows(tmp_path):
    """The search compares over 200 rows and a batch over 20 000, first and last included:
    before, the search took 13 s an example over 100 000 rows, and a batch of 1000 points
    was refused (it peaked at 3.6 GB)."""
    from tutor.verify import BATCH_ROWS, SEARCH_ROWS, compared_rows, default_examples

    problem = load(rows_file(tmp_path, 100_000, 10))
    for limit in (SEARCH_ROWS, BATCH_ROWS):
        fewer = compared_rows(problem, limit)
        assert fewer.rows == limit
        xs = problem.data["x"]
        step = (len(xs) - 1) / (limit - 1)
        assert fewer.data["x"] == tuple(xs[round(i * step)] for i in range(limit))
        assert (fewer.data["x"][-1], fewer.data["y"][-1]) == (xs[-1], problem.data["y"][-1])
    assert default_examples(problem) == 100
    assert compared_rows(load("least-squares"), SEARCH_ROWS) == load("least-squares")


# -- one time budget for all the symbolic work of a command ----------------------------------

#: A run of the command line with one piece of SymPy's work made to hang, and the
#: command's budget cut to 2 s so that the test is quick.
_HANGING = """
import sys, time
import tutor._timeout
tutor._timeout.COMMAND_SECONDS = 2.0

def hang(real):
    def slow(*args, **kwargs):
        time.sleep(600)
        return real(*args, **kwargs)
    return slow

what = sys.argv[1]
if what == "analysis":
    import tutor.derivation
    tutor.derivation.analyse = hang(tutor.derivation.analyse)
elif what == "factor":
    import sympy
    sympy.factor = hang(sympy.factor)
else:
    from sympy.printing.latex import LatexPrinter
    LatexPrinter.doprint = hang(LatexPrinter.doprint)
from tutor.cli import main
sys.exit(main(sys.argv[2:]))
"""

BUDGET_CASES = [
    ("analysis", ["show", "{path}", "--format", "plain"]),
    ("analysis", ["step", "{path}", "--format", "seed"]),
    ("analysis", ["handout", "{path}", "-o", "h.tex"]),
    ("analysis", ["notebook", "{path}", "-o", "n.ipynb"]),
    ("analysis", ["verify", "{path}", "--examples", "3"]),
    ("analysis", ["graph", "{path}", "--format", "plain"]),
    ("analysis", ["practice", "{path}"]),
    ("latex", ["show", "{path}", "--format", "latex"]),
    ("latex", ["show", "{path}", "--format", "json"]),
    ("latex", ["step", "{path}", "--format", "plain"]),
    ("latex", ["step", "{path}", "--format", "latex"]),
    ("analysis", ["step", "{path}", "--format", "json"]),
    ("latex", ["handout", "{path}", "-o", "h.tex"]),
    ("latex", ["handout", "{path}", "--variants", "2", "--answers", "-o", "h.tex"]),
    ("latex", ["notebook", "{path}", "-o", "n.ipynb"]),
    ("latex", ["graph", "{path}", "--format", "latex"]),
    ("factor", ["pitfalls", "all", "{path}", "--format", "plain"]),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("slow", "args"), BUDGET_CASES, ids=[f"{s}-{'-'.join(a[:3:2])}" for s, a in BUDGET_CASES]
)
def test_slow_analysis_or_latex_is_stopped_within_the_budget(tmp_path, slow, args):
    """The analysis and the printing ran outside the limit: each hung a command for good."""
    path = problem_file(tmp_path)
    command = [sys.executable, "-c", _HANGING, slow, *[a.format(path=path) for a in args]]
    started = time.monotonic()
    out = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    seconds = time.monotonic() - started
    assert out.returncode == 2, out.stderr
    line = one_line_error(out.stderr)
    assert "within the 2 s the tutor gives the symbolic work of one command" in line
    # The budget, the imports (TensorFlow's among them), and a fork server's start.
    assert seconds < 2 + 20
    assert out.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.toml"]


def test_a_budget_is_spent_across_computations():
    from tutor._timeout import budget, within_time_limit
    from tutor.errors import ExpressionError

    with budget(1.0):
        within_time_limit(time.sleep, 0.6, what="the first")
        with pytest.raises(ExpressionError, match="the second did not finish within the 1 s"):
            within_time_limit(time.sleep, 0.6, what="the second")
        with budget(1.0):  # a budget of its own, as each answer in practice has
            within_time_limit(time.sleep, 0.6, what="an answer")


# -- reasons computed in exact arithmetic when float64 cannot hold the coefficients ---------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_tiny_curvature_is_not_called_linear(run_cli, dtype):
    """2x² with x = 1e-170 underflowed to 0: the loss was called linear, the run diverging."""
    status, out, err = run_cli(
        "step", "seed-w", "--set", "x=1e-170", "--dtype", dtype, "--steps", "3", "--format", "plain"
    )
    assert status == 0, err
    assert "linear" not in out and "diverging" not in out
    # ∂²L/∂w² = 2x² and the bound 2/λ = 1/x², computed here with exact integers:
    # x = 1e-170 as a float is 10⁻¹⁷⁰ to 16 digits, so both show as 2.0e−340 and 1.0e+340
    # (a true minus in the text's numbers).
    assert "∂²L/∂w² = 2.0e−340" in out
    assert "below the bound 2/λ_max = 1.0e+340" in out
    # 1 − ηλ = 1 − 0.01·2e-340: the factor rounds to 1 in either dtype.
    assert "1 − ηλ_min = 1 − 2.0e−342 of the distance, which rounds to 1" in out
    assert out.splitlines()[-1].startswith("completed: 3 updates")
    if dtype == "float32":
        assert "x = 1e−170 is below float32's smallest normal number" in out


def test_a_huge_curvature_names_the_bound_no_dtype_can_meet(run_cli):
    """2w² with w = 1e308 overflowed: "coefficients not finite" told nothing true to act on."""
    status, out, err = run_cli(
        "step", "seed-x", "--set", "w=1e308", "--dtype", "float64", "--format", "plain"
    )
    assert status == 1
    assert "∂²L/∂x² = 2.0e+616" in out
    line = one_line_error(err)
    assert "the loss overflowed to inf" in line
    assert "above the bound 2/λ_max = 1.0e-616" in line
    assert "every rate float64 can use (at least 2.23e-308) is above it" in line


def test_an_overflow_that_is_not_the_rates_fault_does_not_blame_it(run_cli):
    for args in (["seed-x", "--set", "x=1e155"], ["seed-w", "--set", "w=1e308"]):
        status, out, err = run_cli("step", *args, "--dtype", "float64", "--format", "json")
        assert status == 1
        summary = json.loads(out.splitlines()[-1])["summary"]
        assert summary["status"] == "diverged"
        assert summary["reason"] == "at update 1 the loss overflowed to inf"


# -- the cleaner, through every command's messages ---------------------------------------

#: Every kind a terminal obeys: CSI and OSC sequences, C0 and C1 controls, bidi overrides
#: and isolates and marks, written as TOML escapes where TOML needs them.
HOSTILE = (
    "\\u001b[2J\\u001b]0;pwned\\u0007 \u202eevil\u202c \u2066iso\u2069 \\u009b31m \\u0085\u200f"
)

HOSTILE_PROSE = f"""\
title = "Title {HOSTILE}"
summary = "Summary {HOSTILE}"
loss = "(w*x - y)**2"

[values]
x = 3.0
y = 6.0
w = 0.5

[descent]
wrt = ["w"]
learning_rate = 0.01
steps = 3
"""

EVERY_COMMAND = [
    *(["show", "{path}", "--format", f] for f in ("plain", "latex", "json", "rich")),
    *(["step", "{path}", "--format", f] for f in ("plain", "seed", "latex", "json", "rich")),
    ["step", "{path}", "--show-code", "--backprop"],
    ["check", "{path}"],
    ["verify", "{path}", "--examples", "3"],
    ["verify", "{path}", "--batch", "10"],
    *(["graph", "{path}", "--format", f] for f in ("plain", "latex", "json", "dot", "rich")),
    ["practice", "{path}"],
    ["practice", "{path}", "--format", "json"],
    *(["pitfalls", "integer-dtype", "{path}", "--format", f] for f in ("plain", "json", "rich")),
    ["pitfalls", "integer-dtype", "{path}", "--format", "latex"],
    ["notebook", "{path}", "-o", "n.ipynb"],
    ["handout", "{path}", "-o", "h.tex"],
    ["handout", "{path}", "--variants", "2", "--answers", "-o", "v.tex"],
    ["handout", "{path}", "--variants", "2", "--format", "json"],
]


def _ids(args: list[str]) -> str:
    return "-".join(a for a in args if a != "{path}")


@pytest.fixture
def answers_from(monkeypatch):
    """Standard input for practice: the answers given, then end of input."""
    import io

    def give(text: str) -> None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(text))

    return give


@pytest.mark.parametrize("args", EVERY_COMMAND, ids=_ids)
def test_hostile_prose_never_reaches_the_terminal(
    run_cli, tmp_path, monkeypatch, answers_from, args
):
    monkeypatch.chdir(tmp_path)
    answers_from("2*x*(w*x - y)\n")
    path = tmp_path / "p.toml"
    path.write_text(HOSTILE_PROSE, encoding="utf-8")
    status, out, err = run_cli(*[a.format(path=path) for a in args])
    assert status == 0, err
    assert_clean(out)
    assert_clean(err)


HOSTILE_NAME = "\\u001b[31mk\u202e\\u0085"

#: Untrusted names where each reaches an error message: a key, a wrt entry, a name in
#: the loss, a [verify] key, a data column's key.
HOSTILE_FILES = {
    "key": f'title = "t"\nloss = "w"\n"{HOSTILE_NAME}" = 1\n[values]\nw = 1.0\n',
    "values-key": f'title = "t"\nloss = "w"\n[values]\nw = 1.0\n"{HOSTILE_NAME}" = 2.0\n',
    "wrt": f'title = "t"\nloss = "w"\n[values]\nw = 1.0\n[descent]\nwrt = ["{HOSTILE_NAME}"]\n',
    "loss-name": 'title = "t"\nloss = "w*k\u202e"\n[values]\nw = 1.0\n',
    "loss-text": 'title = "t"\nloss = "w + \\u001b[31m"\n[values]\nw = 1.0\n',
    "verify-key": (
        f'title = "t"\nloss = "w"\n[values]\nw = 1.0\n[verify]\n"{HOSTILE_NAME}" = [0, 1]\n'
    ),
    "data-key": f'title = "t"\nloss = "w"\n[values]\nw = 1.0\n[data]\n"{HOSTILE_NAME}" = [1.0]\n',
}

REFUSING_COMMANDS = [
    ["show", "{path}"],
    ["step", "{path}", "--format", "json"],
    ["check", "{path}"],
    ["verify", "{path}"],
    ["graph", "{path}"],
    ["practice", "{path}"],
    ["pitfalls", "integer-dtype", "{path}"],
    ["notebook", "{path}", "-o", "n.ipynb"],
    ["handout", "{path}", "-o", "h.tex"],
]


@pytest.mark.parametrize("command", REFUSING_COMMANDS, ids=_ids)
@pytest.mark.parametrize("kind", list(HOSTILE_FILES))
def test_hostile_names_in_a_file_never_reach_the_terminal(
    run_cli, tmp_path, monkeypatch, kind, command
):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "p.toml"
    path.write_text(HOSTILE_FILES[kind], encoding="utf-8")
    status, out, err = run_cli(*[a.format(path=path) for a in command])
    assert status == 2, err
    assert_clean(out)
    assert_clean(err)
    if command[0] != "check":
        one_line_error(err)


RAW = "\x1b[31mk\u202e\x85\u2066"

HOSTILE_ARGUMENTS = [
    ["show", "seed-w", "--wrt", RAW],
    ["step", "seed-w", "--wrt", RAW],
    ["step", "seed-w", "--set", f"{RAW}=1"],
    ["step", "seed-w", "--set", f"w={RAW}"],
    ["graph", "seed-w", "--set", f"{RAW}=1"],
    ["practice", "seed-w", "--wrt", RAW],
    ["pitfalls", RAW],
    ["show", f"{RAW}.toml"],
    ["show", RAW],
    ["check", f"{RAW}.toml"],
    ["verify", RAW],
    ["handout", "seed-w", "-o", f"{RAW}.txt"],
    ["notebook", "seed-w", "-o", f"{RAW}.txt"],
    ["pitfalls", "all", "-o", f"{RAW}.txt"],
]


@pytest.mark.parametrize("args", HOSTILE_ARGUMENTS, ids=range(len(HOSTILE_ARGUMENTS)))
def test_hostile_arguments_never_reach_the_terminal(run_cli, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    status, out, err = run_cli(*args)
    assert status == 2, err
    assert_clean(out)
    assert_clean(err)
    one_line_error(err)


def test_verify_leaves_no_hypothesis_folder_behind(tmp_path):
    """Hypothesis caches the constants of the source it runs in .hypothesis/, database or not:
    run as a command (not under pytest, whose plugin sets the folder) verify left one."""
    out = subprocess.run(
        [sys.executable, "-m", "tutor", "verify", "seed-w", "--examples", "3"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert list(tmp_path.iterdir()) == []


def test_escape_sequences_leave_no_residue_in_a_handout(run_cli, tmp_path, monkeypatch):
    # The handout's prose is cleaned as the terminal's is: whole sequences, not just ESC.
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "hostile.toml"
    path.write_text(HOSTILE_PROSE, encoding="utf-8")
    status, _, err = run_cli("handout", str(path), "-o", "h.tex")
    assert status == 0, err
    tex = (tmp_path / "h.tex").read_text(encoding="utf-8")
    assert "Title " in tex
    for residue in ("[2J", "]0;pwned", "[31m", "\x1b", "\u202e"):
        assert residue not in tex


def test_an_empty_output_name_is_refused(refuses):
    refuses(["handout", "seed-w", "-o", ""], "-o '': give the name of a file ending in .tex")
    refuses(
        ["handout", "seed-w", "--variants", "2", "--format", "json", "-o", ""],
        "-o '': give the name of a file ending in .jsonl",
    )
