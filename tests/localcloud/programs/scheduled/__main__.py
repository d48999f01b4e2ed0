"""The project's own program, plus EventBridge schedules added the way a user adds one.

Each rule runs a function that leaves an item in `marksTableName` per run:
- `test-tick` (rate, with a permission for the rule) runs `test-marker`;
- `test-unpermitted-tick` (rate, no permission) must not run `test-unpermitted`;
- `test-cron` (a cron schedule, with a permission) is recorded but not run locally;
- `test-slow-tick` (rate, a permission without source ARN) runs `test-slow`, which takes longer
  than the tests' interval, so its runs would overlap if the scheduler let them.
"""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pulumi
import pulumi_aws as aws

REPO = Path(__file__).resolve().parents[4]

stack = runpy.run_path(str(REPO / "__main__.py"), run_name="__main__")
api = stack["api"]
config = pulumi.Config("wsauth")

marks = aws.dynamodb.Table(
    "test-marks",
    attributes=[{"name": "id", "type": "S"}],
    hash_key="id",
    billing_mode="PAY_PER_REQUEST",
)
role = aws.iam.Role(
    "test-scheduled-role",
    assume_role_policy=json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    ),
)
code = pulumi.FileArchive(str(Path(__file__).parent / "functions"))


def function(name: str, handler: str) -> aws.lambda_.Function:
    return aws.lambda_.Function(
        name,
        name=name,
        role=role.arn,
        code=code,
        handler=handler,
        runtime=config.require("lambdaRuntime"),
        architectures=[config.require("lambdaArchitecture")],
        timeout=5,
        environment=aws.lambda_.FunctionEnvironmentArgs(
            variables={"MARKS_TABLE": marks.name, "MANAGEMENT_ENDPOINT": api.management_endpoint}
        ),
    )


def schedule(
    name: str, expression: str, target: aws.lambda_.Function, *, permit: str | None
) -> aws.cloudwatch.EventRule:
    """A rule running `target`; `permit` is "rule" (source ARN = the rule's), "any" or None."""
    rule = aws.cloudwatch.EventRule(name, name=name, schedule_expression=expression)
    aws.cloudwatch.EventTarget(f"{name}-target", rule=rule.name, arn=target.arn)
    if permit is not None:
        aws.lambda_.Permission(
            f"{name}-invoke",
            action="lambda:InvokeFunction",
            function=target.name,
            principal="events.amazonaws.com",
            source_arn=rule.arn if permit == "rule" else None,
        )
    return rule


tick = schedule(
    "test-tick", "rate(1 minute)", function("test-marker", "scheduledfns.mark"), permit="rule"
)
schedule(
    "test-unpermitted-tick",
    "rate(1 minute)",
    function("test-unpermitted", "scheduledfns.mark"),
    permit=None,
)
schedule(
    "test-cron",
    "cron(0 12 * * ? *)",
    function("test-cron-marker", "scheduledfns.mark"),
    permit="rule",
)
schedule(
    "test-slow-tick", "rate(5 minutes)", function("test-slow", "scheduledfns.slow"), permit="any"
)

pulumi.export("marksTableName", marks.name)
pulumi.export("tickRuleArn", tick.arn)
