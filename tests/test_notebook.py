"""``tutor notebook``: its notebook runs in a real kernel and prints ``tutor step``'s lines.

The kernels run the Python of this test run, with tutor importable from the
package under test; each notebook is executed top to bottom by nbclient.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbclient
import nbformat
import pytest

import tutor
from tutor.expression import parse
from tutor.problem import load, problems_dir, shipped_ids
from tutor.render._python import code_names, expression
from tutor.render.notebook import cells_of

GOLDEN = Path(__file__).parent / "golden"

#: Symbols named as the generated code's own names, Python's built-ins and IPython's
#: output cache; constant-only subexpressions (1/3, exp(2), pi) that Python would
#: otherwise compute in float64.
LOSS = (
    "(tf*tape + math - loss)**2 + 0.5*(print*_1 - grad_tf)**2 + Out*tf**2"
    " + (1/3)*exp(2)*math**2 + pi*print**2"
)
CLASH = f"""
title = "Names the code uses: tf, tape, loss, math, print"
loss = "{LOSS}"

[constants]
Out = 0.1

[values]
tf = 0.5
tape = 2.0
math = -0.25
loss = 3.0
print = 1.5
_1 = 2.0
grad_tf = 1.0

[descent]
wrt = ["tf", "math", "print"]
learning_rate = 0.02
steps = 25
"""


def _kernel_env() -> dict[str, str]:
    """The environment of a kernel: this one, with the tutor under test first on the path."""
    root = str(Path(tutor.__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


def _write(run_cli, tmp_path: Path, problem: str, *options: str) -> object:
    target = tmp_path / "out.ipynb"
    status, out, err = run_cli("notebook", problem, "-o", str(target), *options)
    assert (status, err) == (0, "")
    assert out == f"wrote {target}\n"
    return nbformat.read(target, as_version=4)


def _stdout(book: object, cell_id: str) -> str:
    (cell,) = [c for c in book.cells if c.get("id") == cell_id]
    assert not [o for o in cell.outputs if o.output_type == "error"], cell.outputs
    return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")


def _outputs(book: object, cell_id: str) -> dict[str, str]:
    (cell,) = [c for c in book.cells if c.get("id") == cell_id]
    (result,) = [o for o in cell.outputs if o.output_type == "execute_result"]
    return dict(result.data)


def _execute(book: object, km: object = None) -> None:
    """Run every cell of ``book`` in a fresh kernel, or in the running kernel ``km``."""
    client = nbclient.NotebookClient(book, timeout=600, kernel_name="python3", km=km)
    try:
        client.execute(env=_kernel_env())
    finally:
        if km is not None and client.kc is not None:  # nbclient leaves a borrowed kernel's
            client.kc.stop_channels()  # client open


def _seed_lines(run_cli, *args: str) -> str:
    status, out, err = run_cli("step", *args, "--format", "seed")
    assert status in (0, 1), err
    return out


# The acceptance: a fresh kernel, top to bottom.


def test_seed_w_notebook_prints_the_notebooks_twenty_lines(run_cli, tmp_path):
    book = _write(run_cli, tmp_path, "seed-w")
    _execute(book)
    printed = _stdout(book, "descent")
    assert printed == (GOLDEN / "seed-w.txt").read_text(encoding="utf-8")
    assert printed.splitlines()[0] == "Loss = 20.25,  w = 00.77 "
    assert len(printed.splitlines()) == 20
    # The last cells ask tutor: its run is displayed as a table with the plot.
    html = _outputs(book, "compare")["text/html"]
    assert "<svg" in html and html.count("<tr><td>") == 20
    assert r"\frac{\partial L}{\partial w}" in _outputs(book, "derive")["text/latex"]


def test_variable_style_notebook_uses_assign_sub_and_prints_the_same_lines(run_cli, tmp_path):
    book = _write(run_cli, tmp_path, "seed-w", "--variables", "variable")
    code = "\n".join(c.source for c in book.cells if c.cell_type == "code")
    assert "w = tf.Variable(0.5)" in code and "w.assign_sub(0.01 * grad_w)" in code
    assert "tape.watch" not in code
    assert 'dataclasses.replace(problem, variables="variable")' in code
    _execute(book)
    assert _stdout(book, "descent") == (GOLDEN / "seed-variable.txt").read_text(encoding="utf-8")


def test_symbols_named_like_the_codes_own_names_still_run(run_cli, tmp_path):
    source = tmp_path / "clash.toml"
    source.write_text(CLASH, encoding="utf-8")
    book = _write(run_cli, tmp_path, str(source))
    code = "\n".join(c.source for c in book.cells if c.cell_type == "code")
    for line in ("tf_ = tf.convert_to_tensor(0.5)", "s_1_ = ", "print_ = ", "Out_ = "):
        assert line in code
    # Numbers alone are computed by TensorFlow in float32, as the tutor's tape does.
    assert "tf.constant(1.0) / tf.constant(3.0) * tf.exp(tf.constant(2.0))" in code
    assert "In the code, `Out` is `Out_`, `tf` is `tf_`" in book.cells[0].source
    _execute(book)
    printed = _stdout(book, "descent")
    assert printed == _seed_lines(run_cli, str(source))
    assert printed.splitlines()[0] == "Loss = 14.31,  tf = 00.68,  math = -0.14,  print = 01.23 "


# Every shipped problem, in one kernel that is reset before each notebook (a
# fresh kernel each would import TensorFlow twenty times).


@pytest.fixture(scope="module")
def kernel():
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=_kernel_env())
    yield km
    km.shutdown_kernel(now=True)


@pytest.mark.parametrize("problem_id", shipped_ids())
def test_every_shipped_notebook_prints_tutor_steps_lines(run_cli, tmp_path, kernel, problem_id):
    book = _write(run_cli, tmp_path, problem_id)
    book.cells.insert(0, nbformat.v4.new_code_cell("%reset -f", id="reset"))
    _execute(book, km=kernel)
    assert _stdout(book, "descent") == _seed_lines(run_cli, problem_id)
    html = _outputs(book, "compare")["text/html"]
    assert ("<svg" in html) == bool(load(problem_id).steps)


# What is written, without running it.


def test_notebook_is_valid_nbformat_and_in_the_seeds_order(run_cli, tmp_path):
    book = _write(run_cli, tmp_path, "least-squares")
    nbformat.validate(book)
    ids = [c.id for c in book.cells]
    assert ids == [
        "title",
        "loss",
        "imports",
        "values-text",
        "values",
        "derivative-w",
        "derivative-b",
        "update-text",
        "update",
        "descent-text",
        "descent",
        "compare-text",
        "derive",
        "compare",
    ]
    assert book.metadata.kernelspec.name == "python3"
    loss = book.cells[1].source
    assert r"\frac{1}{5}\sum_{i=1}^{5}" in loss
    values = book.cells[4].source
    assert "x = tf.constant([0.0, 1.0, 2.0, 3.0, 4.0])" in values
    descent = book.cells[10].source
    assert "loss = tf.reduce_mean((w * x + b - y) ** 2)" in descent
    assert "abs(float(grad_w)) < 0.0001 and abs(float(grad_b)) < 0.0001" in descent


def test_the_same_problem_gives_the_same_file(run_cli, tmp_path):
    first = tmp_path / "a.ipynb"
    second = tmp_path / "b.ipynb"
    assert run_cli("notebook", "huber", "-o", str(first))[0] == 0
    assert run_cli("notebook", "huber", "-o", str(second))[0] == 0
    assert first.read_bytes() == second.read_bytes()


HOSTILE = (
    '''
title = "<script>alert(1)</script> $\\\\input{/etc/passwd}$ \\"\\"\\"; import os"
summary = """
# heading?
1. list? `code` [link](javascript:x) '''
    + "'''"
    + ''' ; __import__('os')
"""
loss = "(w*x - y)**2"

[values]
x = 3.0
y = 6.0
w = 0.5

[descent]
wrt = ["w"]
learning_rate = 0.01
steps = 3
'''
)


