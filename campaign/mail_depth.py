"""The mail-depth curve of a mailing decision, and its chart.

:func:`depth_curve` takes the same ``profit`` and ``allowed`` (member × option) as
:func:`campaign.policy.decide`: each member's best allowed piece, most profitable first
(losing pieces included); the marginal profit of the k-th piece, the cumulative profit and
the break-even depth (the last piece that still pays), beside the depth the plan chose.
:func:`depth_svg` draws it as plain SVG with the table beside it (``mail-depth.svg`` of
``bookclub campaigns plan``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import numpy.typing as npt

from campaign.policy import Decision

__all__ = ["DepthCurve", "depth_curve", "depth_svg"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class DepthCurve:
    """The mail-depth curve: pieces in order of profit, each with its marginal and cumulative profit."""

    marginal: FloatArray  # profit of the k-th piece (best allowed option per member, best first)
    cumulative: FloatArray
    break_even: int  # pieces with positive marginal profit
    chosen: int  # pieces in the plan
    audience: int

    def table(self, rows: int = 10) -> list[dict[str, float]]:
        """``rows`` evenly spaced depths up to the last candidate piece, plus the break-even depth."""
        n = self.marginal.size
        if n == 0:
            return []
        depths = sorted({max(1, round(n * (i + 1) / rows)) for i in range(rows)} | {max(1, self.break_even)})
        return [
            {
                "pieces": int(d),
                "share_of_audience": d / max(1, self.audience),
                "marginal_profit": float(self.marginal[d - 1]),
                "cumulative_profit": float(self.cumulative[d - 1]),
            }
            for d in depths
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "break_even_depth": self.break_even,
            "chosen_depth": self.chosen,
            "audience": self.audience,
            "profit_at_break_even": float(self.cumulative[self.break_even - 1]) if self.break_even else 0.0,
            "table": self.table(),
        }


def depth_curve(profit: FloatArray, allowed: BoolArray, decision: Decision | None = None) -> DepthCurve:
    """Each member's best allowed piece, most profitable first (losing pieces included, so the
    curve shows where mailing deeper stops paying)."""
    masked = np.where(allowed, profit, -np.inf)
    best = masked.max(axis=1) if masked.shape[1] else np.full(masked.shape[0], -np.inf)
    best = np.sort(best[np.isfinite(best)])[::-1]
    chosen = int(np.count_nonzero(decision.choice >= 0)) if decision is not None else 0
    return DepthCurve(best, np.cumsum(best), int(np.count_nonzero(best > 0)), chosen, int(profit.shape[0]))


def depth_svg(curve: DepthCurve, *, title: str = "Mail depth", currency: str = "") -> str:
    """The curve as plain SVG: cumulative profit against pieces mailed, the break-even depth and
    the plan's depth marked, and the table of figures beside the chart."""
    width, height, left, top, plot_w, plot_h = 900, 380, 70, 40, 480, 280
    n = curve.marginal.size
    lines = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<title>{escape(title)}</title>',
        f'<text x="{left}" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>',
    ]
    if n:
        step = max(1, n // 400)
        xs = np.arange(0, n, step)
        ys = curve.cumulative[xs]
        lo, hi = min(0.0, float(curve.cumulative.min())), max(1e-9, float(curve.cumulative.max()))

        def px(k: float) -> float:
            return left + plot_w * k / max(1, n)

        def py(v: float) -> float:
            return top + plot_h * (hi - v) / (hi - lo)

        points = " ".join(f"{px(float(k) + 1):.1f},{py(float(v)):.1f}" for k, v in zip(xs, ys, strict=True))
        lines.append(f'<line x1="{left}" y1="{py(0):.1f}" x2="{left + plot_w}" y2="{py(0):.1f}" stroke="#ccc"/>')
        lines.append(f'<polyline points="{points}" fill="none" stroke="#1f5fa8" stroke-width="2"/>')
        marks = ((curve.break_even, "break-even", "#b03030", 14), (curve.chosen, "plan", "#2a8a3a", 30))
        for depth, label, colour, dy in marks:
            if depth:
                x = px(depth)
                anchor = "end" if x > left + plot_w * 0.7 else "start"
                lines.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" stroke="{colour}" '
                             'stroke-dasharray="4 3"/>')  # fmt: skip
                lines.append(f'<text x="{x + (-3 if anchor == "end" else 3):.1f}" y="{top + dy}" fill="{colour}" '
                             f'text-anchor="{anchor}">{label} {depth:,}</text>')  # fmt: skip
        lines.append(f'<text x="{left}" y="{top + plot_h + 18}">0</text>')
        lines.append(f'<text x="{left + plot_w}" y="{top + plot_h + 18}" text-anchor="end">{n:,} pieces</text>')
        lines.append(f'<text x="{left - 6}" y="{py(hi) + 4:.1f}" text-anchor="end">{hi:,.0f}</text>')
        lines.append(f'<text x="{left - 6}" y="{py(lo) + 4:.1f}" text-anchor="end">{lo:,.0f}</text>')
        lines.append(f'<text x="{left + plot_w / 2}" y="{top + plot_h + 34}" text-anchor="middle">'
                     f'pieces mailed, most profitable first — cumulative profit {escape(currency)}</text>')  # fmt: skip
    tx = left + plot_w + 30
    lines.append(f'<text x="{tx}" y="{top}" font-weight="bold">pieces · marginal · cumulative</text>')
    for r, row in enumerate(curve.table(), start=1):
        mark = " ◀ break-even" if row["pieces"] == curve.break_even else ""
        lines.append(
            f'<text x="{tx}" y="{top + 18 * r}">{row["pieces"]:,} · {row["marginal_profit"]:,.2f} · '
            f'{row["cumulative_profit"]:,.0f}{mark}</text>'
        )
    lines.append("</svg>")
    return "\n".join(lines) + "\n"
