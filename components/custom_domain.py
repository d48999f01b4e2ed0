"""ApiDomain: the API's stage at the root of a domain of your own (`wss://{domain_name}`).

Either with an ACM certificate you already have in the stack's region (`certificate_arn`), or
with a Route 53 hosted zone (`hosted_zone_id`), where the component requests a DNS-validated
certificate and points the domain at API Gateway. Both together: your certificate, and the
alias record in your zone.

`@connections` calls stay on the execute-api endpoint: signed for the custom domain they fail
(403), so senders keep using the stack's `managementEndpoint`.
"""

from __future__ import annotations

import re
from typing import Required, TypedDict

import pulumi
import pulumi_aws as aws

from ._validation import require_pattern

__all__ = ["ApiDomain", "ApiDomainArgs", "ApiDomainSettings"]

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN = rf"(?=.{{4,253}}$){_LABEL}(\.{_LABEL})+"
_CERTIFICATE_ARN = re.compile(
    r"arn:aws[a-z-]*:acm:(?P<region>[a-z0-9-]+):\d{12}:certificate/[A-Za-z0-9-]{1,64}"
)
_HOSTED_ZONE_ID = r"Z[A-Z0-9]{1,31}"


class ApiDomainSettings(TypedDict, total=False):
    """The plain-valued part of `ApiDomainArgs`, validated before anything is created."""

    domain_name: Required[str]
    """The domain clients connect to, e.g. `chat.example.com` (lower case, no wildcard)."""
    certificate_arn: str
    """An ACM certificate for the domain, in the stack's region (API Gateway's regional
    endpoints take only those)."""
    hosted_zone_id: str
    """A Route 53 public hosted zone holding the domain: the component creates the alias
    record, and a DNS-validated certificate unless `certificate_arn` is given."""


class ApiDomainArgs(ApiDomainSettings, total=False):
    """Arguments of `ApiDomain`: the settings, plus the API and stage to map."""

    api_id: Required[pulumi.Input[str]]
    """The WebSocket API (`SecuredWebSocketApi.api_id`)."""
    stage_name: Required[pulumi.Input[str]]
    """Its stage (`SecuredWebSocketApi.stage_name`, which waits for the stage)."""


