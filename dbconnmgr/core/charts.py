"""Server-rendered SVG charts of recorded samples: utilization over time and the peak-hour
heatmap. Pure: plain data in, an SVG string out (no scripts, no external assets).

Every drawn value carries a ``data-*`` attribute and a ``<title>`` (hover text), so a
person, a screen reader and a test can read the numbers back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape

from dbconnmgr.core.load import OTHER, chart_parts

__all__ = [
    "HeatCell",
    "Heatmap",
    "LoadPoint",
    "LoadSeries",
    "Series",
    "SeriesPoint",
    "heatmap_svg",
    "line_chart_svg",
    "load_chart_svg",
]

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


# -- database load over time -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LoadPoint:
    """One time bucket of database load.

    Attributes:
        start: the bucket's start.
        samples: recorded samples in it.
        aas: mean active sessions over its samples (the bucket's AAS).
        parts: the AAS split by the series' dimension (mean sessions per part; the names of
            :attr:`LoadSeries.names`, and ``other`` for the rest).
        max_connections: the highest total of connections in the bucket.
        refused_connections: connections the server refused in the bucket (summed over its
            samples); None where the engine does not count them.
    """

    start: datetime
    samples: int
    aas: float
    parts: dict[str, float]
    max_connections: int
    refused_connections: int | None = None


@dataclass(frozen=True, slots=True)
class LoadSeries:
    """Database load over a period split by one dimension (``wait_class``, ``application``
    or ``code``), one point per bucket that has samples (oldest first).

    Attributes:
        names: the parts in stacking order (bottom first), ``other`` last when present.
        cpus: ``DATABASE_CPUS`` (a line on the chart), None when unset.

    A sample recorded before the split existed counts in ``aas`` but in no part.
    """

    start: datetime
    end: datetime
    bucket_seconds: int
    dimension: str
    names: tuple[str, ...]
    points: tuple[LoadPoint, ...]
    cpus: float | None = None

    @property
    def max_aas(self) -> float:
        """The highest bucket AAS (0 without points)."""
        return max((p.aas for p in self.points), default=0.0)


class LoadSeriesBuilder:
    """The load series of several dimensions, built bucket by bucket (oldest first) by the
    charts read from the samples and from the hourly rollup alike.

    Args:
        names: per dimension, the parts charted by name, in stacking order; each bucket's
            sessions beyond them count as ``other`` (:func:`~dbconnmgr.core.load.chart_parts`).
    """

    def __init__(self, names: Mapping[str, Sequence[str]]) -> None:
        self.names = {d: tuple(parts) for d, parts in names.items()}
        self._points: dict[str, list[LoadPoint]] = {d: [] for d in self.names}
        self._seen: dict[str, set[str]] = {d: set() for d in self.names}

    def add(
        self,
        start: datetime,
        samples: int,
        aas: float,
        sums: Mapping[str, Mapping[str, float | None]],
        max_connections: int,
        refused: int | None,
    ) -> None:
        """One bucket: ``sums[dimension][name]`` is the active sessions of a part summed
        over the bucket's ``samples`` (missing, None or 0: none)."""
        for d, named in self.names.items():
            of = sums.get(d, {})
            parts = chart_parts(((name, of.get(name)) for name in named), samples, aas)
            self._seen[d].update(parts)
            self._points[d].append(
                LoadPoint(start=start, samples=samples, aas=aas, parts=parts,
                          max_connections=max_connections, refused_connections=refused)
            )  # fmt: skip

    def series(
        self, start: datetime, end: datetime, bucket_seconds: int, cpus: float | None
    ) -> dict[str, LoadSeries]:
        """The series of each dimension: only the parts some bucket has are named."""
        return {
            d: LoadSeries(
                start=start,
                end=end,
                bucket_seconds=bucket_seconds,
                dimension=d,
                names=tuple(n for n in [*named, OTHER] if n in self._seen[d]),
                points=tuple(self._points[d]),
                cpus=cpus,
            )
            for d, named in self.names.items()
        }


