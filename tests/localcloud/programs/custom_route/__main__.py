"""The project's own program, plus three routes added the way a user adds one.

Proves that a route added to the program shows up in `wsauth local` with no other change, and
gives the end-to-end tests functions that crash, hang and answer through `@connections`.
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

role = aws.iam.Role(
    "test-functions-role",
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

for route_key, handler, timeout in (
    ("crash", "testfns.crash", 3),
    ("hang", "testfns.hang", 1),
    ("whoami", "testfns.whoami", 5),
):
    function = aws.lambda_.Function(
        f"test-{route_key}",
        role=role.arn,
        code=code,
        handler=handler,
        runtime=config.require("lambdaRuntime"),
        timeout=timeout,
    )
    api.add_route(route_key, function)

# A route wired by hand without an `aws.lambda_.Permission`: AWS refuses to invoke its function
# (a 500 for the client), and so must the local cloud.
unpermitted = aws.lambda_.Function(
    "test-unpermitted",
    role=role.arn,
    code=code,
    handler="testfns.whoami",
    runtime=config.require("lambdaRuntime"),
    timeout=5,
)
integration = aws.apigatewayv2.Integration(
    "test-unpermitted-integration",
    api_id=api.api_id,
    integration_type="AWS_PROXY",
    integration_method="POST",
    integration_uri=unpermitted.invoke_arn,
)
aws.apigatewayv2.Route(
    "test-unpermitted-route",
    api_id=api.api_id,
    route_key="unpermitted",
    target=pulumi.Output.concat("integrations/", integration.id),
)
