"""The region's API Gateway CloudWatch Logs role, which a stage with access logs needs first.

API Gateway refuses a stage with access logs (`CloudWatch Logs role ARN must be set in account
settings to enable logging`) until the region's account setting names a role it can assume. The
stage is among the last resources of a stack, so on a new account or region a first
`pulumi up` would fail with the pool, the table and the functions already created. The stage
waits for the setting instead, made in one of three ways (`cloudwatch_role`):

* `auto` (default): the setting is read as it stands; a role already there is kept, otherwise
  the one this stack creates is set. Re-reading it on the next run finds the same value, so the
  stack stays without changes.
* an IAM role ARN: that role is set.
* `external`: nothing is declared; whoever owns the account has set it (no IAM or
  `apigateway:PATCH` permission is needed for it then).

The setting is region-wide and other APIs may log through it, so `pulumi destroy` leaves it and
the role as they are (`retain_on_delete`): pulumi-aws 7 otherwise resets the setting when the
`Account` resource is deleted, and a deleted role would stop every API's logs in the region.
"""

from __future__ import annotations

import re

import pulumi
import pulumi_aws as aws

from .policies import assumable_by

__all__ = ["CLOUDWATCH_ROLE_MODES", "region_logging_role", "require_cloudwatch_role"]

CLOUDWATCH_ROLE_MODES = ("auto", "external")
"""The `cloudwatch_role` values other than a role ARN."""

_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")
# AWS's own policy for exactly this: write to CloudWatch Logs, nothing else.
_PUSH_TO_LOGS_POLICY = "iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
_TRUST_API_GATEWAY = assumable_by("apigateway.amazonaws.com")


def require_cloudwatch_role(value: object) -> str:
    """Return `value` if it is `auto`, `external` or an IAM role ARN; raise ValueError if not."""
    if isinstance(value, str) and (value in CLOUDWATCH_ROLE_MODES or _ROLE_ARN.fullmatch(value)):
        return value
    raise ValueError(
        f"cloudwatch_role must be 'auto', 'external' or an IAM role ARN "
        f"(arn:aws:iam::<account>:role/<name>); got {value!r}"
    )


def region_logging_role(
    name: str, cloudwatch_role: str, parent: pulumi.Resource
) -> list[pulumi.Resource]:
    """Declare what makes the region's API Gateway able to write CloudWatch Logs.

    Args:
        name: Prefix of the resources' names.
        cloudwatch_role: `auto`, `external` or an IAM role ARN (see the module's docstring).
        parent: The component that owns them.

    Returns:
        The resources a stage with access logs must be created after (none for `external`).
    """
    if cloudwatch_role == "external":
        return []
    kept = pulumi.ResourceOptions(parent=parent, retain_on_delete=True)
    role_arn: pulumi.Input[str] = cloudwatch_role
    ready: list[pulumi.Resource] = []
    if cloudwatch_role == "auto":
        # A read, not a resource: pulumi-aws has no data source for these settings, and the
        # provider's read is GetAccount with the stack's own credentials and region.
        current = aws.apigateway.Account.get(
            f"{name}-region-logging-now",
            aws.get_caller_identity_output().account_id,
            opts=pulumi.ResourceOptions(parent=parent),
        )
        role = aws.iam.Role(
            f"{name}-apigateway-logs",
            assume_role_policy=_TRUST_API_GATEWAY,
            description="Lets API Gateway write this region's access and execution logs",
            opts=kept,
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-apigateway-logs",
            role=role.name,
            policy_arn=role.arn.apply(
                lambda arn: f"arn:{arn.split(':')[1]}:{_PUSH_TO_LOGS_POLICY}"
            ),
            opts=kept,
        )
        role_arn = pulumi.Output.all(current.cloudwatch_role_arn, role.arn).apply(
            lambda arns: arns[0] or arns[1]
        )
        ready.append(attachment)
    account = aws.apigateway.Account(
        f"{name}-region-logging",
        cloudwatch_role_arn=role_arn,
        # pulumi-aws retries while a new role's trust has not yet reached API Gateway.
        opts=pulumi.ResourceOptions.merge(kept, pulumi.ResourceOptions(depends_on=ready)),
    )
    return [account]