#: Colours of the stacked parts: wait classes keep theirs (CPU green, Lock red, IO blue...,
#: as RDS Performance Insights draws them); other dimensions take the palette in order.
WAIT_CLASS_COLOURS: dict[str, str] = {
    "CPU": "#3c9a3c",
    "Lock": "#ba2121",
    "LWLock": "#e07b39",
    "IO": "#1f6fb4",
    "Client": "#8a8a8a",
    "IPC": "#9b59b6",
    "Timeout": "#c9b400",
    "Activity": "#5bc0de",
    "BufferPin": "#8b4513",
    "Extension": "#d63384",
}
PALETTE = (
    "#417690", "#e0a800", "#3c9a3c", "#ba2121", "#9b59b6", "#1f6fb4", "#e07b39", "#5bc0de",
    "#8b4513", "#d63384", "#6c757d",
)  # fmt: skip
OTHER_COLOUR = "#bbbbbb"

_LOAD_H = 260
_CONN_H = 70  # the connections and refused strip under the load


def _colour(series: LoadSeries, index: int, name: str) -> str:
    if name == "other":
        return OTHER_COLOUR
    if series.dimension == "wait_class":
        return WAIT_CLASS_COLOURS.get(name, PALETTE[index % len(PALETTE)])
    return PALETTE[index % len(PALETTE)]


