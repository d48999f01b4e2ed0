"""AuthPool under Pulumi mocks: the user pool's and the web client's settings, and outputs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pulumi_wsauth import AuthPool, AuthPoolArgs
from tests.components.fakes import REGION, Deployment, declared_so_far, resolved

POOL = "aws:cognito/userPool:UserPool"
CLIENT = "aws:cognito/userPoolClient:UserPoolClient"


def build(
    args: AuthPoolArgs | None = None, seen: dict[str, Any] | None = None
) -> Callable[[], None]:
    def program() -> None:
        pool = AuthPool("users", args)
        if seen is not None:
            seen["pool"] = pool

    return program


def test_email_is_the_verified_case_insensitive_sign_in_name(
    deploy: Callable[..., Deployment],
) -> None:
    """People sign in with their email, which Cognito verifies by a code before trusting it."""
    pool = deploy(build()).one(POOL, "users-pool").inputs

    assert pool["usernameAttributes"] == ["email"]
    assert pool["usernameConfiguration"] == {"caseSensitive": False}
    assert pool["autoVerifiedAttributes"] == ["email"]
    assert pool["verificationMessageTemplate"] == {"defaultEmailOption": "CONFIRM_WITH_CODE"}
    assert pool["userAttributeUpdateSettings"] == {
        "attributesRequireVerificationBeforeUpdates": ["email"]
    }


def test_password_policy_is_real(deploy: Callable[..., Deployment]) -> None:
    """Passwords need 12 characters and every character class by default."""
    pool = deploy(build()).one(POOL, "users-pool").inputs

    assert pool["passwordPolicy"] == {
        "minimumLength": 12,
        "requireLowercase": True,
        "requireUppercase": True,
        "requireNumbers": True,
        "requireSymbols": True,
        "temporaryPasswordValidityDays": 7,
    }


def test_accounts_are_recovered_by_email_only(deploy: Callable[..., Deployment]) -> None:
    """Recovery goes to the verified email, never SMS."""
    pool = deploy(build()).one(POOL, "users-pool").inputs

    assert pool["accountRecoverySetting"] == {
        "recoveryMechanisms": [{"name": "verified_email", "priority": 1}]
    }
    assert pool["mfaConfiguration"] == "OFF"


@pytest.mark.parametrize(("self_sign_up", "admin_only"), [(True, False), (False, True)])
def test_self_sign_up_is_a_switch(
    deploy: Callable[..., Deployment], self_sign_up: bool, admin_only: bool
) -> None:
    """Turning self sign-up off leaves account creation to administrators."""
    pool = deploy(build(AuthPoolArgs(self_sign_up=self_sign_up))).one(POOL, "users-pool")

    assert pool.inputs["adminCreateUserConfig"] == {"allowAdminCreateUserOnly": admin_only}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({}, "INACTIVE"),
        ({"deletion_protection": False}, "INACTIVE"),
        ({"deletion_protection": True}, "ACTIVE"),
    ],
)
def test_deletion_protection_is_a_switch(
    deploy: Callable[..., Deployment], args: AuthPoolArgs, expected: str
) -> None:
    """Deletion protection is off unless asked for."""
    pool = deploy(build(args)).one(POOL, "users-pool")

    assert pool.inputs["deletionProtection"] == expected


def test_web_client_is_public_and_leaks_no_user_existence(
    deploy: Callable[..., Deployment],
) -> None:
    """The client has no secret, the three flows the clients use, and uniform errors."""
    deployment = deploy(build())
    client = deployment.one(CLIENT, "users-web-client").inputs

    assert client["userPoolId"] == deployment.one(POOL, "users-pool").resource_id
    assert client["generateSecret"] is False
    assert sorted(client["explicitAuthFlows"]) == [
        "ALLOW_REFRESH_TOKEN_AUTH",
        "ALLOW_USER_PASSWORD_AUTH",
        "ALLOW_USER_SRP_AUTH",
    ]
    assert client["preventUserExistenceErrors"] == "ENABLED"
    assert client["enableTokenRevocation"] is True


def test_token_validities_are_explicit_with_units(deploy: Callable[..., Deployment]) -> None:
    """Validities are set with their units, so nobody guesses whether 60 means minutes."""
    args = AuthPoolArgs(
        id_token_validity_minutes=15,
        access_token_validity_minutes=30,
        refresh_token_validity_days=7,
    )
    client = deploy(build(args)).one(CLIENT, "users-web-client").inputs

    assert (client["idTokenValidity"], client["accessTokenValidity"]) == (15, 30)
    assert client["refreshTokenValidity"] == 7
    assert client["tokenValidityUnits"] == {
        "idToken": "minutes",
        "accessToken": "minutes",
        "refreshToken": "days",
    }


def test_outputs_name_the_pool_client_issuer_and_keys(deploy: Callable[..., Deployment]) -> None:
    """Issuer and JWKS URL follow from the pool id, with the pool's region."""
    seen: dict[str, Any] = {}
    deployment = deploy(build(seen=seen))
    pool_id = deployment.one(POOL, "users-pool").resource_id
    issuer = f"https://cognito-idp.{REGION}.amazonaws.com/{pool_id}"
    pool: AuthPool = seen["pool"]

    assert resolved(pool.user_pool_id) == pool_id
    assert resolved(pool.user_pool_arn) == deployment.one(POOL, "users-pool").state["arn"]
    assert resolved(pool.web_client_id) == deployment.one(CLIENT, "users-web-client").resource_id
    assert resolved(pool.issuer_url) == issuer
    assert resolved(pool.jwks_url) == f"{issuer}/.well-known/jwks.json"
    assert resolved(pool.region) == REGION


def test_children_belong_to_the_component(deploy: Callable[..., Deployment]) -> None:
    """Pool and client are parented to the AuthPool, so they move and delete with it."""
    deployment = deploy(build())
    component = deployment.one("wsauth:index:AuthPool", "users")

    assert deployment.one(POOL, "users-pool").parent == component.urn
    assert deployment.one(CLIENT, "users-web-client").parent == component.urn


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"password_minimum_length": 6}, "password_minimum_length must be an integer from 8 to 99"),
        ({"password_minimum_length": 100}, "password_minimum_length must be an integer from 8"),
        ({"id_token_validity_minutes": 4}, "id_token_validity_minutes must be an integer from 5"),
        ({"access_token_validity_minutes": 1441}, "access_token_validity_minutes must be"),
        ({"refresh_token_validity_days": 0}, "refresh_token_validity_days must be an integer"),
        ({"refresh_token_validity_days": "30"}, "refresh_token_validity_days must be an integer"),
    ],
)
def test_bad_arguments_are_refused_before_any_resource(
    deploy: Callable[..., Deployment], args: dict[str, Any], message: str
) -> None:
    """Out-of-range validities and lengths fail with the argument's name and range."""
    with pytest.raises(ValueError) as refused:
        deploy(build(args))  # type: ignore[arg-type]

    assert message in str(refused.value)
    assert declared_so_far() == []
