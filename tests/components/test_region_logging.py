"""The region's API Gateway CloudWatch role: set before the stage, kept by `pulumi destroy`."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.components.fakes import ACCOUNT, Deployment
from tests.components.test_websocket_api import STAGE, build

ACCOUNT_SETTINGS = "aws:apigateway/account:Account"
ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
OTHER_TEAMS_ROLE = f"arn:aws:iam::{ACCOUNT}:role/platform-apigateway-logs"
PUSH_TO_LOGS = "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"


def test_new_account_gets_a_role_before_the_stage(deploy: Callable[..., Deployment]) -> None:
    """With no role in the region, the stack sets its own, and the stage waits for that."""
    deployment = deploy(build())
    role = deployment.one(ROLE, "ws-apigateway-logs")
    attachment = deployment.one(ATTACHMENT, "ws-apigateway-logs")
    settings = deployment.one(ACCOUNT_SETTINGS, "ws-region-logging")
    stage = deployment.one(STAGE, "ws-stage")

    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "apigateway.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    assert attachment.inputs == {"role": role.resource_id, "policyArn": PUSH_TO_LOGS}
    assert settings.inputs["cloudwatchRoleArn"] == role.state["arn"]
    assert attachment.urn in settings.dependencies
    assert settings.urn in stage.dependencies


def test_a_role_already_set_is_kept(deploy: Callable[..., Deployment]) -> None:
    """A region whose setting names a role keeps that role (the next run reads its own back)."""
    deployment = deploy(build(), region_cloudwatch_role=OTHER_TEAMS_ROLE)

    settings = deployment.one(ACCOUNT_SETTINGS, "ws-region-logging")
    assert settings.inputs["cloudwatchRoleArn"] == OTHER_TEAMS_ROLE
    assert settings.urn in deployment.one(STAGE, "ws-stage").dependencies


def test_a_given_role_is_set_and_nothing_created(deploy: Callable[..., Deployment]) -> None:
    """An IAM role ARN is set as it is; the stack creates no role of its own."""
    deployment = deploy(build(cloudwatch_role=OTHER_TEAMS_ROLE))

    settings = deployment.one(ACCOUNT_SETTINGS, "ws-region-logging")
    assert settings.inputs["cloudwatchRoleArn"] == OTHER_TEAMS_ROLE
    assert not deployment.of_type(ATTACHMENT)
    assert not [role for role in deployment.of_type(ROLE) if "apigateway" in role.name]


@pytest.mark.parametrize(
    "settings",
    [{"cloudwatch_role": "external"}, {"access_logging": False}],
    ids=["external", "no-access-logs"],
)
def test_nothing_region_wide_when_not_asked(
    deploy: Callable[..., Deployment], settings: dict[str, object]
) -> None:
    """`external`, or no access logs: the region's settings are not touched, nor even read."""
    deployment = deploy(build(**settings))

    assert not deployment.of_type(ACCOUNT_SETTINGS)
    assert not deployment.of_type(ATTACHMENT)
    assert "aws:index/getCallerIdentity:getCallerIdentity" not in deployment.calls


@pytest.mark.parametrize("cloudwatch_role", ["auto", OTHER_TEAMS_ROLE])
def test_destroy_keeps_what_other_apis_log_through(
    deploy: Callable[..., Deployment], cloudwatch_role: str
) -> None:
    """The region-wide setting and the role it may name outlive this stack's destroy."""
    deployment = deploy(build(cloudwatch_role=cloudwatch_role))

    region_wide = [
        *deployment.of_type(ACCOUNT_SETTINGS),
        *deployment.of_type(ATTACHMENT),
        *[role for role in deployment.of_type(ROLE) if role.name == "ws-apigateway-logs"],
    ]
    assert region_wide
    assert all(resource.retain_on_delete for resource in region_wide)
    assert not any(
        resource.retain_on_delete
        for resource in deployment.resources
        if resource not in region_wide and resource.typ.startswith("aws:")
    )