def load_chart_svg(series: LoadSeries) -> str:
    """Database load as stacked bars per bucket (the AAS split by the series' dimension), a
    dashed line at the server's CPUs, and on the same time axis below: the highest number
    of connections per bucket (a line) and the connections refused (red bars).

    Every name is escaped (an application name is whatever a client sent): it can end up
    in text and attributes only, never in markup.
    """
    plot_w = _W - _LEFT - _RIGHT
    load_top, load_h = _TOP + 18, _LOAD_H - _TOP - 18 - 10
    conn_top = _LOAD_H + 6
    conn_h = _CONN_H - 12
    height = _LOAD_H + _CONN_H + 24
    span = max(1.0, (series.end - series.start).total_seconds())
    peak = max(series.max_aas, series.cpus or 0.0, 1.0) * 1.1
    max_conn = max([1] + [p.max_connections for p in series.points])
    refused_top = max([1] + [p.refused_connections or 0 for p in series.points])
    bar_w = max(1.0, plot_w * series.bucket_seconds / span - 1)

    def x(when: datetime) -> float:
        return _LEFT + plot_w * min(1.0, max(0.0, (when - series.start).total_seconds() / span))

    def y(value: float) -> float:
        return load_top + load_h * (1 - value / peak)

    what = {"wait_class": "wait class", "application": "application", "code": "code label"}.get(
        series.dimension, series.dimension
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="dbconnmgr-load-chart" '
        f'viewBox="0 0 {_W} {height}" width="100%" role="img" '
        f'aria-label="{escape(f"database load (average active sessions) by {what} over time")}" '
        f'data-dimension="{escape(series.dimension)}" data-points="{len(series.points)}">',
        f'<rect x="{_LEFT}" y="{load_top}" width="{plot_w}" height="{load_h}" fill="none" '
        f'stroke="#ccc"/>',
    ]
    # the legend: one swatch per part, in stacking order
    lx = float(_LEFT)
    for i, name in enumerate(series.names):
        label = name if len(name) <= 24 else name[:23] + "\u2026"
        parts.append(
            f'<g class="legend" data-name="{escape(name)}"><rect x="{lx:.1f}" y="{_TOP}" '
            f'width="10" height="10" fill="{_colour(series, i, name)}"/><text x="{lx + 13:.1f}" '
            f'y="{_TOP + 9}" font-size="10" fill="#333">{escape(label)}</text>'
            f"<title>{escape(name)}</title></g>"
        )
        lx += 22 + 6 * len(label)
    for tick in (0.0, peak / 2 / 1.1, peak / 1.1):
        parts.append(
            f'<text x="{_LEFT - 6}" y="{y(tick) + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#666">{tick:.3g}</text>'
        )
    if series.cpus is not None:
        parts.append(
            f'<line class="cpus" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y(series.cpus):.1f}" '
            f'y2="{y(series.cpus):.1f}" stroke="#ba2121" stroke-dasharray="4 3">'
            f"<title>{series.cpus:g} CPUs (DATABASE_CPUS)</title></line>"
        )
    for p in series.points:
        px = x(p.start)
        base = 0.0
        cells = []
        for i, name in enumerate(series.names):
            value = p.parts.get(name, 0.0)
            if value <= 0:
                continue
            top_y, bottom_y = y(base + value), y(base)
            cells.append(
                f'<rect x="{px:.1f}" y="{top_y:.1f}" width="{bar_w:.1f}" '
                f'height="{max(0.0, bottom_y - top_y):.1f}" fill="{_colour(series, i, name)}" '
                f'data-name="{escape(name)}" data-sessions="{value:.2f}"><title>'
                f"{escape(name)}: {value:.2f}</title></rect>"
            )
            base += value
        split = ", ".join(
            f"{escape(n)} {p.parts[n]:.2f}" for n in series.names if p.parts.get(n, 0) > 0
        )
        parts.append(
            f'<g class="bucket" data-start="{escape(p.start.isoformat())}" '
            f'data-aas="{p.aas:.2f}" data-connections="{p.max_connections}" '
            f'data-refused="{"" if p.refused_connections is None else p.refused_connections}">'
            f"<title>{escape(p.start.strftime('%Y-%m-%d %H:%M'))}: AAS {p.aas:.2f} "
            f"({split or 'no split recorded'}); max {p.max_connections} connections"
            + ("" if p.refused_connections is None else f", {p.refused_connections} refused")
            + f", {p.samples} samples</title>"
            + "".join(cells)
            + "</g>"
        )
    # the connections strip, same time axis
    parts.append(
        f'<rect x="{_LEFT}" y="{conn_top}" width="{plot_w}" height="{conn_h}" fill="none" '
        f'stroke="#ccc"/><text x="{_LEFT - 6}" y="{conn_top + 10}" font-size="10" '
        f'text-anchor="end" fill="#666">{max_conn}</text>'
        f'<text x="{_W - _RIGHT}" y="{conn_top - 2}" font-size="10" text-anchor="end" '
        f'fill="#666">connections (max per bucket) · refused (red)</text>'
    )
    if series.points:
        coords = " ".join(
            f"{x(p.start) + bar_w / 2:.1f},"
            f"{conn_top + conn_h * (1 - p.max_connections / max_conn):.1f}"
            for p in series.points
        )
        parts.append(
            f'<polyline class="connections" points="{coords}" fill="none" stroke="#417690" '
            f'stroke-width="1.5"/>'
        )
        for p in series.points:
            if p.refused_connections:
                h = conn_h * p.refused_connections / refused_top
                parts.append(
                    f'<rect class="refused" x="{x(p.start):.1f}" y="{conn_top + conn_h - h:.1f}" '
                    f'width="{bar_w:.1f}" height="{h:.1f}" fill="#ba2121" opacity="0.8" '
                    f'data-refused="{p.refused_connections}"><title>'
                    f"{escape(p.start.strftime('%Y-%m-%d %H:%M'))}: {p.refused_connections} "
                    "connections refused</title></rect>"
                )
    else:
        parts.append(
            f'<text x="{_W / 2}" y="{load_top + load_h / 2}" text-anchor="middle" fill="#666">'
            "no samples recorded in this period (manage.py db_connections --action=monitor "
            "--record)</text>"
        )
    for label_at, anchor in ((series.start, "start"), (series.end, "end")):
        parts.append(
            f'<text x="{x(label_at):.1f}" y="{height - 6}" font-size="11" '
            f'text-anchor="{anchor}" fill="#666">{escape(label_at.strftime("%a %H:%M"))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