class ApiDomain(pulumi.ComponentResource):
    """A regional API Gateway custom domain with the API's stage mapped at its root."""

    websocket_url: pulumi.Output[str]
    """`wss://{domain_name}`: where clients connect."""
    target_domain_name: pulumi.Output[str]
    """API Gateway's name for the domain (`d-….execute-api.{region}.amazonaws.com`): point a
    CNAME or alias at it when the zone is not in Route 53."""
    certificate_arn: pulumi.Output[str]
    """The certificate the domain serves."""

    @staticmethod
    def validate(settings: ApiDomainSettings, region: str | None = None) -> None:
        """Refuse a domain, certificate or zone API Gateway would, or a combination that
        cannot work, before anything is declared.

        Args:
            settings: The domain's settings.
            region: The stack's region, when known: the certificate must be there.

        Raises:
            ValueError: What is wrong, and how to fix it.
        """
        certificate, zone = settings.get("certificate_arn"), settings.get("hosted_zone_id")
        domain = settings.get("domain_name")
        if not domain:
            if certificate or zone:
                given = "certificate_arn" if certificate else "hosted_zone_id"
                raise ValueError(f"{given} needs domain_name: the domain it is for")
            raise ValueError("domain_name is required")
        require_pattern(
            "domain_name",
            domain,
            _DOMAIN,
            "a lower-case host name with at least two labels, no wildcard and no final dot, "
            "such as chat.example.com",
        )
        if not certificate and not zone:
            raise ValueError(
                f"domain_name {domain!r} needs certificate_arn (an ACM certificate for it in "
                "the stack's region) or hosted_zone_id (its Route 53 zone: a certificate is "
                "requested and validated there)"
            )
        if certificate:
            match = _CERTIFICATE_ARN.fullmatch(str(certificate))
            if match is None:
                raise ValueError(
                    "certificate_arn must be an ACM certificate ARN "
                    f"(arn:aws:acm:{{region}}:{{account}}:certificate/{{id}}); got {certificate!r}"
                )
            if region and match["region"] != region:
                raise ValueError(
                    f"certificate_arn is in {match['region']}, but the stack is in {region}: "
                    "a regional API Gateway domain needs a certificate in its own region "
                    f"(request or import one in {region})"
                )
        if zone:
            if str(zone).startswith("/hostedzone/"):
                raise ValueError(
                    f"hosted_zone_id must be the bare id, without '/hostedzone/'; got {zone!r}"
                )
            require_pattern(
                "hosted_zone_id", zone, _HOSTED_ZONE_ID, "a Route 53 zone id such as Z0123456789AB"
            )

    def __init__(
        self, name: str, args: ApiDomainArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        self.validate(args)
        for key in ("api_id", "stage_name"):
            if args.get(key) is None:
                raise ValueError(f"{key} is required")
        super().__init__("wsauth:index:ApiDomain", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        domain = args["domain_name"]
        zone = args.get("hosted_zone_id")

        certificate_arn: pulumi.Input[str]
        if args.get("certificate_arn"):
            certificate_arn = args["certificate_arn"]
        else:
            assert zone is not None  # validate: a zone when no certificate
            certificate_arn = self._validated_certificate(name, domain, zone, child)

        api_domain = aws.apigatewayv2.DomainName(
            f"{name}-domain",
            domain_name=domain,
            domain_name_configuration=aws.apigatewayv2.DomainNameDomainNameConfigurationArgs(
                certificate_arn=certificate_arn,
                # WebSocket APIs have regional endpoints only.
                endpoint_type="REGIONAL",
                security_policy="TLS_1_2",
            ),
            opts=child,
        )
        configuration = api_domain.domain_name_configuration
        # No mapping key: the stage answers at the domain's root, `wss://{domain}`.
        aws.apigatewayv2.ApiMapping(
            f"{name}-mapping",
            api_id=args["api_id"],
            domain_name=api_domain.id,
            stage=args["stage_name"],
            opts=child,
        )
        if zone is not None:
            aws.route53.Record(
                f"{name}-alias",
                zone_id=zone,
                name=domain,
                type="A",
                aliases=[
                    aws.route53.RecordAliasArgs(
                        name=configuration.target_domain_name,
                        zone_id=configuration.hosted_zone_id,
                        evaluate_target_health=False,
                    )
                ],
                opts=child,
            )

        self.websocket_url = pulumi.Output.concat("wss://", api_domain.domain_name)
        self.target_domain_name = configuration.target_domain_name
        self.certificate_arn = pulumi.Output.from_input(certificate_arn)
        self.register_outputs(
            {
                "websocket_url": self.websocket_url,
                "target_domain_name": self.target_domain_name,
                "certificate_arn": self.certificate_arn,
            }
        )

    @staticmethod
    def _validated_certificate(
        name: str, domain: str, zone: str, child: pulumi.ResourceOptions
    ) -> pulumi.Output[str]:
        """Request a certificate for `domain`, prove it in `zone`, and wait until it is issued."""
        certificate = aws.acm.Certificate(
            f"{name}-certificate",
            domain_name=domain,
            validation_method="DNS",
            opts=child,
        )
        option = certificate.domain_validation_options[0]
        record = aws.route53.Record(
            f"{name}-certificate-validation",
            zone_id=zone,
            name=option.resource_record_name,
            type=option.resource_record_type,
            records=[option.resource_record_value],
            ttl=300,
            # ACM gives every certificate of this domain the same record: one already there
            # (an earlier certificate) is taken over rather than failing the deploy.
            allow_overwrite=True,
            opts=child,
        )
        return aws.acm.CertificateValidation(
            f"{name}-certificate-issued",
            certificate_arn=certificate.arn,
            validation_record_fqdns=[record.fqdn],
            opts=child,
        ).certificate_arn
