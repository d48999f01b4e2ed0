"""Draw the dashboard's layout from its body.

`python -m bench.dashboard_picture > docs/dashboard.svg`

Not a benchmark: the README's picture of the dashboard ("Operating it"). It lays the widgets
out on CloudWatch's 24-column grid as the console does and lists each widget's metrics by
label; no data, since there is no AWS account here.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from pulumi_wsauth.dashboard import DashboardSubject, dashboard_body

COLUMN = 40
ROW = 28
LINE = 15

EXAMPLE = DashboardSubject(
    region="eu-west-1",
    api_id="a1b2c3d4e5",
    stage="prod",
    authorizer_function="wsauth-prod-api-authorizer",
    websocket_function="wsauth-prod-api-websocket",
    sweeper_function="wsauth-prod-api-sweeper",
    counter_function="wsauth-prod-api-counter",
    table_name="connections-table-7c1e2a9",
    index_names=("userIdIndex", "expiryIndex"),
    authorizer_namespace="WsAuth/Authorizer/wsauth-prod-api-authorizer",
    alarm_arns=["arn:aws:cloudwatch:eu-west-1:123456789012:alarm:wsauth-prod-ops-x"] * 13,
)


def _labels(widget: dict[str, Any]) -> list[str]:
    properties = widget["properties"]
    if widget["type"] == "alarm":
        return [f"state of the {len(properties['alarms'])} alarms"]
    labels = []
    for metric in properties["metrics"]:
        options = metric[-1] if isinstance(metric[-1], dict) else {}
        labels.append(options.get("label") or metric[1])
    return labels


def svg(body: str) -> str:
    """The dashboard `body` (JSON) as an SVG picture."""
    widgets = json.loads(body)["widgets"]
    width = 24 * COLUMN
    height = max(w["y"] + w["height"] for w in widgets) * ROW
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="#f2f3f3"/>',
    ]
    for widget in widgets:
        x, y = widget["x"] * COLUMN + 4, widget["y"] * ROW + 4
        w, h = widget["width"] * COLUMN - 8, widget["height"] * ROW - 8
        title = widget["properties"]["title"]
        parts += [
            f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="4" fill="#fff" stroke="#d5dbdb"/>',
            f'<text x="{x + 10}" y="{y + 20}" font-weight="bold" font-size="13">'
            f"{escape(title)}</text>",
        ]
        view = widget["properties"].get("view", widget["type"])
        stat = widget["properties"].get("stat")
        note = f"{view}, {stat} per minute" if stat else view
        parts.append(f'<text x="{x + 10}" y="{y + 36}" fill="#687078">{escape(note)}</text>')
        for number, label in enumerate(_labels(widget)):
            line_y = y + 56 + number * LINE
            if line_y > y + h - 6:
                break
            parts += [
                f'<rect x="{x + 10}" y="{line_y - 9}" width="10" height="10" '
                f'fill="hsl({(number * 67) % 360},55%,50%)"/>',
                f'<text x="{x + 26}" y="{line_y}">{escape(str(label))}</text>',
            ]
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    print(svg(dashboard_body(EXAMPLE)), end="")
