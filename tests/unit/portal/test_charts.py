"""ECharts options are plain data built from the services' answers."""

from __future__ import annotations

import json

from ggzy.hub.portal import charts
from ggzy.hub.stats import TARGETS


def test_volumes_stack_both_channels_on_every_day() -> None:
    rows = [
        {"day": "2026-10-01", "channel": 1, "received": 5},
        {"day": "2026-10-01", "channel": 2, "received": 7},
        {"day": "2026-10-02", "channel": 1, "received": 3},
    ]
    option = charts.volumes_by_channel(rows)
    assert option["xAxis"]["data"] == ["2026-10-01", "2026-10-02"]
    assert [s["data"] for s in option["series"]] == [[5, 3], [7, 0]]
    json.dumps(option)  # no functions: the page embeds it as JSON


def test_rate_trend_marks_each_target_and_leaves_days_without_data_empty() -> None:
    day = {"day": "2026-10-01", "rates": {n: {"value": 0.5} for n in TARGETS}}
    empty = {"day": "2026-10-02", "rates": {n: {"value": None} for n in TARGETS}}
    option = charts.rate_trend([day, empty], TARGETS, "趋势")
    for series, (name, target) in zip(option["series"], TARGETS.items(), strict=True):
        assert series["data"] == [50.0, None], name
        assert series["markLine"]["data"][0]["yAxis"] == round(target * 100, 2)


def test_delay_histogram_colours_the_buckets_past_ten_minutes() -> None:
    buckets = [
        {"label": "≤10", "upper_seconds": 600, "count": 4},
        {"label": ">10", "upper_seconds": None, "count": 1},
    ]
    colours = [d["itemStyle"]["color"] for d in charts.delay_histogram(buckets)["series"][0]["data"]]
    assert colours[0] != colours[1]
