"""Resources with nothing to run locally are recorded: AWS-shaped outputs, named in the summary.

No moto here: recorded types never reach it, so a stand-in with the stack's region is enough.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from wsauth.localcloud.realize import Realizer, describe_recorded
from wsauth.localcloud.realizers import ApiGatewayRealizer, Registry
from wsauth.localcloud.realizers.base import ACCOUNT_ID, RealizeContext, RealizeError
from wsauth.localcloud.runner import _local_urls, localize
from wsauth.localcloud.spec import CustomDomainSpec

REGION = "eu-west-1"


def _registry(tmp_path: Path) -> Registry:
    return Registry(RealizeContext(SimpleNamespace(region=REGION), tmp_path, tmp_path))


def _create(registry: Registry, typ: str, name: str, inputs: dict[str, Any]) -> Any:
    create = registry.creator(typ)
    assert create is not None, f"{typ} is not realized"
    return create(name, inputs)


CASES: list[tuple[str, dict[str, Any], dict[str, str]]] = [
    (
        "aws:sns/topic:Topic",
        {"name": "alarms"},
        {"arn": rf"arn:aws:sns:{REGION}:{ACCOUNT_ID}:alarms", "id": r"arn:aws:sns:.*:alarms"},
    ),
    (
        "aws:sns/topicSubscription:TopicSubscription",
        {"topic": f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:alarms", "protocol": "email"},
        {"arn": rf"arn:aws:sns:{REGION}:{ACCOUNT_ID}:alarms:[0-9a-f-]{{36}}"},
    ),
    (
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        {"name": "ws-failed-pushes", "metricName": "FailedPushes", "namespace": "WsAuth"},
        {"arn": rf"arn:aws:cloudwatch:{REGION}:{ACCOUNT_ID}:alarm:ws-failed-pushes"},
    ),
    (
        "aws:cloudwatch/dashboard:Dashboard",
        {"dashboardName": "wsauth", "dashboardBody": '{"widgets": []}'},
        {"dashboardArn": rf"arn:aws:cloudwatch::{ACCOUNT_ID}:dashboard/wsauth"},
    ),
    (
        "aws:cloudwatch/logMetricFilter:LogMetricFilter",
        {"name": "allow", "logGroupName": "/aws/lambda/authorizer", "pattern": "{ $.x = 1 }"},
        {"id": "allow", "name": "allow"},
    ),
    (
        "aws:acm/certificate:Certificate",
        {"domainName": "chat.example.com", "validationMethod": "DNS"},
        {"arn": rf"arn:aws:acm:{REGION}:{ACCOUNT_ID}:certificate/[0-9a-f-]{{36}}"},
    ),
    (
        "aws:acm/certificateValidation:CertificateValidation",
        {"certificateArn": f"arn:aws:acm:{REGION}:{ACCOUNT_ID}:certificate/x"},
        {"certificateArn": rf"arn:aws:acm:{REGION}:{ACCOUNT_ID}:certificate/x"},
    ),
    (
        "aws:route53/record:Record",
        {"zoneId": "Z123", "name": "Chat.Example.com.", "type": "A"},
        {"fqdn": r"chat\.example\.com", "id": r"Z123_Chat\.Example\.com\._A"},
    ),
    (
        "aws:apigatewayv2/domainName:DomainName",
        {
            "domainName": "chat.example.com",
            "domainNameConfiguration": {
                "certificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/x",
                "endpointType": "REGIONAL",
                "securityPolicy": "TLS_1_2",
            },
        },
        {"arn": rf"arn:aws:apigateway:{REGION}::/domainnames/chat\.example\.com"},
    ),
    (
        "aws:apigatewayv2/apiMapping:ApiMapping",
        {"apiId": "abc123", "domainName": "chat.example.com", "stage": "prod"},
        {"id": r"[a-z0-9]{6}"},
    ),
]


@pytest.mark.parametrize(("typ", "inputs", "expected"), CASES, ids=[case[0] for case in CASES])
def test_each_recorded_type_answers_with_aws_shaped_outputs(
    tmp_path: Path, typ: str, inputs: dict[str, Any], expected: dict[str, str]
) -> None:
    """Every new type is realized (never unsupported), in the stack's region, inputs kept."""
    resource_id, outputs = _create(_registry(tmp_path), typ, "res", dict(inputs))
    assert resource_id == outputs["id"]
    for key, pattern in expected.items():
        assert re.fullmatch(pattern, str(outputs[key])), (key, outputs[key])
    for key, value in inputs.items():  # inputs kept (nested ones may gain computed keys)
        kept = outputs[key]
        assert kept == value or value.items() <= kept.items(), (key, kept)


