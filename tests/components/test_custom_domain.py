"""ApiDomain through the program: both certificate paths, the mapping, the records, the
outputs, and the combinations refused before anything is declared."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.components.fakes import ACCOUNT, REGION, Deployment, declared_so_far, resolved
from tests.components.test_stack import run_program

DOMAIN = "aws:apigatewayv2/domainName:DomainName"
MAPPING = "aws:apigatewayv2/apiMapping:ApiMapping"
CERTIFICATE = "aws:acm/certificate:Certificate"
VALIDATION = "aws:acm/certificateValidation:CertificateValidation"
RECORD = "aws:route53/record:Record"
STAGE = "aws:apigatewayv2/stage:Stage"

CERTIFICATE_ARN = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
ZONE = "Z0123456789ABCDEFGHIJ"


def outputs_of(deployment: Deployment) -> dict[str, str]:
    return {name: resolved(value) for name, value in deployment.outputs.items()}


def assert_stage_mapped_at_the_root(deployment: Deployment, certificate_arn: str) -> None:
    domain = deployment.one(DOMAIN, "domain-domain")
    assert domain.inputs["domainName"] == "chat.example.com"
    # WebSocket APIs take regional endpoints and TLS 1.2 only.
    assert domain.inputs["domainNameConfiguration"] == {
        "certificateArn": certificate_arn,
        "endpointType": "REGIONAL",
        "securityPolicy": "TLS_1_2",
    }
    mapping = deployment.one(MAPPING, "domain-mapping")
    api = deployment.one("aws:apigatewayv2/api:Api", "api-api")
    stage = deployment.one(STAGE, "api-stage")
    assert mapping.inputs == {
        "apiId": api.resource_id,
        "domainName": domain.resource_id,
        "stage": "prod",
    }
    # Mapped once the stage exists ("Invalid stage identifier" otherwise).
    assert stage.urn in mapping.dependencies

    outputs = outputs_of(deployment)
    assert outputs["webSocketEndpoint"] == "wss://chat.example.com"
    # @connections must stay on execute-api: signed for the custom domain, calls get 403.
    assert outputs["managementEndpoint"] == (
        f"https://{api.resource_id}.execute-api.{REGION}.amazonaws.com/prod"
    )
    target = domain.state["domainNameConfiguration"]["targetDomainName"]
    assert outputs["customDomainTarget"] == target


def test_existing_certificate(deploy: Callable[..., Deployment]) -> None:
    """With a certificate ARN: the domain and the mapping, no certificate and no records."""
    deployment = deploy(
        run_program,
        config={
            "aws:region": REGION,
            "wsauth:domainName": "chat.example.com",
            "wsauth:certificateArn": CERTIFICATE_ARN,
        },
    )

    assert_stage_mapped_at_the_root(deployment, CERTIFICATE_ARN)
    assert not deployment.of_type(CERTIFICATE) and not deployment.of_type(RECORD)


def test_hosted_zone_gets_a_validated_certificate_and_an_alias(
    deploy: Callable[..., Deployment],
) -> None:
    """With a zone: a DNS-validated certificate (its record in the zone, waited for), the
    domain on the issued certificate, and an alias record to API Gateway's name."""
    deployment = deploy(
        run_program, config={"wsauth:domainName": "chat.example.com", "wsauth:hostedZoneId": ZONE}
    )

    certificate = deployment.one(CERTIFICATE, "domain-certificate")
    assert certificate.inputs == {"domainName": "chat.example.com", "validationMethod": "DNS"}
    (option,) = certificate.state["domainValidationOptions"]
    proof = deployment.one(RECORD, "domain-certificate-validation").inputs
    assert proof == {
        "zoneId": ZONE,
        "name": option["resourceRecordName"],
        "type": "CNAME",
        "records": [option["resourceRecordValue"]],
        "ttl": 300,
        "allowOverwrite": True,
    }
    validation = deployment.one(VALIDATION, "domain-certificate-issued").inputs
    assert validation == {
        "certificateArn": certificate.state["arn"],
        "validationRecordFqdns": [option["resourceRecordName"].rstrip(".")],
    }
    assert_stage_mapped_at_the_root(deployment, certificate.state["arn"])
    domain = deployment.one(DOMAIN, "domain-domain")
    assert deployment.one(VALIDATION, "domain-certificate-issued").urn in domain.dependencies
    alias = deployment.one(RECORD, "domain-alias").inputs
    configuration = domain.state["domainNameConfiguration"]
    assert alias == {
        "zoneId": ZONE,
        "name": "chat.example.com",
        "type": "A",
        "aliases": [
            {
                "name": configuration["targetDomainName"],
                "zoneId": configuration["hostedZoneId"],
                "evaluateTargetHealth": False,
            }
        ],
    }