def test_problem_text_never_becomes_code(run_cli, tmp_path):
    source = tmp_path / "hostile.toml"
    source.write_text(HOSTILE, encoding="utf-8")
    book = _write(run_cli, tmp_path, str(source))
    allowed = {"math", "os", "tf", "tape", "loss", "grad_w", "w", "x", "y", "_", "print"}
    allowed |= {"abs", "float", "all", "map", "range", "tutor", "problem", "derivation"}
    allowed |= {"trajectory", "PROBLEM"}
    strings = []
    for cell in book.cells:
        if cell.cell_type != "code":
            continue
        tree = ast.parse(cell.source)
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        assert names <= allowed, names - allowed
        strings += [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
    # The file's text is in the notebook once as code: as one string, read back exactly.
    assert source.read_text(encoding="utf-8") in strings
    title = book.cells[0].source.splitlines()[0]
    assert title.startswith("# \\<script\\>alert(1)\\</script\\> \\$")
    summary = book.cells[0].source.split("\n\n")[1]
    assert summary.startswith("\\# heading?")


def test_writing_a_notebook_never_imports_tensorflow(tmp_path):
    target = tmp_path / "seed-w.ipynb"
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tutor", "notebook", "seed-w", "-o", target],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert "nbformat" in imported
    assert not {name for name in imported if name.split(".")[0] == "tensorflow"}
    assert json.loads(target.read_text(encoding="utf-8"))["nbformat"] == 4


def test_without_nbformat_it_says_what_to_install(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "nbformat", None)  # import nbformat raises ImportError
    status, out, err = run_cli("notebook", "seed-w", "-o", "seed-w.ipynb")
    assert status == 3
    assert out == ""
    assert err == (
        "tutor: error: writing a notebook needs nbformat, which is not installed; "
        "pip install 'tutor[notebook]'\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["notebook", "seed-w", "-o", "seed-w.txt"], "give the name of a file ending in .ipynb"),
        (["notebook", "seed-w", "-o", "no/such/folder/a.ipynb"], "the folder no/such/folder"),
        (["notebook", "seed-w"], "Missing option '-o'"),
        (["notebook", "sed-w", "-o", "a.ipynb"], "'sed-w' is neither a file nor a shipped"),
        (["notebook", "seed-w", "-o", "a.ipynb", "--variables", "var"], "'var' is not one of"),
    ],
    ids=["suffix", "folder", "no-output", "typo", "variables"],
)
def test_bad_input_is_refused_without_writing(refuses, args, expected):
    refuses(args, expected)


