"""README's "Operating it" stays true: every alarm with its default, the cost table as the
model computes it, and the dashboard picture drawn from the dashboard's current body."""

from __future__ import annotations

import re
from pathlib import Path

from bench import dashboard_picture, monthly_cost
from pulumi_wsauth import ALARMS
from pulumi_wsauth.dashboard import dashboard_body

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
SECTION = README[
    README.index("<!-- section:operating -->") : README.index("<!-- /section:operating -->")
]


def test_every_alarm_is_explained_with_its_default_threshold() -> None:
    rows = {
        match.group(1): match.group(0)
        for match in re.finditer(r"^\| `(\w+)` \|.*$", SECTION, re.MULTILINE)
    }
    for key, kind in ALARMS.items():
        assert key in rows, f"README's alarm table lacks {key}"
        symbol = "<" if kind.comparison == "LessThanThreshold" else "≥"
        assert f"{symbol} {kind.default.threshold:,g} " in rows[key], key
    assert set(rows) - set(ALARMS) <= {"ConnectionCount"}


def test_cost_table_is_what_the_model_computes() -> None:
    assert monthly_cost.table() in SECTION


def test_monthly_cost_adds_up_and_grows_with_the_workload() -> None:
    totals = [sum(monthly_cost.monthly_cost(size).values()) for size in monthly_cost.SIZES]
    assert totals == sorted(totals) and totals[0] > 0
    small = monthly_cost.monthly_cost(monthly_cost.SIZES[0])
    # Messages: 100 connections x 1 a minute x 43,800 minutes, echoed; connection minutes.
    assert small["API Gateway"] == (2 * 100 * 43_800 * 1.00 + 100 * 43_800 * 0.25) / 1e6


def test_dashboard_picture_is_drawn_from_the_current_body() -> None:
    drawn = (ROOT / "docs" / "dashboard.svg").read_text()
    assert drawn == dashboard_picture.svg(dashboard_body(dashboard_picture.EXAMPLE))