def test_certificate_and_zone_together(deploy: Callable[..., Deployment]) -> None:
    """Your certificate, and the alias record in your zone; no certificate requested."""
    deployment = deploy(
        run_program,
        config={
            "wsauth:domainName": "chat.example.com",
            "wsauth:certificateArn": CERTIFICATE_ARN,
            "wsauth:hostedZoneId": ZONE,
        },
    )

    assert_stage_mapped_at_the_root(deployment, CERTIFICATE_ARN)
    assert not deployment.of_type(CERTIFICATE)
    assert [r.name for r in deployment.of_type(RECORD)] == ["domain-alias"]


def test_no_domain_keeps_the_execute_api_endpoint(deploy: Callable[..., Deployment]) -> None:
    deployment = deploy(run_program)

    assert not deployment.of_type(DOMAIN) and not deployment.of_type(MAPPING)
    assert "customDomainTarget" not in deployment.outputs
    assert outputs_of(deployment)["webSocketEndpoint"].endswith(".amazonaws.com/prod")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"wsauth:domainName": "chat.example.com"}, "needs certificate_arn"),
        ({"wsauth:certificateArn": CERTIFICATE_ARN}, "certificate_arn needs domain_name"),
        ({"wsauth:hostedZoneId": ZONE}, "hosted_zone_id needs domain_name"),
        ({"wsauth:domainName": "Chat.Example.com", "wsauth:hostedZoneId": ZONE}, "lower-case"),
        ({"wsauth:domainName": "*.example.com", "wsauth:hostedZoneId": ZONE}, "no wildcard"),
        ({"wsauth:domainName": "localhost", "wsauth:hostedZoneId": ZONE}, "two labels"),
        ({"wsauth:domainName": "chat.example.com.", "wsauth:hostedZoneId": ZONE}, "final dot"),
        ({"wsauth:domainName": "-chat.example.com", "wsauth:hostedZoneId": ZONE}, "host name"),
        (
            {"wsauth:domainName": "chat.example.com", "wsauth:certificateArn": "my-cert"},
            "certificate_arn must be an ACM certificate ARN",
        ),
        (
            {
                "aws:region": "us-east-1",
                "wsauth:domainName": "chat.example.com",
                "wsauth:certificateArn": CERTIFICATE_ARN,
            },
            f"certificate_arn is in {REGION}, but the stack is in us-east-1",
        ),
        (
            # No aws:region in config: the provider's region (AWS_REGION, the profile) decides.
            {
                "wsauth:domainName": "chat.example.com",
                "wsauth:certificateArn": CERTIFICATE_ARN.replace(REGION, "us-east-1"),
            },
            f"certificate_arn is in us-east-1, but the stack is in {REGION}",
        ),
        (
            {"wsauth:domainName": "chat.example.com", "wsauth:hostedZoneId": f"/hostedzone/{ZONE}"},
            "without '/hostedzone/'",
        ),
        (
            {"wsauth:domainName": "chat.example.com", "wsauth:hostedZoneId": "example.com"},
            "hosted_zone_id must be a Route 53 zone id",
        ),
    ],
)
def test_bad_domain_config_is_refused_before_any_resource(
    deploy: Callable[..., Deployment], config: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        deploy(run_program, config=config)

    assert declared_so_far() == []
