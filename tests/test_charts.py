"""Pure: the histogram percentile agrees with the peak report's, and the SVG charts draw one
mark per value they are given."""

from __future__ import annotations

import datetime as dt
import random
import re
from collections import Counter

import pytest

from dbconnmgr.core.charts import (
    HeatCell,
    Heatmap,
    Series,
    SeriesPoint,
    heatmap_svg,
    line_chart_svg,
)
from dbconnmgr.core.samples import histogram_percentile, percentile


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("fraction", [0.5, 0.95, 1.0, 0.01])
def test_histogram_percentile_is_the_nearest_rank_percentile(seed: int, fraction: float) -> None:
    rng = random.Random(seed)
    values = [rng.randint(0, 30) for _ in range(rng.randint(1, 200))]
    assert histogram_percentile(Counter(values), fraction) == percentile(list(values), fraction)


def test_histogram_percentile_of_nothing_is_zero() -> None:
    assert histogram_percentile({}, 0.95) == 0


def test_line_chart_draws_one_point_per_bucket_and_the_thresholds() -> None:
    start = dt.datetime(2026, 11, 2, 8, tzinfo=dt.UTC)
    points = tuple(
        SeriesPoint(start + dt.timedelta(minutes=m), 10.0 * m, 5.0, m, 12) for m in range(12)
    )
    series = Series(start, start + dt.timedelta(hours=1), 60, points, 70.0, 85.0)
    svg = line_chart_svg(series)
    assert len(re.findall(r'<circle class="point"', svg)) == 12
    assert 'data-points="12"' in svg
    assert "threshold-warning" in svg and "threshold-critical" in svg
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")  # no assets
    empty = line_chart_svg(Series(start, start + dt.timedelta(hours=1), 60, ()))
    assert "no samples recorded" in empty


def test_heatmap_has_a_cell_per_day_and_hour_with_samples() -> None:
    cells = {(1, 9): HeatCell(40, 35, 720), (7, 23): HeatCell(3, 2, 720)}
    svg = heatmap_svg(Heatmap(days=30, cells=cells))
    found = re.findall(r'<g class="cell" data-day="(\d)" data-hour="(\d+)" data-max="(\d+)"', svg)
    assert sorted(found) == [("1", "9", "40"), ("7", "23", "3")]
    assert svg.count("no samples</title>") == 7 * 24 - 2
