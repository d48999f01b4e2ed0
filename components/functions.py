"""How SecuredWebSocketApi builds each of its Lambda functions: its own role, its own policy,
its own log group, created before the function."""

from __future__ import annotations

from collections.abc import Callable

import pulumi
import pulumi_aws as aws

from .naming import physical_name
from .policies import assumable_by
from .websocket_settings import Settings

__all__ = ["FunctionFactory"]

_LAMBDA_ASSUME_ROLE_POLICY = assumable_by("lambda.amazonaws.com")


class FunctionFactory:
    """Builds the functions of one API, children of `parent`, from one archive.

    Architecture, runtime and log retention come from `settings`, the same for every function,
    as `code` is the one archive built for that architecture and runtime.
    """

    def __init__(
        self, name: str, parent: pulumi.Resource, code: pulumi.Archive, settings: Settings
    ) -> None:
        self.name = name
        """The component's name: every resource name starts with it."""
        self.child = pulumi.ResourceOptions(parent=parent)
        """Options that make a resource the component's child."""
        self.log_groups: dict[str, aws.cloudwatch.LogGroup] = {}
        """Each function's log group, by its role name (`authorizer`, `websocket`, …)."""
        self._parent = parent
        self._code = code
        self._settings = settings

    def create(
        self,
        role_name: str,
        *,
        handler: str,
        memory_mb: int,
        timeout_seconds: int,
        environment: dict[str, pulumi.Input[str]],
        policy: Callable[[pulumi.Output[str]], pulumi.Output[str]],
    ) -> aws.lambda_.Function:
        """A function named `{project}-{stack}-{name}-{role_name}`, whose role gets
        `policy(its log group's ARN)` and nothing else."""
        name = self.name
        function_name = physical_name(name, role_name)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-{role_name}-logs",
            # Lambda's default group name, so the console and `sam logs` find it.
            name=f"/aws/lambda/{function_name}",
            retention_in_days=self._settings.log_retention_days,
            opts=self.child,
        )
        self.log_groups[role_name] = log_group
        role = aws.iam.Role(
            f"{name}-{role_name}-role",
            assume_role_policy=_LAMBDA_ASSUME_ROLE_POLICY,
            description=f"Runs the {role_name} function of {function_name}",
            opts=self.child,
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-{role_name}-policy",
            role=role.id,
            policy=policy(log_group.arn),
            opts=self.child,
        )
        return aws.lambda_.Function(
            f"{name}-{role_name}",
            name=function_name,
            role=role.arn,
            code=self._code,
            handler=handler,
            runtime=self._settings.lambda_runtime,
            architectures=[self._settings.lambda_architecture],
            memory_size=memory_mb,
            timeout=timeout_seconds,
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=environment),
            # Text: the handlers write their own JSON lines, which Lambda's JSON format would
            # wrap a second time.
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="Text", log_group=log_group.name
            ),
            # Without its policy, the first invocations could fail to write their logs (and an
            # event source mapping could not read its stream).
            opts=pulumi.ResourceOptions(parent=self._parent, depends_on=[role_policy, log_group]),
        )
