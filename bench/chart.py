"""A run's ratios against their targets as one SVG bar chart, written beside the report.

One bar per measurement that has a target (`bench.run.chart_bars` says which): propsec's
figure divided by its floor, or by its budget. A tick marks the target on each row; a bar
is green where the target is met and red where not.
Plain SVG, no plotting library: it must render on GitHub and in any browser offline."""
from __future__ import annotations

from dataclasses import dataclass
from html import escape

WIDTH, ROW, LABEL, TOP = 820, 28, 360, 44
BAR_MAX = WIDTH - LABEL - 90


@dataclass(frozen=True)
class Bar:
    label: str
    ratio: float
    target: float
    higher_is_better: bool

    @property
    def met(self) -> bool:
        return self.ratio >= self.target if self.higher_is_better else self.ratio <= self.target


def ratio_chart(rows: list[Bar], title: str) -> str:
    scale_top = max([1.0] + [b.ratio for b in rows] + [b.target for b in rows]) * 1.1
    x = lambda value: LABEL + BAR_MAX * value / scale_top  # noqa: E731
    height = TOP + ROW * len(rows) + 36
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="13">',
             f'<rect width="{WIDTH}" height="{height}" fill="#fff"/>',
             f'<text x="12" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
             f'<line x1="{x(1):.1f}" y1="{TOP - 6}" x2="{x(1):.1f}" y2="{TOP + ROW * len(rows)}" '
             'stroke="#999" stroke-dasharray="3,3"/>',
             f'<text x="{x(1):.1f}" y="{TOP - 10}" text-anchor="middle" fill="#666">1×</text>']
    for i, bar in enumerate(rows):
        y = TOP + i * ROW
        colour = "#2e7d32" if bar.met else "#c62828"
        parts += [
            f'<text x="{LABEL - 8}" y="{y + 18}" text-anchor="end">{escape(bar.label)}</text>',
            f'<rect x="{LABEL}" y="{y + 5}" width="{max(1.0, x(bar.ratio) - LABEL):.1f}" '
            f'height="{ROW - 10}" fill="{colour}"/>',
            f'<line x1="{x(bar.target):.1f}" y1="{y + 1}" x2="{x(bar.target):.1f}" '
            f'y2="{y + ROW - 1}" stroke="#000" stroke-width="2"/>',
            f'<text x="{x(max(bar.ratio, bar.target)) + 6:.1f}" y="{y + 18}">'
            f'{bar.ratio:.2f}× {"≥" if bar.higher_is_better else "≤"} {bar.target:g}×'
            f'{"" if bar.met else " (missed)"}</text>']
    legend_y = TOP + ROW * len(rows) + 24
    parts += [f'<text x="12" y="{legend_y}" fill="#444">Bars: propsec / floor. Black tick: '
              'the target. Green: met; red: missed.</text>', "</svg>"]
    return "\n".join(parts) + "\n"
