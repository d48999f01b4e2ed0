"""IAM roles and policies: recorded, so the program can read their outputs (ARNs, ids).

No IAM policy is evaluated locally, so there is nothing to run; the invoke permissions that
matter locally are Lambda's (`lambda_.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wsauth.localcloud.realizers.base import (
    ACCOUNT_ID,
    Creator,
    Realized,
    ServiceRealizer,
    random_id,
    record,
)

__all__ = ["IamRealizer"]

_ROLE = "aws:iam/role:Role"
_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
_POLICY = "aws:iam/policy:Policy"
_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"


class IamRealizer(ServiceRealizer):
    """`aws.iam.Role`, `RolePolicy`, `Policy` and `RolePolicyAttachment`, recorded."""

    service = "iam"

    def creators(self) -> Mapping[str, Creator]:
        return {
            _ROLE: self._role,
            _ROLE_POLICY: self._role_policy,
            _POLICY: self._policy,
            _ATTACHMENT: self._attachment,
        }

    def _role(self, name: str, inputs: dict[str, Any]) -> Realized:
        outputs = record(name, inputs)
        outputs["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:role/{outputs['name']}"
        outputs["uniqueId"] = f"AROA{random_id(16).upper()}"
        self.note_recorded(_ROLE, "IAM role", "IAM roles")
        return outputs["id"], outputs

    def _role_policy(self, name: str, inputs: dict[str, Any]) -> Realized:
        outputs = record(name, inputs)
        # pulumi-aws's id for an inline policy: `role:policy`.
        outputs["id"] = f"{inputs.get('role')}:{outputs['name']}"
        self.note_recorded(_ROLE_POLICY, "IAM role policy", "IAM role policies")
        return outputs["id"], outputs

    def _policy(self, name: str, inputs: dict[str, Any]) -> Realized:
        outputs = record(name, inputs)
        outputs["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:policy/{outputs['name']}"
        self.note_recorded(_POLICY, "IAM policy", "IAM policies")
        return outputs["id"], outputs

    def _attachment(self, name: str, inputs: dict[str, Any]) -> Realized:
        outputs = record(name, inputs)
        self.note_recorded(_ATTACHMENT, "IAM policy attachment", "IAM policy attachments")
        return outputs["id"], outputs
