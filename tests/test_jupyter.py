"""Jupyter display: derivations as LaTeX that TeX compiles, runs as HTML with a table and a plot."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

import tutor
from tutor._files import build_pdf
from tutor.render import jupyter

needs_tex = pytest.mark.skipif(
    shutil.which("latexmk") is None or shutil.which("pdftotext") is None,
    reason="TeX Live, latexmk and poppler-utils are installed by .ci/run",
)

_VOID = {"br", "hr", "img", "input", "meta", "link", "col", "area", "base", "wbr"}


class _Page(HTMLParser):
    """Parses HTML, checking that every tag is closed in order; keeps the table and the SVG."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.tags: list[str] = []
        self.rows: list[list[str]] = []
        self.polylines: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = []
        if tag == "polyline":
            self.polylines.append(dict(attrs)["points"] or "")
        if tag not in _VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "polyline":
            self.polylines.append(dict(attrs)["points"] or "")

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, (self.open, tag)
        self.open.pop()
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    assert page.open == [], page.open
    return page


@pytest.fixture(scope="module")
def seed_w(backend):
    return tutor.descend(tutor.derive(tutor.load("seed-w")), backend)


def _run(backend, problem_id: str, **changes) -> tutor.Trajectory:
    problem = dataclasses.replace(tutor.load(problem_id), **changes)
    return tutor.descend(tutor.derive(problem), backend)


def test_trajectory_html_has_the_table_of_updates_and_an_inline_svg_plot(seed_w):
    page = _parse(seed_w._repr_html_())
    header, *rows = page.rows
    assert header == ["k", "loss", "w", "∂L/∂w SymPy", "∂L/∂w TF", "w after"]
    assert len(rows) == 20
    # The notebook's first update: w·x − y = −4.5, so L = 20.25 and ∂L/∂w = 2·3·(−4.5) = −27.
    assert rows[0] == ["1", "20.25", "0.50", "-27", "-27", "0.77"]
    assert [r[-1] for r in rows] == [f"{u.updated['w']:.2f}" for u in seed_w.updates]
    assert "svg" in page.tags and "script" not in page.tags
    (points,) = page.polylines
    ys = [float(p.split(",")[1]) for p in points.split()]
    # The loss falls at every update, so each point is drawn lower (a larger y) than the last.
    assert len(ys) == 20 and all(b > a for a, b in zip(ys, ys[1:], strict=False))


def test_long_runs_show_their_first_and_last_updates(backend):
    traj = _run(backend, "seed-x", steps=100)
    page = _parse(traj._repr_html_())
    rows = page.rows[1:]
    assert len(rows) == jupyter.TABLE_ROWS + 1
    assert rows[20] == ["… 60 more updates …"]
    assert rows[0][0] == "1" and rows[-1][0] == "100"
    assert len(page.polylines[0].split()) == 100


def test_prose_from_the_problem_file_is_escaped_in_html(backend):
    problem = dataclasses.replace(
        tutor.load("seed-w"), title="<script>alert(1)</script> & <b>", steps=2
    )
    html = tutor.descend(tutor.derive(problem), backend)._repr_html_()
    page = _parse(html)
    assert "script" not in page.tags and "b" not in page.tags
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;" in html


def test_jupyter_gets_latex_for_a_derivation_and_html_for_a_run(seed_w):
    from IPython.core.formatters import DisplayFormatter

    data, _ = DisplayFormatter().format(seed_w.derivation)
    assert set(data) == {"text/plain", "text/latex"}
    assert data["text/latex"] == seed_w.derivation._repr_latex_()
    assert data["text/plain"].startswith("seed-w: Learn the weight w of y = w·x\n")
    data, _ = DisplayFormatter().format(seed_w)
    assert set(data) == {"text/plain", "text/html", "text/latex"}
    assert data["text/html"] == seed_w._repr_html_()
    assert data["text/plain"] == tutor.render_text(seed_w)


def test_trajectory_latex_has_the_same_rows_as_the_html(seed_w):
    latex = seed_w._repr_latex_()
    assert latex.startswith(seed_w.derivation._repr_latex_())
    assert r"1 & 20.25 & 0.50 & -27 & -27 & 0.77 \\" in latex
    assert r"20 & 0.01 & 1.97 & -0.62205148 & -0.62205219 & 1.97 \\" in latex
    assert r"\text{completed: 20 updates}" in latex


def _compile(tmp_path, body: str) -> str:
    """Build ``body`` in an amsmath document with pdfLaTeX; return the PDF's text."""
    document = (
        "\\documentclass{article}\n\\usepackage[utf8]{inputenc}\n\\usepackage{amsmath}\n"
        "\\usepackage[landscape,margin=1cm]{geometry}\n"
        f"\\begin{{document}}\n{body}\n\\end{{document}}\n"
    )
    pdf = tmp_path / "display.pdf"
    build_pdf(document, pdf)
    done = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True)
    return done.stdout


@needs_tex
@pytest.mark.parametrize("problem_id", ["seed-w", "least-squares", "huber", "logistic"])
def test_derivation_latex_compiles_with_pdflatex(tmp_path, problem_id):
    derivation = tutor.derive(tutor.load(problem_id))
    text = _compile(tmp_path, derivation._repr_latex_())
    assert "chain" in text or "sum" in text


@needs_tex
def test_trajectory_latex_compiles_with_pdflatex(tmp_path, backend):
    traj = _run(backend, "linear-bias", steps=50)
    text = _compile(tmp_path, traj._repr_latex_())
    assert f"{traj.status}: {traj.steps} updates" in text
    assert "SymPy" in text and "TF" in text


@needs_tex
def test_a_run_that_overflows_still_compiles(tmp_path, backend):
    traj = _run(backend, "lr-too-large", steps=400)
    assert traj.status == "diverged"
    latex = traj._repr_latex_()
    assert f"{traj.steps} & \\infty & " in latex
    _compile(tmp_path, latex)
    page = _parse(traj._repr_html_())
    # The last update's loss overflowed: it is in the table, not in the plot.
    assert page.rows[-1][:2] == [str(traj.steps), "inf"]
    assert len(page.polylines[0].split()) == traj.steps - 1
    assert "1 non-finite loss not drawn" in traj._repr_html_()