def test_a_folder_or_an_unwritable_place_is_refused(run_cli, tmp_path):
    folder = tmp_path / "out.ipynb"
    folder.mkdir()
    status, out, err = run_cli("notebook", "seed-w", "-o", str(folder))
    assert (status, out) == (2, "")
    # The name does end in .ipynb: the reason is that it is a folder.
    assert err == f"tutor: error: {folder}: is a folder; give a file name inside it\n"
    # A folder no file can be made in, even by root: one line, status 2, no traceback.
    status, out, err = run_cli("notebook", "seed-w", "-o", "/proc/a.ipynb")
    assert (status, out) == (2, "")
    assert err.startswith("tutor: error: /proc/a.ipynb: cannot write the file (")
    assert err.endswith("); choose another path\n") and err.count("\n") == 1


# The code, without a kernel.


def test_symbols_keep_their_names_unless_the_code_needs_them():
    assert code_names(["w", "x", "y"]) == {"w": "w", "x": "x", "y": "y"}
    renamed = code_names(["tf", "tape", "loss", "math", "os", "print", "_", "_1", "In", "tf_"])
    assert renamed == {
        "tf": "tf__",  # tf_ is another symbol's name
        "tape": "tape_",
        "loss": "loss_",
        "math": "math_",
        "os": "os_",
        "print": "print_",
        "_": "s__",
        "_1": "s_1_",
        "In": "In_",
        "tf_": "tf_",
    }
    # grad_w would be w's gradient: the symbol of that name moves aside.
    assert code_names(["w", "grad_w"]) == {"w": "w", "grad_w": "grad_w_"}
    with pytest.raises(ValueError):
        code_names(["w); import os #"])


