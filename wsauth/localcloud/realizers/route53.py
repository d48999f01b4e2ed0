"""Route 53 records: recorded (nothing resolves names locally; the zone is not looked up)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wsauth.localcloud.realizers.base import Creator, Realized, ServiceRealizer

__all__ = ["Route53Realizer"]

_RECORD = "aws:route53/record:Record"


class Route53Realizer(ServiceRealizer):
    """`aws.route53.Record`, recorded with its `fqdn`."""

    service = "route53"

    def creators(self) -> Mapping[str, Creator]:
        return {_RECORD: self._record}

    def _record(self, name: str, inputs: dict[str, Any]) -> Realized:
        record_name = str(inputs.get("name") or "")
        # The zone's own name is not known here (the program names the zone by id): the record's
        # name stands for the FQDN, which it is whenever the program gives it whole.
        fqdn = record_name.rstrip(".").lower()
        parts = [str(inputs.get("zoneId") or ""), record_name, str(inputs.get("type") or "")]
        if inputs.get("setIdentifier"):
            parts.append(str(inputs["setIdentifier"]))
        self.note_recorded(_RECORD, "Route 53 record", "Route 53 records")
        # pulumi-aws's id: ZONE_NAME_TYPE[_SET].
        record_id = "_".join(parts)
        return record_id, {**inputs, "id": record_id, "fqdn": fqdn}