def test_ids_are_the_same_on_every_start(tmp_path: Path) -> None:
    """Fake ids derive from the resources' names: a restart gives the same ARNs and targets."""
    domain = {"domainName": "chat.example.com", "domainNameConfiguration": {}}
    answers = [
        (
            _create(_registry(tmp_path), "aws:acm/certificate:Certificate", "cert", domain),
            _create(_registry(tmp_path), "aws:apigatewayv2/domainName:DomainName", "d", domain),
        )
        for _ in range(2)
    ]
    assert answers[0] == answers[1]


def test_certificate_offers_a_dns_validation_record_per_name(tmp_path: Path) -> None:
    """One CNAME per name (wildcards validated through their base name), as ACM asks."""
    _, outputs = _create(
        _registry(tmp_path),
        "aws:acm/certificate:Certificate",
        "cert",
        {
            "domainName": "chat.example.com",
            "subjectAlternativeNames": ["*.chat.example.com"],
            "validationMethod": "DNS",
        },
    )
    options = outputs["domainValidationOptions"]
    assert [option["domainName"] for option in options] == [
        "chat.example.com",
        "*.chat.example.com",
    ]
    for option in options:
        assert re.fullmatch(r"_[0-9a-f]{32}\.chat\.example\.com\.", option["resourceRecordName"])
        assert option["resourceRecordType"] == "CNAME"
        assert re.fullmatch(r"_[0-9a-f]{32}\.acm-validations\.aws\.", option["resourceRecordValue"])


def test_domain_name_answers_with_its_regional_target(tmp_path: Path) -> None:
    """The configuration comes back with the `d-….execute-api.{region}` target and a zone id."""
    _, outputs = _create(
        _registry(tmp_path),
        "aws:apigatewayv2/domainName:DomainName",
        "domain",
        {"domainName": "chat.example.com", "domainNameConfiguration": {"certificateArn": "a"}},
    )
    configuration = outputs["domainNameConfiguration"]
    assert re.fullmatch(
        rf"d-[a-z0-9]{{10}}\.execute-api\.{REGION}\.amazonaws\.com",
        configuration["targetDomainName"],
    )
    assert re.fullmatch(r"Z[A-Z0-9]{13}", configuration["hostedZoneId"])
    assert configuration["certificateArn"] == "a"
    assert configuration["endpointType"] == "REGIONAL"


def test_dashboard_body_must_be_a_json_object(tmp_path: Path) -> None:
    """PutDashboard refuses any other body; so does the local cloud, naming the dashboard."""
    with pytest.raises(RealizeError, match="dashboard ops: dashboard_body must be a JSON object"):
        _create(
            _registry(tmp_path),
            "aws:cloudwatch/dashboard:Dashboard",
            "ops",
            {"dashboardName": "ops", "dashboardBody": "[1]"},
        )


