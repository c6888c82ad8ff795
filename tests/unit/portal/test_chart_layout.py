"""Charts keep their title, legend, axis names and target labels apart, and label hours in Beijing time."""

from __future__ import annotations

from typing import Any

from ggzy.hub.portal import charts
from ggzy.node.portal.queries import history_chart, waiting_chart

TARGETS = {"pass": 0.95, "timely": 0.95, "repair": 0.9}
DAYS = [{"day": "2026-10-01", "rates": {k: {"value": 0.9} for k in TARGETS}}]
NODE = {
    "node_id": "fj-01",
    "history": [{"hour": "2026-12-07T23:00:00+00:00", "beats": 120, "disk_used_ratio": 0.4}],
}
HOURS = [
    {
        "hour": "12-08 07:00",
        "beats_ok": 1,
        "beats_failed": 0,
        "disk_used_ratio": 0.5,
        "waiting_1": 0,
        "waiting_2": 0,
    }
]


def options() -> list[dict[str, Any]]:
    return [
        charts.volumes_by_channel([{"day": "2026-10-01", "channel": 1, "received": 3}]),
        charts.rate_trend(DAYS, TARGETS, "合格率、及时率、修复率趋势"),
        charts.delay_histogram([{"label": "<1分钟", "count": 3, "upper_seconds": 60}]),
        charts.rules_bar([{"code": "E-FIELD-REQUIRED", "count": 3}]),
        charts.heartbeat_history(NODE),
        history_chart(HOURS, {"warn": 0.8, "clean": 0.9, "refuse": 0.95}),
        waiting_chart(HOURS),
    ]


def test_title_legend_and_axis_names_have_bands_of_their_own() -> None:
    for option in options():
        title, legend, grid = option["title"]["top"], option["legend"]["top"], option["grid"]["top"]
        assert (
            legend >= title + option["title"]["textStyle"]["fontSize"] + 10
        )  # the title's line, then the legend
        assert grid >= legend + 24 + 30  # the legend's line, then the band where the y axis names sit


def test_target_line_labels_sit_inside_the_plot() -> None:
    marked = [s["markLine"] for o in options() for s in o["series"] if "markLine" in s]
    assert len(marked) == 4
    assert all(m["label"]["position"] == "insideEndTop" for m in marked)  # never clipped at the right edge


def test_heartbeat_hours_are_beijing_hours() -> None:
    assert charts.heartbeat_history(NODE)["xAxis"]["data"] == ["12-08 07时"]  # 23:00 UTC the day before
