"""The loss of a descent as an SVG line plot: inline in HTML, no display server needed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from .._numbers import number

#: The plot's size in pixels, and the margins that hold the axis labels.
WIDTH, HEIGHT = 480, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 30, 44

#: At most this many points are drawn; longer runs are thinned evenly, the last kept.
MAX_POINTS = 400

#: Markers are drawn on each point when there are at most this many.
_MARKERS = 60


def log_scale(losses: Sequence[float]) -> bool:
    """Return whether the losses span more than two decades (and so read best on a log axis).

    The same rule as the handout's pgfplots plot.

    >>> log_scale([20.25, 0.01]), log_scale([3.0, 1.0])
    (True, False)
    """
    finite = [v for v in losses if math.isfinite(v)]
    return bool(finite) and min(finite) > 0 and max(finite) / min(finite) > 100


def loss_plot(losses: Sequence[float], title: str = "Loss before each update") -> str:
    """Return an SVG plot of ``losses`` against the update number 1, 2, …, or "" with none.

    Non-finite losses are left out, and the plot says so. The y axis is
    logarithmic when the losses span more than two decades.

    >>> loss_plot([])
    ''
    >>> loss_plot([4.0, 1.0]).startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    True
    """
    points = [(k, v) for k, v in enumerate(losses, start=1) if math.isfinite(v)]
    if not points:
        return ""
    log = log_scale(losses)
    shown = _thin(points)
    xs = [k for k, _ in shown]
    ys = [math.log10(v) if log else v for _, v in shown]
    x_axis = _Axis(1, max(len(losses), 2), _LEFT, WIDTH - _RIGHT)
    y_axis = _Axis(min(ys), max(ys), HEIGHT - _BOTTOM, _TOP)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="{WIDTH / 2:g}" y="16" text-anchor="middle" font-size="13">'
        f"{escape(title)}{' (log scale)' if log else ''}</text>",
        *_frame(),
        *_x_ticks(x_axis, len(losses)),
        *_y_ticks(y_axis, log),
        _line(x_axis, y_axis, xs, ys),
    ]
    if len(shown) <= _MARKERS:
        parts += [
            f'<circle cx="{x_axis.at(x):.1f}" cy="{y_axis.at(y):.1f}" r="2.5" fill="#1f5fa8"/>'
            for x, y in zip(xs, ys, strict=True)
        ]
    skipped = len(losses) - len(points)
    if skipped:
        parts.append(
            f'<text x="{WIDTH - _RIGHT}" y="{_TOP + 12}" text-anchor="end" fill="#b00020">'
            f"{skipped} non-finite loss{'' if skipped == 1 else 'es'} not drawn</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


class _Axis:
    """A linear map from data values [low, high] to pixels [start, end]."""

    def __init__(self, low: float, high: float, start: float, end: float) -> None:
        if high - low <= abs(high) * 1e-12 or not math.isfinite(high - low):
            pad = abs(low) * 0.1 or 1.0
            low, high = low - pad, high + pad
        self.low, self.high, self.start, self.end = low, high, start, end

    def at(self, value: float) -> float:
        return self.start + (value - self.low) / (self.high - self.low) * (self.end - self.start)


def _thin(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    if len(points) <= MAX_POINTS:
        return points
    stride = math.ceil(len(points) / MAX_POINTS)
    kept = points[::stride]
    return kept if kept[-1] == points[-1] else [*kept, points[-1]]


def _frame() -> list[str]:
    bottom, right = HEIGHT - _BOTTOM, WIDTH - _RIGHT
    return [
        f'<path d="M{_LEFT},{_TOP} V{bottom} H{right}" fill="none" stroke="#444"/>',
        f'<text x="{(_LEFT + right) / 2:g}" y="{HEIGHT - 8}" text-anchor="middle">update k</text>',
        f'<text x="14" y="{(_TOP + bottom) / 2:g}" text-anchor="middle" '
        f'transform="rotate(-90 14 {(_TOP + bottom) / 2:g})">loss</text>',
    ]


def _x_ticks(axis: _Axis, count: int) -> list[str]:
    step = max(int(_nice_step(max(count - 1, 1) / 4)), 1)
    ticks = sorted({1, *range(step, count + 1, step), max(count, 1)})
    # Drop a tick that would print on top of the last one.
    ticks = [k for k in ticks if k == ticks[-1] or axis.at(ticks[-1]) - axis.at(k) > 24]
    y = HEIGHT - _BOTTOM
    return [
        f'<path d="M{axis.at(k):.1f},{y} v4" stroke="#444"/>'
        f'<text x="{axis.at(k):.1f}" y="{y + 16}" text-anchor="middle">{k}</text>'
        for k in ticks
    ]


def _nice_step(raw: float) -> float:
    """Return the smallest of 1, 2, 5 × 10ⁿ that is at least ``raw`` (> 0)."""
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))


def _y_values(axis: _Axis, log: bool) -> list[float]:
    """Return where the y ticks go: whole decades on a log axis, round numbers otherwise."""
    if log:
        decades = [float(d) for d in range(math.ceil(axis.low), math.floor(axis.high) + 1)]
        if len(decades) >= 2:
            return decades[:: math.ceil(len(decades) / 6)]
    step = _nice_step((axis.high - axis.low) / 4)
    first = math.ceil(axis.low / step - 1e-9)
    return [k * step for k in range(first, math.floor(axis.high / step + 1e-9) + 1)]


def _y_ticks(axis: _Axis, log: bool) -> list[str]:
    out = []
    for value in _y_values(axis, log):
        y = axis.at(value)
        label = number(10.0**value if log else value, 3)
        out.append(
            f'<path d="M{_LEFT - 4},{y:.1f} H{WIDTH - _RIGHT}" stroke="#ddd"/>'
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(label)}</text>'
        )
    return out


def _line(x_axis: _Axis, y_axis: _Axis, xs: list[int], ys: list[float]) -> str:
    coords = " ".join(f"{x_axis.at(x):.1f},{y_axis.at(y):.1f}" for x, y in zip(xs, ys, strict=True))
    return f'<polyline points="{coords}" fill="none" stroke="#1f5fa8" stroke-width="1.5"/>'