def test_summary_names_what_is_recorded_by_kind_and_count(tmp_path: Path) -> None:
    """Kinds in a fixed order whatever the arrival order, with counts and the domain's name."""
    registry = _registry(tmp_path)
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:alarms"
    declared = [
        ("aws:sns/topicSubscription:TopicSubscription", {"topic": topic, "protocol": "email"}),
        ("aws:route53/record:Record", {"zoneId": "Z1", "name": "chat.example.com", "type": "A"}),
        ("aws:apigatewayv2/domainName:DomainName", {"domainName": "chat.example.com"}),
        ("aws:iam/role:Role", {"name": "fn-role"}),
        ("aws:cloudwatch/logMetricFilter:LogMetricFilter", {"name": "allow"}),
        ("aws:cloudwatch/logMetricFilter:LogMetricFilter", {"name": "deny"}),
        ("aws:sns/topic:Topic", {"name": "alarms"}),
        ("aws:cloudwatch/dashboard:Dashboard", {"dashboardName": "d", "dashboardBody": "{}"}),
        *[("aws:cloudwatch/metricAlarm:MetricAlarm", {"name": f"a{n}"}) for n in range(3)],
        ("aws:apigateway/account:Account", {}),
    ]
    for index, (typ, inputs) in enumerate(declared):
        _create(registry, typ, f"r{index}", inputs)
    assert describe_recorded(registry.recorded()) == (
        "3 CloudWatch alarms, 1 dashboard, 2 log metric filters, 1 SNS topic, "
        "1 email subscription, 1 custom domain (chat.example.com), 1 API Gateway account, "
        "1 Route 53 record, 1 IAM role"
    )


def test_custom_domain_outputs_point_at_the_local_stage() -> None:
    """An output holding the custom domain's URL gets the gateway's URL, stage path and all."""
    gateway = SimpleNamespace(
        api=SimpleNamespace(api_id="abc123", stage="prod"), domain_name="127.0.0.1:8080"
    )
    urls = _local_urls(
        [gateway],
        REGION,
        [
            CustomDomainSpec("chat.example.com", "abc123", "prod"),
            CustomDomainSpec("api.example.com", "abc123", "prod", mapping_key="chat"),
            CustomDomainSpec("other.example.com", "zzz", "prod"),  # not this program's API
        ],
    )
    outputs = {
        "webSocketEndpoint": "wss://chat.example.com",
        "keyed": "wss://api.example.com/chat",
        "other": "wss://other.example.com",
        "managementEndpoint": f"https://abc123.execute-api.{REGION}.amazonaws.com/prod",
        "customDomainTarget": f"d-x.execute-api.{REGION}.amazonaws.com",
    }
    assert localize(outputs, urls) == {
        "webSocketEndpoint": "ws://127.0.0.1:8080/prod",
        "keyed": "ws://127.0.0.1:8080/prod",
        "other": "wss://other.example.com",
        "managementEndpoint": "http://127.0.0.1:8080/prod",
        "customDomainTarget": f"d-x.execute-api.{REGION}.amazonaws.com",
    }


# --- the program's view, through Pulumi's mock runtime ------------------------------------------


@pytest.fixture
def realizer(tmp_path: Path) -> Iterator[Realizer]:
    # Pulumi's mock runtime wants a current event loop; an earlier `asyncio.run` leaves none.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    mocks = Realizer(SimpleNamespace(region=REGION), tmp_path, tmp_path)
    pulumi_settings.set_root_resource(None)  # type: ignore[arg-type]
    pulumi.runtime.set_all_config({"aws:region": REGION})
    pulumi.runtime.set_mocks(mocks, project="wsauth", stack="local", preview=False)
    try:
        yield mocks
    finally:
        pulumi.runtime.set_all_config({})
        pulumi_settings.set_root_resource(None)  # type: ignore[arg-type]
        asyncio.set_event_loop(None)
        loop.close()