@pytest.mark.parametrize(
    ("problem_id", "expected"),
    [
        ("seed-w", "(w * x - y) ** 2"),
        ("hinge", "tf.maximum(tf.constant(0.0), 1 - y * w * x)"),
        ("logistic-stable", "tf.nn.softplus(w * x + b) - y * (w * x + b)"),
        ("nonconvex", "(w ** 2 - 1) ** 2 + 0.3 * w"),
    ],
)
def test_the_loss_is_written_as_python_reads_it(problem_id, expected):
    problem = load(problem_id)
    names = code_names([*problem.data, *problem.constants, *problem.values])
    assert expression(problem.tree, names, problem.dtype) == expected


def test_numbers_alone_are_computed_in_the_problems_dtype():
    tree = parse("w * (1/3) - pi + exp(-2) * w", {"w"})
    assert expression(tree, {"w": "w"}, "float64") == (
        "w * (tf.constant(1.0, dtype=tf.float64) / tf.constant(3.0, dtype=tf.float64))"
        " - math.pi + tf.exp(-tf.constant(2.0, dtype=tf.float64)) * w"
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("variables", ["tensor", "variable"])
@pytest.mark.parametrize("problem_id", [*shipped_ids(), "clash"])
def test_the_update_cell_computes_the_tutors_loss_and_gradient_bit_for_bit(
    backend, problem_id, variables, dtype
):
    """Run the notebook's first cells in this process and compare with the tutor's tape."""
    if problem_id == "clash":
        source = CLASH
        problem = tutor.loads(CLASH, problem_id="clash")
    else:
        problem = load(problem_id)
        source = (problems_dir() / f"{problem_id}.toml").read_text("utf-8")
    problem = dataclasses.replace(problem, variables=variables, dtype=dtype)
    cells = {i: code for i, kind, code in cells_of(tutor.derive(problem), source)}
    namespace: dict[str, object] = {}
    for cell in ("imports", "values", "update"):
        lines = [line for line in cells[cell].splitlines() if not line.startswith("print(")]
        exec(compile("\n".join(lines), cell, "exec"), namespace)  # the generated code only
    loss, gradient = backend.gradient(problem, problem.values)
    names = code_names([*problem.data, *problem.constants, *problem.values])
    assert float(namespace["loss"].numpy()).hex() == loss.hex()
    for name in problem.wrt:
        assert float(namespace[f"grad_{names[name]}"].numpy()).hex() == gradient[name].hex()


@pytest.mark.skipif(shutil.which("latexmk") is None, reason="TeX Live is installed by .ci/run")
def test_the_markdown_cells_mathematics_compiles(tmp_path):
    from tutor._files import build_pdf

    problem = load("least-squares")
    source = (problems_dir() / "least-squares.toml").read_text("utf-8")
    markdown = [c for _, kind, c in cells_of(tutor.derive(problem), source) if kind == "markdown"]
    blocks = [b for cell in markdown for b in cell.split("$$")[1::2]]
    assert len(blocks) == 4  # the loss, two derivatives, the update rule
    body = "\n".join(f"\\[{b}\\]" for b in blocks)
    document = (
        "\\documentclass{article}\n\\usepackage{amsmath}\n\\usepackage[margin=1cm]{geometry}\n"
        f"\\begin{{document}}\n{body}\n\\end{{document}}\n"
    )
    build_pdf(document, tmp_path / "cells.pdf")
    assert (tmp_path / "cells.pdf").stat().st_size > 0
