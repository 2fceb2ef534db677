"""Server-rendered SVG charts of recorded samples: utilization over time and the peak-hour
heatmap. Pure: plain data in, an SVG string out (no scripts, no external assets).

Every drawn value carries a ``data-*`` attribute and a ``<title>`` (hover text), so a
person, a screen reader and a test can read the numbers back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from html import escape

__all__ = ["HeatCell", "Heatmap", "Series", "SeriesPoint", "heatmap_svg", "line_chart_svg"]

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One time bucket: the highest utilization and connections seen in it."""

    start: datetime
    max_utilization_percent: float
    avg_utilization_percent: float
    max_connections: int
    samples: int


@dataclass(frozen=True, slots=True)
class Series:
    """Utilization over a period, one point per bucket that has samples (oldest first)."""

    start: datetime
    end: datetime
    bucket_seconds: int
    points: tuple[SeriesPoint, ...]
    warning_percent: float | None = None
    critical_percent: float | None = None


@dataclass(frozen=True, slots=True)
class HeatCell:
    """Connections in one (day of week, hour) cell: the maximum and the 95th percentile."""

    max_connections: int
    p95_connections: float
    samples: int


@dataclass(frozen=True, slots=True)
class Heatmap:
    """Cells keyed by (ISO day of week 1-7, hour 0-23), in the current time zone."""

    days: int
    cells: dict[tuple[int, int], HeatCell] = field(default_factory=dict)

    @property
    def samples(self) -> int:
        """Samples behind the whole map."""
        return sum(c.samples for c in self.cells.values())


_W, _H = 720, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 12, 12, 28


def line_chart_svg(series: Series) -> str:
    """Max utilization per bucket as a line with points, threshold lines, 0-100 % axis
    (higher when a point exceeds 100)."""
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    span = max(1.0, (series.end - series.start).total_seconds())
    top = max([100.0] + [p.max_utilization_percent for p in series.points])

    def x(when: datetime) -> float:
        return _LEFT + plot_w * min(1.0, max(0.0, (when - series.start).total_seconds() / span))

    def y(value: float) -> float:
        return _TOP + plot_h * (1 - value / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="dbconnmgr-chart" '
        f'viewBox="0 0 {_W} {_H}" width="100%" role="img" '
        f'aria-label="utilization of usable slots over time" data-points="{len(series.points)}">',
        f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
        f'stroke="#ccc"/>',
    ]
    for tick in (0, 25, 50, 75, 100):
        parts.append(
            f'<text x="{_LEFT - 6}" y="{y(tick) + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#666">{tick}%</text>'
        )
    for name, value, colour in (
        ("warning", series.warning_percent, "#e0a800"),
        ("critical", series.critical_percent, "#ba2121"),
    ):
        if value is not None:
            parts.append(
                f'<line class="threshold-{name}" x1="{_LEFT}" x2="{_W - _RIGHT}" '
                f'y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="{colour}" '
                f'stroke-dasharray="4 3"><title>{name} {value:g}%</title></line>'
            )
    for label_at, anchor in ((series.start, "start"), (series.end, "end")):
        parts.append(
            f'<text x="{x(label_at):.1f}" y="{_H - 8}" font-size="11" text-anchor="{anchor}" '
            f'fill="#666">{escape(label_at.strftime("%a %H:%M"))}</text>'
        )
    if series.points:
        coords = " ".join(
            f"{x(p.start):.1f},{y(p.max_utilization_percent):.1f}" for p in series.points
        )
        parts.append(f'<polyline points="{coords}" fill="none" stroke="#417690" stroke-width="2"/>')
        for p in series.points:
            parts.append(
                f'<circle class="point" cx="{x(p.start):.1f}" '
                f'cy="{y(p.max_utilization_percent):.1f}" r="2.5" fill="#417690" '
                f'data-utilization="{p.max_utilization_percent:.1f}" '
                f'data-connections="{p.max_connections}"><title>'
                f"{escape(p.start.strftime('%Y-%m-%d %H:%M'))}: max "
                f"{p.max_utilization_percent:.1f}% ({p.max_connections} connections), avg "
                f"{p.avg_utilization_percent:.1f}%, {p.samples} samples</title></circle>"
            )
    else:
        parts.append(
            f'<text x="{_W / 2}" y="{_H / 2}" text-anchor="middle" fill="#666">'
            "no samples recorded in this period (manage.py db_connections --action=monitor "
            "--record)</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def heatmap_svg(heatmap: Heatmap) -> str:
    """Day of week x hour; colour by the cell's maximum, text ``max/p95``."""
    cell_w, cell_h, left, top = 28, 22, 40, 18
    width, height = left + 24 * cell_w + 4, top + 7 * cell_h + 4
    peak = max([1] + [c.max_connections for c in heatmap.cells.values()])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="dbconnmgr-heatmap" '
        f'viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="connections by day of week and hour" data-cells="{len(heatmap.cells)}">'
    ]
    for hour in range(0, 24, 3):
        parts.append(
            f'<text x="{left + hour * cell_w + cell_w / 2}" y="12" font-size="10" '
            f'text-anchor="middle" fill="#666">{hour:02d}h</text>'
        )
    for day in range(1, 8):
        row_y = top + (day - 1) * cell_h
        parts.append(
            f'<text x="{left - 6}" y="{row_y + cell_h / 2 + 4}" font-size="11" '
            f'text-anchor="end" fill="#666">{DAYS[day - 1]}</text>'
        )
        for hour in range(24):
            cell = heatmap.cells.get((day, hour))
            cx = left + hour * cell_w
            if cell is None:
                parts.append(
                    f'<rect x="{cx}" y="{row_y}" width="{cell_w - 2}" height="{cell_h - 2}" '
                    f'fill="#f4f4f4"><title>{DAYS[day - 1]} {hour:02d}h: no samples</title></rect>'
                )
                continue
            shade = cell.max_connections / peak
            # light blue to the admin's dark blue
            r, g, b = (
                int(235 - (235 - 32) * shade),
                int(243 - (243 - 80) * shade),
                250 - int((250 - 120) * shade),
            )
            text = "#fff" if shade > 0.55 else "#333"
            parts.append(
                f'<g class="cell" data-day="{day}" data-hour="{hour}" '
                f'data-max="{cell.max_connections}" data-p95="{cell.p95_connections:.1f}">'
                f'<rect x="{cx}" y="{row_y}" width="{cell_w - 2}" height="{cell_h - 2}" '
                f'fill="rgb({r},{g},{b})"/>'
                f'<text x="{cx + (cell_w - 2) / 2}" y="{row_y + cell_h / 2 + 3}" font-size="9" '
                f'text-anchor="middle" fill="{text}">{cell.max_connections}</text>'
                f"<title>{DAYS[day - 1]} {hour:02d}h: max {cell.max_connections}, p95 "
                f"{cell.p95_connections:.1f} connections ({cell.samples} samples)</title></g>"
            )
    parts.append("</svg>")
    return "".join(parts)
