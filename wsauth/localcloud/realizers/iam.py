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


class IamRealizer(ServiceRealizer):
    """`aws.iam.Role`, `RolePolicy`, `Policy` and `RolePolicyAttachment`, recorded."""

    service = "iam"

    def creators(self) -> Mapping[str, Creator]:
        return {
            "aws:iam/role:Role": self._role,
            "aws:iam/rolePolicy:RolePolicy": self._role_policy,
            "aws:iam/policy:Policy": self._policy,
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment": self._attachment,
        }

    def _role(self, name: str, inputs: dict[str, Any]) -> Realized:
        outputs = record(name, inputs)
        outputs["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:role/{outputs['name']}"
        outputs["uniqueId"] = f"AROA{random_id(16).upper()}"
        return outputs["id"], outputs

    def _role_policy(self, name: str, inputs: dict[str, Any]) -> Realized:
        outputs = record(name, inputs)
        # pulumi-aws's id for an inline policy: `role:policy`.
        outputs["id"] = f"{inputs.get('role')}:{outputs['name']}"
        return outputs["id"], outputs

    def _policy(self, name: str, inputs: dict[str, Any]) -> Realized:
        outputs = record(name, inputs)
        outputs["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:policy/{outputs['name']}"
        return outputs["id"], outputs

    def _attachment(self, name: str, inputs: dict[str, Any]) -> Realized:
        outputs = record(name, inputs)
        return outputs["id"], outputs
