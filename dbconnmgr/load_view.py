"""The database load of ``--action=peak`` in a terminal (rich): one line per time bucket, a
bar stacked by wait class, the AAS beside the connections and the refused connections, and
the largest applications and code labels of the bucket.

Names are shown through :func:`dbconnmgr.render.literal` (never parsed as markup, control
characters escaped): an application name or a code label is whatever a client sent.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich import box
from rich.console import RenderableType
from rich.text import Text

from dbconnmgr.core.charts import LoadSeries
from dbconnmgr.core.load import NO_CODE
from dbconnmgr.render import DataTable, literal

#: Terminal colours of the wait classes (the SVG chart's, by name).
CLASS_STYLES: dict[str, str] = {
    "CPU": "green",
    "Lock": "red",
    "LWLock": "dark_orange",
    "IO": "blue",
    "Client": "grey50",
    "IPC": "magenta",
    "Timeout": "yellow",
    "Activity": "cyan",
    "BufferPin": "orange4",
    "Extension": "deep_pink3",
    "other": "grey70",
}
#: Characters of the widest bar.
BAR_WIDTH = 20
#: Letters of the wait classes in a plain (uncoloured) bar.
CLASS_LETTERS: dict[str, str] = {"CPU": "C", "Lock": "L", "LWLock": "W", "IO": "I",
                                 "Client": "N", "IPC": "P", "Timeout": "T", "Activity": "A",
                                 "BufferPin": "B", "Extension": "E", "other": "o"}  # fmt: skip


def _top(parts: Mapping[str, float], count: int = 2) -> Text:
    named = sorted(((n, v) for n, v in parts.items() if n != "other"), key=lambda x: -x[1])
    return literal(", ".join(f"{n} {v:.1f}" for n, v in named[:count]) or "-")


def load_renderables(
    load: Mapping[str, LoadSeries], *, plain: bool = False
) -> list[RenderableType]:
    """The load table: ``load`` as :func:`dbconnmgr.history.load_charts` returns it for
    ``wait_class``, ``application`` and ``code``."""
    by_class = load["wait_class"]
    if not by_class.points:
        return []
    scale = max(by_class.max_aas, by_class.cpus or 0.0, 1e-9)
    span = "hour" if by_class.bucket_seconds == 3600 else "day"
    cpus = f"; {by_class.cpus:g} CPUs (DATABASE_CPUS) marked |" if by_class.cpus else ""
    legend = " ".join(f"{CLASS_LETTERS.get(n, '?')}={n}" if plain else n for n in by_class.names)
    table = DataTable(
        title=literal(
            f"Database load per {span}: average active sessions by wait class ({legend}){cpus}"
        ),
        box=box.ASCII2 if plain else box.ROUNDED,
        title_justify="left",
        wrap={"top applications"},
    )
    apps, codes = load.get("application"), load.get("code")
    # a code column only when some session carried a label
    labelled = codes is not None and any(n not in (NO_CODE, "other") for n in codes.names)
    columns = [
        ("start", "left"),
        ("AAS", "right"),
        ("by wait class", "left"),
        ("conns", "right"),
        ("refused", "right"),
        ("top applications", "left"),
    ]
    if labelled:
        columns.append(("top code", "left"))
    for column, justify in columns:
        table.add_column(column, justify=justify, no_wrap=column != "top applications")  # type: ignore[arg-type]
    for i, p in enumerate(by_class.points):
        bar = Text()
        for name in by_class.names:
            cells = round(p.parts.get(name, 0.0) / scale * BAR_WIDTH)
            if cells:
                if plain:
                    bar.append(CLASS_LETTERS.get(name, "?") * cells)
                else:
                    bar.append("\u2588" * cells, style=CLASS_STYLES.get(name, "white"))
        if by_class.cpus:
            mark = round(by_class.cpus / scale * BAR_WIDTH)
            bar.pad_right(max(0, mark - len(bar)))
            bar = bar[:mark] + Text("|", style="bold red") + bar[mark:]
        fmt = "%Y-%m-%d %H:00" if span == "hour" else "%Y-%m-%d"
        row: list[RenderableType] = [
            literal(p.start.strftime(fmt)),
            literal(f"{p.aas:.2f}"),
            bar,
            literal(p.max_connections),
            literal("-" if p.refused_connections is None else p.refused_connections),
            _top(apps.points[i].parts) if apps else Text("-"),
        ]
        if labelled and codes is not None:
            row.append(_top(codes.points[i].parts))
        table.add_row(*row)
    return [Text(""), table]
