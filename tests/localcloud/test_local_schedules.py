"""End to end with a program that adds EventBridge schedules: the local cloud runs them.

The program (`programs/scheduled/`) is the project's `__main__.py` plus rules whose functions
leave an item in a table per run: one permitted for its rule, one without a permission, one on
a cron schedule, and one slower than the interval. The cloud runs every rate() schedule every
half second (`--sweep-interval 0.5`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wsauth.localcloud.testing import (
    REPO_ROOT,
    LocalCloud,
    descendant_pids,
    eventually,
    start_local_cloud,
)

pytestmark = pytest.mark.e2e

PROGRAM = Path(__file__).parent / "programs" / "scheduled"


@pytest.fixture(scope="module")
def scheduled_cloud() -> Iterator[LocalCloud]:
    with start_local_cloud(["--no-web"], program_dir=PROGRAM, sweep_interval=0.5) as cloud:
        yield cloud


def _marks(cloud: LocalCloud, function: str) -> list[dict[str, Any]]:
    """The items the function's runs left, oldest first where they say when they started."""
    items = cloud.client("dynamodb").scan(
        TableName=cloud.outputs["marksTableName"],
        FilterExpression="#f = :f",
        ExpressionAttributeNames={"#f": "function"},
        ExpressionAttributeValues={":f": {"S": function}},
        ConsistentRead=True,
    )["Items"]
    return sorted(items, key=lambda item: float(item.get("started", {}).get("N", 0)))


def _at_least(cloud: LocalCloud, function: str, count: int) -> list[dict[str, Any]]:
    """Wait until the function has run `count` times; return its items."""
    return eventually(lambda: (marks := _marks(cloud, function))[count - 1 :] and marks)


def test_permitted_schedule_runs_repeatedly_with_a_scheduled_event(
    scheduled_cloud: LocalCloud,
) -> None:
    """Runs every half second, each with its own EventBridge Scheduled Event from the rule."""
    marks = _at_least(scheduled_cloud, "test-marker", 3)
    events = [json.loads(item["event"]["S"]) for item in marks]
    assert len({event["id"] for event in events}) == len(events)
    event = events[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event.pop("time"))
    event.pop("id")
    assert event == {
        "version": "0",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "region": scheduled_cloud.outputs["region"],
        "resources": [scheduled_cloud.outputs["tickRuleArn"]],
        "detail": {},
    }


def test_scheduled_function_posts_to_its_apis_local_endpoint(scheduled_cloud: LocalCloud) -> None:
    """MANAGEMENT_ENDPOINT names the API, so boto3 is pointed at that API's local gateway."""
    marks = _at_least(scheduled_cloud, "test-marker", 1)
    assert marks[0]["managementEndpoint"]["S"] == scheduled_cloud.outputs["managementEndpoint"]


def test_each_run_is_one_log_line(scheduled_cloud: LocalCloud) -> None:
    """One INFO line per run names the function and the rule and gives the duration."""
    pattern = re.compile(r"^\S+ scheduled test-marker \(test-tick\) ran in \d+ ms$", re.M)
    eventually(lambda: len(pattern.findall(scheduled_cloud.log_text())) >= 2)


def test_without_a_permission_the_target_never_runs_and_is_warned_about_once(
    scheduled_cloud: LocalCloud,
) -> None:
    """EventBridge needs a Lambda permission for events.amazonaws.com; so does the local cloud."""
    # GIVEN enough time for the permitted rule on the same interval to have run several times
    _at_least(scheduled_cloud, "test-marker", 4)
    assert _marks(scheduled_cloud, "test-unpermitted") == []
    log = scheduled_cloud.log_text()
    assert log.count("no permission lets events.amazonaws.com invoke test-unpermitted ") == 1
    assert "rule/test-unpermitted-tick: add an aws.lambda_.Permission" in log


def test_cron_schedule_is_recorded_and_named_not_run(scheduled_cloud: LocalCloud) -> None:
    """A cron() rule does not stop the cloud; it is named in a warning and never runs."""
    _at_least(scheduled_cloud, "test-marker", 4)
    assert _marks(scheduled_cloud, "test-cron-marker") == []
    assert (
        "schedule test-cron (cron(0 12 * * ? *)) is recorded but not run locally: only rate() "
        "schedules run (test-cron-marker will not run)"
    ) in scheduled_cloud.log_text()


def test_runs_of_one_rule_never_overlap(scheduled_cloud: LocalCloud) -> None:
    """A run that outlasts the interval makes the next ticks skip, not pile up."""
    marks = _at_least(scheduled_cloud, "test-slow", 3)
    starts = [float(mark["started"]["N"]) for mark in marks]
    # Each run takes a second, twice the interval. Only the newest may still be going.
    ends = [float(mark.get("finished", {"N": "inf"})["N"]) for mark in marks[:-1]]
    assert all(start >= end for end, start in zip(ends, starts[1:], strict=True))


def test_stopping_mid_run_is_clean(tmp_path: Path) -> None:
    """SIGTERM while a scheduled run is in flight: exit 0, no process left, no traceback."""
    with start_local_cloud(
        ["--no-web"], program_dir=PROGRAM, workdir=tmp_path, sweep_interval=0.5
    ) as cloud:
        # GIVEN a slow run that has started and not finished
        eventually(lambda: any("finished" not in m for m in _marks(cloud, "test-slow")))
        children = descendant_pids(cloud.process.pid)
        assert any(_runs_slow(pid) for pid in children)
        assert cloud.stop() == 0
        assert [pid for pid in children if _alive(pid)] == []
    log = (tmp_path / "local.log").read_text()
    assert "Traceback" not in log and "Task was destroyed" not in log


def _runs_slow(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return b"scheduledfns.slow" in cmdline.read()
    except FileNotFoundError:
        return False


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _run_local(program: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wsauth", "local", "--port", "0", "--program", str(program), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            'schedule_expression="rate(5 minute)"',
            "test-rule: schedule 'rate(5 minute)': EventBridge wants the singular unit for 1 "
            "and the plural otherwise, e.g. rate(1 minute) or rate(5 minutes)",
        ),
        (
            'schedule_expression="every 5 minutes"',
            "test-rule: schedule 'every 5 minutes': write rate(N minute|minutes|hour|hours|"
            "day|days) or cron(...)",
        ),
        (
            'schedule_expression="rate(1 hour)", event_bus_name="orders"',
            "test-rule: schedule_expression on event bus 'orders': EventBridge runs schedules "
            "only on the default bus",
        ),
    ],
    ids=["plural unit for 5", "not a schedule", "custom bus"],
)
def test_schedule_eventbridge_refuses_is_refused_at_start(
    tmp_path: Path, rule: str, expected: str
) -> None:
    """A rule `pulumi up` would fail on fails the local cloud's start, naming the rule."""
    (tmp_path / "Pulumi.yaml").write_text("name: scheduled\nruntime: python\n")
    (tmp_path / "__main__.py").write_text(
        textwrap.dedent(
            f"""
            import pulumi_aws as aws
            aws.cloudwatch.EventRule("test-rule", {rule})
            """
        )
    )
    result = _run_local(tmp_path)
    assert result.returncode != 0
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_sweep_interval_must_be_positive() -> None:
    """`--sweep-interval 0` is a usage error, before anything starts."""
    result = _run_local(PROGRAM, "--sweep-interval", "0")
    assert result.returncode == 2
    assert "--sweep-interval: must be a number of seconds > 0, not '0'" in result.stderr
