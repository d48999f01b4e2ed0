"""Cognito user pools and their app clients, created in the embedded moto server."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wsauth.localcloud.realizers.base import (
    Creator,
    Realized,
    ServiceRealizer,
    auto_name,
    drop_none,
)

__all__ = ["CognitoRealizer"]


class CognitoRealizer(ServiceRealizer):
    """`aws.cognito.UserPool` and `UserPoolClient`, with the inputs moto understands."""

    service = "cognito-idp"

    def creators(self) -> Mapping[str, Creator]:
        return {
            "aws:cognito/userPool:UserPool": self._user_pool,
            "aws:cognito/userPoolClient:UserPoolClient": self._user_pool_client,
        }

    def _user_pool(self, name: str, inputs: dict[str, Any]) -> Realized:
        pool_name = inputs.get("name") or auto_name(name)
        request: dict[str, Any] = {"PoolName": pool_name}
        for key, boto_key in (
            ("usernameAttributes", "UsernameAttributes"),
            ("aliasAttributes", "AliasAttributes"),
            ("autoVerifiedAttributes", "AutoVerifiedAttributes"),
            ("mfaConfiguration", "MfaConfiguration"),
            ("deletionProtection", "DeletionProtection"),
            ("userPoolTier", "UserPoolTier"),
        ):
            if inputs.get(key) is not None:
                request[boto_key] = inputs[key]
        policy = inputs.get("passwordPolicy")
        if policy:
            request["Policies"] = {
                "PasswordPolicy": drop_none(
                    {
                        "MinimumLength": policy.get("minimumLength"),
                        "RequireUppercase": policy.get("requireUppercase"),
                        "RequireLowercase": policy.get("requireLowercase"),
                        "RequireNumbers": policy.get("requireNumbers"),
                        "RequireSymbols": policy.get("requireSymbols"),
                        "TemporaryPasswordValidityDays": policy.get(
                            "temporaryPasswordValidityDays"
                        ),
                    }
                )
            }
        admin = inputs.get("adminCreateUserConfig")
        if admin and admin.get("allowAdminCreateUserOnly") is not None:
            request["AdminCreateUserConfig"] = {
                "AllowAdminCreateUserOnly": admin["allowAdminCreateUserOnly"]
            }
        recovery = inputs.get("accountRecoverySetting")
        if recovery and recovery.get("recoveryMechanisms"):
            request["AccountRecoverySetting"] = {
                "RecoveryMechanisms": [
                    {"Name": item["name"], "Priority": item["priority"]}
                    for item in recovery["recoveryMechanisms"]
                ]
            }
        username = inputs.get("usernameConfiguration")
        if username and username.get("caseSensitive") is not None:
            request["UsernameConfiguration"] = {"CaseSensitive": username["caseSensitive"]}
        schemas = [_schema_attribute(schema) for schema in inputs.get("schemas") or []]
        if schemas:
            request["Schema"] = schemas
        pool = self.context.client("cognito-idp").create_user_pool(**request)["UserPool"]
        pool_id = pool["Id"]
        return pool_id, {
            **inputs,
            "id": pool_id,
            "name": pool_name,
            "arn": pool["Arn"],
            "endpoint": f"cognito-idp.{self.region}.amazonaws.com/{pool_id}",
            "creationDate": str(pool.get("CreationDate", "")),
            "estimatedNumberOfUsers": 0,
        }

    def _user_pool_client(self, name: str, inputs: dict[str, Any]) -> Realized:
        client_name = inputs.get("name") or name
        request: dict[str, Any] = {"UserPoolId": inputs["userPoolId"], "ClientName": client_name}
        for key, boto_key in (
            ("generateSecret", "GenerateSecret"),
            ("explicitAuthFlows", "ExplicitAuthFlows"),
            ("accessTokenValidity", "AccessTokenValidity"),
            ("idTokenValidity", "IdTokenValidity"),
            ("refreshTokenValidity", "RefreshTokenValidity"),
            ("preventUserExistenceErrors", "PreventUserExistenceErrors"),
            ("enableTokenRevocation", "EnableTokenRevocation"),
            ("supportedIdentityProviders", "SupportedIdentityProviders"),
            ("readAttributes", "ReadAttributes"),
            ("writeAttributes", "WriteAttributes"),
            ("authSessionValidity", "AuthSessionValidity"),
        ):
            if inputs.get(key) is not None:
                request[boto_key] = inputs[key]
        units = inputs.get("tokenValidityUnits")
        if units:
            request["TokenValidityUnits"] = drop_none(
                {
                    "AccessToken": units.get("accessToken"),
                    "IdToken": units.get("idToken"),
                    "RefreshToken": units.get("refreshToken"),
                }
            )
        client = self.context.client("cognito-idp").create_user_pool_client(**request)[
            "UserPoolClient"
        ]
        outputs = {**inputs, "id": client["ClientId"], "name": client_name}
        if client.get("ClientSecret"):
            outputs["clientSecret"] = client["ClientSecret"]
        return client["ClientId"], outputs


def _schema_attribute(schema: Mapping[str, Any]) -> dict[str, Any]:
    attribute: dict[str, Any] = drop_none(
        {
            "Name": schema.get("name"),
            "AttributeDataType": schema.get("attributeDataType"),
            "DeveloperOnlyAttribute": schema.get("developerOnlyAttribute"),
            "Mutable": schema.get("mutable"),
            "Required": schema.get("required"),
        }
    )
    strings = schema.get("stringAttributeConstraints")
    if strings:
        attribute["StringAttributeConstraints"] = drop_none(
            {"MinLength": strings.get("minLength"), "MaxLength": strings.get("maxLength")}
        )
    numbers = schema.get("numberAttributeConstraints")
    if numbers:
        attribute["NumberAttributeConstraints"] = drop_none(
            {"MinValue": numbers.get("minValue"), "MaxValue": numbers.get("maxValue")}
        )
    return attribute
