"""Charts as server-rendered SVG: no script, no inline style (the CSP allows neither), the same
markup in a page and in a PDF report. Every mark carries ``data-label`` and ``data-value``
equal to the table of numbers printed beside the chart (tests compare the two)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

_INK = "#1f4e79"
_GRID = "#d0d7de"
_TEXT = "#333333"


def _text_width(text: str, size: int) -> float:
    """A rough width in pixels: CJK and other wide characters take a full em, the rest about half."""
    return sum(size if ord(ch) > 0x2E80 else size * 0.58 for ch in text)


def fit_label(text: str, width: float, size: int = 12) -> str:
    """``text`` cut (with an ellipsis) to fit ``width`` pixels: the full label is in the table."""
    if _text_width(text, size) <= width:
        return text
    while text and _text_width(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


def _fmt(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def bar_chart(
    series: Sequence[tuple[str, float]], *, title: str, width: int = 420, bar_height: int = 18
) -> Markup:
    """Horizontal bars, one per (label, value), longest = largest value."""
    label_width = 180
    height = max(1, len(series)) * (bar_height + 6) + 10
    top = max((v for _l, v in series), default=0.0) or 1.0
    room = width - label_width - 60
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart bar-chart" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, value) in enumerate(series):
        y = 5 + i * (bar_height + 6)
        length = max(0.0, float(value)) / top * room
        parts.append(
            f'<text x="{label_width - 6}" y="{y + bar_height - 5}" text-anchor="end" font-size="12" '
            f'fill="{_TEXT}">{escape(fit_label(label, label_width - 10))}</text>'
            f'<rect class="mark" data-label="{escape(label)}" data-value="{_fmt(value)}" '
            f'x="{label_width}" y="{y}" width="{length:.1f}" height="{bar_height}" fill="{_INK}"/>'
            f'<text x="{label_width + length + 4:.1f}" y="{y + bar_height - 5}" font-size="11" '
            f'fill="{_TEXT}">{escape(_fmt(value))}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def line_chart(
    series: Sequence[tuple[str, float]], *, title: str, width: int = 520, height: int = 180
) -> Markup:
    """Points joined by a line, x = position in ``series`` (versions, months), y from 0 to the max."""
    left, right, top_pad, bottom = 48, 30, 12, 36
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    top = max((float(v) for _l, v in series), default=0.0) or 1.0
    n = len(series)

    def x_of(i: int) -> float:
        return left + (plot_w / 2 if n == 1 else i * plot_w / (n - 1))

    def y_of(v: float) -> float:
        return top_pad + plot_h - max(0.0, float(v)) / top * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart line-chart" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{width - right}" y2="{top_pad + plot_h}" stroke="{_GRID}"/>',
        f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{top_pad + plot_h}" stroke="{_GRID}"/>',
        f'<text x="{left - 4}" y="{top_pad + 4}" text-anchor="end" font-size="10" fill="{_TEXT}">{escape(_fmt(top))}</text>',
        f'<text x="{left - 4}" y="{top_pad + plot_h}" text-anchor="end" font-size="10" fill="{_TEXT}">0</text>',
    ]
    if n > 1:
        points = " ".join(f"{x_of(i):.1f},{y_of(v):.1f}" for i, (_l, v) in enumerate(series))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{_INK}" stroke-width="2"/>')
    for i, (label, value) in enumerate(series):
        x, y = x_of(i), y_of(value)
        parts.append(
            f'<circle class="mark" data-label="{escape(label)}" data-value="{_fmt(value)}" '
            f'cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{_INK}"/>'
        )
        if n <= 12 or i in (0, n - 1):
            parts.append(
                f'<text x="{x:.1f}" y="{height - 20}" text-anchor="middle" font-size="9" '
                f'fill="{_TEXT}">{escape(label if n <= 4 else label[-10:])}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def interval_chart(
    rows: Sequence[tuple[str, float, float, float]],
    *,
    title: str,
    width: int = 560,
    row_height: int = 24,
    digits: int = 4,
) -> Markup:
    """One row per (label, estimate, low, high): a dot at the estimate, a whisker from low to
    high, a line at zero. Each dot carries ``data-value``, ``data-low`` and ``data-high``."""
    label_width, right = 190, 20
    height = max(1, len(rows)) * row_height + 28
    lows = [min(float(low), float(est)) for _l, est, low, _h in rows]
    highs = [max(float(high), float(est)) for _l, est, _lo, high in rows]
    lo, hi = min([0.0, *lows]), max([0.0, *highs])
    if hi - lo <= 0:
        hi = lo + 1.0
    plot = width - label_width - right

    def x_of(v: float) -> float:
        return label_width + (float(v) - lo) / (hi - lo) * plot

    def short(v: float) -> str:
        return f"{v:.{digits}g}" if abs(v) >= 10 ** (-digits) or v == 0 else f"{v:.1e}"

    zero = x_of(0.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart interval-chart" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{zero:.1f}" y1="4" x2="{zero:.1f}" y2="{height - 22}" stroke="{_GRID}" stroke-width="2"/>',
        f'<text x="{label_width}" y="{height - 6}" font-size="10" fill="{_TEXT}">{escape(short(lo))}</text>',
        f'<text x="{width - right}" y="{height - 6}" text-anchor="end" font-size="10" fill="{_TEXT}">{escape(short(hi))}</text>',
    ]
    if zero - label_width > 36 and width - right - zero > 36:  # room between the ends' labels
        parts.append(f'<text x="{zero:.1f}" y="{height - 6}" text-anchor="middle" font-size="10" fill="{_TEXT}">0</text>')
    for i, (label, estimate, low, high) in enumerate(rows):
        y = 4 + i * row_height + row_height / 2
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12" '
            f'fill="{_TEXT}">{escape(fit_label(label, label_width - 10))}</text>'
            f'<line x1="{x_of(low):.1f}" y1="{y:.1f}" x2="{x_of(high):.1f}" y2="{y:.1f}" stroke="{_INK}" stroke-width="2"/>'
            f'<line x1="{x_of(low):.1f}" y1="{y - 5:.1f}" x2="{x_of(low):.1f}" y2="{y + 5:.1f}" stroke="{_INK}"/>'
            f'<line x1="{x_of(high):.1f}" y1="{y - 5:.1f}" x2="{x_of(high):.1f}" y2="{y + 5:.1f}" stroke="{_INK}"/>'
            f'<circle class="mark" data-label="{escape(label)}" data-value="{_fmt(float(estimate))}" '
            f'data-low="{_fmt(float(low))}" data-high="{_fmt(float(high))}" '
            f'cx="{x_of(estimate):.1f}" cy="{y:.1f}" r="4.5" fill="{_INK}"/>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def fmt_value(value: float) -> str:
    """A number as the charts write it in ``data-value`` (tables beside them use the same)."""
    return _fmt(float(value))


def depth_chart(
    cumulative: Sequence[float],
    marks: Sequence[tuple[int, float]],
    *,
    title: str,
    lines: Sequence[tuple[int, str]] = (),
    width: int = 560,
    height: int = 240,
) -> Markup:
    """A curve over ``len(cumulative)`` pieces (x = pieces, to scale; y may go below zero), with a
    dot at each (pieces, value) of ``marks`` — the rows of the table beside it — and a dashed
    vertical line at each (pieces, label) of ``lines``."""
    left, right, top_pad, bottom = 64, 20, 16, 34
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    n = max(1, len(cumulative))
    values = [float(v) for v in cumulative] or [0.0]
    lo, hi = min(0.0, *values), max(0.0, *values)
    if hi - lo <= 0:
        hi = lo + 1.0

    def x_of(pieces: float) -> float:
        return left + plot_w * pieces / n

    def y_of(v: float) -> float:
        return top_pad + plot_h * (hi - float(v)) / (hi - lo)

    step = max(1, len(values) // 300)
    points = " ".join(f"{x_of(i + 1):.1f},{y_of(values[i]):.1f}" for i in range(0, len(values), step))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart depth-chart" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{y_of(0):.1f}" x2="{width - right}" y2="{y_of(0):.1f}" stroke="{_GRID}"/>',
        f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{top_pad + plot_h}" stroke="{_GRID}"/>',
        f'<text x="{left - 4}" y="{y_of(hi) + 4:.1f}" text-anchor="end" font-size="10" fill="{_TEXT}">{escape(_fmt(round(hi, 2)))}</text>',
        f'<text x="{left - 4}" y="{y_of(lo) + 4:.1f}" text-anchor="end" font-size="10" fill="{_TEXT}">{escape(_fmt(round(lo, 2)))}</text>',
        f'<text x="{left}" y="{height - 18}" font-size="10" fill="{_TEXT}">0</text>',
        f'<text x="{width - right}" y="{height - 18}" text-anchor="end" font-size="10" fill="{_TEXT}">{n:,}</text>',
        f'<polyline points="{points}" fill="none" stroke="{_INK}" stroke-width="2"/>',
    ]
    for i, (pieces, label) in enumerate(lines):
        if pieces > 0:
            x = x_of(pieces)
            parts.append(  # each line's label a row lower than the last: close depths do not overprint
                f'<line x1="{x:.1f}" y1="{top_pad}" x2="{x:.1f}" y2="{top_pad + plot_h}" stroke="#9a6700" stroke-dasharray="4 3"/>'
                f'<text x="{x + 3:.1f}" y="{top_pad + 10 + 12 * i}" font-size="10" fill="#9a6700">{escape(label)} {pieces:,}</text>'
            )
    for pieces, value in marks:
        parts.append(
            f'<circle class="mark" data-label="{pieces}" data-value="{_fmt(float(value))}" '
            f'cx="{x_of(pieces):.1f}" cy="{y_of(value):.1f}" r="3.5" fill="{_INK}"/>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
