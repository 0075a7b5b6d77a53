"""The loss plot: well-formed SVG whose points follow the losses."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from tutor.render import svg

NS = {"svg": "http://www.w3.org/2000/svg"}

#: The notebook's twenty losses (seed-w), to two decimals.
SEED = [20.25, 13.62, 9.16, 6.16, 4.14, 2.78, 1.87, 1.26, 0.85, 0.57]
SEED += [0.38, 0.26, 0.17, 0.12, 0.08, 0.05, 0.04, 0.02, 0.02, 0.01]


def _points(plot: str) -> list[tuple[float, float]]:
    root = ET.fromstring(plot)
    (line,) = root.findall("svg:polyline", NS)
    return [tuple(map(float, p.split(","))) for p in line.get("points", "").split()]


def _labels(plot: str) -> list[str]:
    return [t.text or "" for t in ET.fromstring(plot).findall("svg:text", NS)]


def test_no_losses_no_plot():
    assert svg.loss_plot([]) == ""
    assert svg.loss_plot([math.inf, math.nan]) == ""


def test_points_go_left_to_right_and_down_as_the_loss_falls():
    plot = svg.loss_plot(SEED)
    root = ET.fromstring(plot)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("width") == str(svg.WIDTH) and root.get("height") == str(svg.HEIGHT)
    points = _points(plot)
    assert len(points) == 20
    xs = [x for x, _ in points]
    # Equal steps in k are equal steps across; the first and last sit on the axis ends.
    gaps = {round(b - a, 1) for a, b in zip(xs, xs[1:], strict=False)}
    assert max(gaps) - min(gaps) <= 0.2  # coordinates are rounded to 0.1 px
    assert all(0 <= y <= svg.HEIGHT for _, y in points)
    # SVG's y grows downwards; where the loss repeats (0.02, 0.02) the point does too.
    for (_, y0), (_, y1), a, b in zip(points, points[1:], SEED, SEED[1:], strict=False):
        assert (y1 > y0) if b < a else (y1 == y0)
    assert len(root.findall("svg:circle", NS)) == 20


def test_losses_over_two_decades_get_a_log_axis_with_decade_ticks():
    assert svg.log_scale(SEED)  # 20.25 / 0.01 > 100
    assert not svg.log_scale([100.0, 1.0])  # exactly two decades: linear, as the handout
    assert not svg.log_scale([5.0, 0.0])  # no logarithm of 0
    labels = _labels(svg.loss_plot(SEED))
    assert "Loss before each update (log scale)" in labels
    assert {"10", "1", "0.1", "0.01"} <= set(labels)
    # On a log axis 10, 1, 0.1 and 0.01 are equally far apart.
    root = ET.fromstring(svg.loss_plot(SEED))
    ys = {t.text: float(t.get("y", "0")) for t in root.findall("svg:text", NS)}
    steps = [ys["1"] - ys["10"], ys["0.1"] - ys["1"], ys["0.01"] - ys["0.1"]]
    assert max(steps) - min(steps) < 0.2


def test_a_linear_axis_has_round_ticks():
    labels = _labels(svg.loss_plot([3.0, 2.5, 2.0, 1.0]))
    assert "Loss before each update" in labels
    assert {"1", "1.5", "2", "2.5", "3"} <= set(labels)


def test_non_finite_losses_are_left_out_and_counted():
    plot = svg.loss_plot([4.0, 9.0, math.inf])
    assert len(_points(plot)) == 2
    assert "1 non-finite loss not drawn" in _labels(plot)


def test_a_flat_run_still_draws():
    points = _points(svg.loss_plot([2.0, 2.0, 2.0]))
    assert len({y for _, y in points}) == 1


def test_long_runs_are_thinned_and_keep_their_last_point():
    losses = [1.0 / k for k in range(1, 100_001)]
    plot = svg.loss_plot(losses)
    points = _points(plot)
    assert len(points) <= svg.MAX_POINTS + 1
    assert points[-1][0] == svg.WIDTH - 16  # the right end of the x axis: update 100 000
    assert "100000" in _labels(plot)
    assert not ET.fromstring(plot).findall("svg:circle", NS)


def test_the_title_is_escaped():
    plot = svg.loss_plot([1.0, 2.0], title="<b>&</b>")
    assert "<b>&amp;</b>" not in plot and "&lt;b&gt;&amp;&lt;/b&gt;" in plot
    ET.fromstring(plot)
