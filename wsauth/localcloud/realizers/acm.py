"""ACM certificates and their validation: recorded (the local cloud serves no TLS).

A certificate answers with the DNS validation records ACM would ask for (`_<hash>.<domain>.`
CNAME `_<hash>.acm-validations.aws.`), so a program that creates them in Route 53 runs as it
would on AWS; the validation completes at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wsauth.localcloud.realizers.base import (
    ACCOUNT_ID,
    Creator,
    Realized,
    ServiceRealizer,
    stable_id,
    stable_uuid,
)

__all__ = ["AcmRealizer"]

_CERTIFICATE = "aws:acm/certificate:Certificate"
_VALIDATION = "aws:acm/certificateValidation:CertificateValidation"
_HEX = "0123456789abcdef"


class AcmRealizer(ServiceRealizer):
    """`aws.acm.Certificate` and `CertificateValidation`, recorded."""

    service = "acm"

    def creators(self) -> Mapping[str, Creator]:
        return {_CERTIFICATE: self._certificate, _VALIDATION: self._validation}

    def _certificate(self, name: str, inputs: dict[str, Any]) -> Realized:
        domain = str(inputs.get("domainName") or "")
        names = list(dict.fromkeys([domain, *(inputs.get("subjectAlternativeNames") or [])]))
        certificate_id = stable_uuid(_CERTIFICATE + name)
        arn = f"arn:aws:acm:{self.region}:{ACCOUNT_ID}:certificate/{certificate_id}"
        # DNS validation unless email was asked for (or the certificate is imported).
        by_dns = inputs.get("validationMethod") != "EMAIL" and not inputs.get("certificateBody")
        self.note_recorded(_CERTIFICATE, "ACM certificate", "ACM certificates")
        return arn, {
            **inputs,
            "id": arn,
            "arn": arn,
            "domainName": domain,
            "subjectAlternativeNames": names,
            "domainValidationOptions": (
                [_validation_record(each) for each in names] if by_dns else []
            ),
            "validationEmails": [],
            "status": "ISSUED",
            "type": "AMAZON_ISSUED",
            "keyAlgorithm": inputs.get("keyAlgorithm") or "RSA_2048",
            "pendingRenewal": False,
            "renewalEligibility": "INELIGIBLE",
            "renewalSummaries": [],
        }

    def _validation(self, name: str, inputs: dict[str, Any]) -> Realized:
        certificate_arn = str(inputs.get("certificateArn") or "")
        self.note_recorded(_VALIDATION, "certificate validation", "certificate validations")
        return certificate_arn or name, {**inputs, "id": certificate_arn or name}


def _validation_record(domain: str) -> dict[str, str]:
    # ACM validates a wildcard name through the record of the name it covers.
    base = domain.removeprefix("*.")
    return {
        "domainName": domain,
        "resourceRecordName": f"_{stable_id('name/' + base, 32, _HEX)}.{base}.",
        "resourceRecordType": "CNAME",
        "resourceRecordValue": f"_{stable_id('value/' + base, 32, _HEX)}.acm-validations.aws.",
    }