def _program() -> None:
    """What the operations components declare, reading the outputs they read."""
    api = aws.apigatewayv2.Api(
        "api", protocol_type="WEBSOCKET", route_selection_expression="$request.body.action"
    )
    certificate = aws.acm.Certificate(
        "cert", domain_name="chat.example.com", validation_method="DNS"
    )
    option = certificate.domain_validation_options[0]
    record = aws.route53.Record(
        "validation",
        zone_id="Z123",
        name=option.resource_record_name,
        type=option.resource_record_type,
        records=[option.resource_record_value],
        ttl=60,
    )
    validated = aws.acm.CertificateValidation(
        "validated", certificate_arn=certificate.arn, validation_record_fqdns=[record.fqdn]
    )
    domain = aws.apigatewayv2.DomainName(
        "domain",
        domain_name="chat.example.com",
        domain_name_configuration=aws.apigatewayv2.DomainNameDomainNameConfigurationArgs(
            certificate_arn=validated.certificate_arn,
            endpoint_type="REGIONAL",
            security_policy="TLS_1_2",
        ),
    )
    configuration = domain.domain_name_configuration
    aws.route53.Record(
        "alias",
        zone_id="Z123",
        name="chat.example.com",
        type="A",
        aliases=[
            aws.route53.RecordAliasArgs(
                name=configuration.target_domain_name,
                zone_id=configuration.hosted_zone_id,
                evaluate_target_health=False,
            )
        ],
    )
    aws.apigatewayv2.ApiMapping("mapping", api_id=api.id, domain_name=domain.id, stage="prod")
    topic = aws.sns.Topic("alarms")
    aws.sns.TopicSubscription(
        "email", topic=topic.arn, protocol="email", endpoint="ops@example.com"
    )
    alarm = aws.cloudwatch.MetricAlarm(
        "failed-pushes",
        name="failed-pushes",
        namespace="WsAuth",
        metric_name="FailedPushes",
        comparison_operator="GreaterThanThreshold",
        evaluation_periods=1,
        period=60,
        statistic="Sum",
        threshold=0,
        alarm_actions=[topic.arn],
    )
    dashboard = aws.cloudwatch.Dashboard(
        "dashboard", dashboard_name="wsauth", dashboard_body=json.dumps({"widgets": []})
    )
    aws.cloudwatch.LogMetricFilter(
        "allow",
        name="allow",
        log_group_name="/aws/lambda/authorizer",
        pattern='{ $.outcome = "allow" }',
        metric_transformation=aws.cloudwatch.LogMetricFilterMetricTransformationArgs(
            name="Allow", namespace="WsAuth/Authorizer/authorizer", value="1"
        ),
    )
    pulumi.export("target", configuration.target_domain_name)
    pulumi.export("zone", configuration.hosted_zone_id)
    pulumi.export("validationRecord", record.fqdn)
    pulumi.export("certificate", validated.certificate_arn)
    pulumi.export("alarm", alarm.arn)
    pulumi.export("dashboard", dashboard.dashboard_arn)
    pulumi.export("domainArn", domain.arn)


def test_program_reads_the_nested_outputs_it_needs(realizer: Realizer) -> None:
    """`domain_name_configuration.target_domain_name`, `domain_validation_options[0]…` resolve
    under the realizer as under `pulumi up`; nothing is unsupported."""
    _sync_await(run_pulumi_func(_program))
    realizer.check()
    root = pulumi_settings.get_root_resource()
    outputs = {
        key: _sync_await(pulumi.Output.from_input(value).future())
        for key, value in root.outputs.items()  # type: ignore[union-attr]
    }
    assert re.fullmatch(
        rf"d-[a-z0-9]{{10}}\.execute-api\.{REGION}\.amazonaws\.com", outputs["target"]
    )
    assert re.fullmatch(r"Z[A-Z0-9]{13}", outputs["zone"])
    assert re.fullmatch(r"_[0-9a-f]{32}\.chat\.example\.com", outputs["validationRecord"])
    assert outputs["certificate"].startswith(f"arn:aws:acm:{REGION}:{ACCOUNT_ID}:certificate/")
    assert outputs["alarm"] == f"arn:aws:cloudwatch:{REGION}:{ACCOUNT_ID}:alarm:failed-pushes"
    assert outputs["dashboard"] == f"arn:aws:cloudwatch::{ACCOUNT_ID}:dashboard/wsauth"
    assert outputs["domainArn"] == f"arn:aws:apigateway:{REGION}::/domainnames/chat.example.com"
    assert describe_recorded(realizer.registry.recorded()) == (
        "1 CloudWatch alarm, 1 dashboard, 1 log metric filter, 1 SNS topic, "
        "1 email subscription, 1 custom domain (chat.example.com), 1 API mapping, "
        "1 ACM certificate, 1 certificate validation, 2 Route 53 records"
    )
    [mapping] = realizer.registry.service(ApiGatewayRealizer).custom_domains()
    assert (mapping.domain_name, mapping.stage, mapping.websocket_url) == (
        "chat.example.com",
        "prod",
        "wss://chat.example.com",
    )
