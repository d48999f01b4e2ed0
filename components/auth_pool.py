"""AuthPool: the Cognito user pool people sign in to, and the web app client that signs them in."""

from __future__ import annotations

from typing import TypedDict

import pulumi
import pulumi_aws as aws

from ._validation import require_int_range

__all__ = ["AuthPool", "AuthPoolArgs"]


class AuthPoolArgs(TypedDict, total=False):
    """Arguments of `AuthPool`. Plain values: they are validated before anything is created."""

    self_sign_up: bool
    """Whether people may create their own accounts (default True); False: admins create users."""
    deletion_protection: bool
    """Whether Cognito refuses to delete the pool (default False); turn on for production."""
    password_minimum_length: int
    """Minimum password length, 8 to 99 (default 12)."""
    id_token_validity_minutes: int
    """Lifetime of ID tokens in minutes, 5 to 1440 (default 60)."""
    access_token_validity_minutes: int
    """Lifetime of access tokens in minutes, 5 to 1440 (default 60)."""
    refresh_token_validity_days: int
    """Lifetime of refresh tokens in days, 1 to 3650 (default 30)."""


def _issuer_url(user_pool_id: str) -> str:
    # A pool id is `{region}_{suffix}`: the issuer follows from it alone, so no provider call
    # (and no region config) is needed, and it is right whatever region the provider targets.
    region = user_pool_id.split("_", 1)[0]
    return f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"


class AuthPool(pulumi.ComponentResource):
    """A Cognito user pool with email sign-in, and one public web app client.

    The pool signs people in by email (verified by a code), enforces a real password policy,
    recovers accounts by email only, and can refuse self sign-up and its own deletion. The client
    has no secret (browsers and CLIs cannot keep one), allows SRP, password and refresh-token
    flows, and never tells a caller whether an account exists.
    """

    user_pool_id: pulumi.Output[str]
    """The pool's id, `{region}_{suffix}`."""
    user_pool_arn: pulumi.Output[str]
    """The pool's ARN."""
    web_client_id: pulumi.Output[str]
    """The web app client's id: the `aud` of ID tokens, the `client_id` of access tokens."""
    issuer_url: pulumi.Output[str]
    """`https://cognito-idp.{region}.amazonaws.com/{user_pool_id}`: the `iss` of its tokens."""
    jwks_url: pulumi.Output[str]
    """Where the pool publishes its signing keys."""
    region: pulumi.Output[str]
    """The AWS region the pool lives in (taken from its id)."""

    def __init__(
        self,
        name: str,
        args: AuthPoolArgs | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        args = args or {}
        self_sign_up = bool(args.get("self_sign_up", True))
        deletion_protection = bool(args.get("deletion_protection", False))
        password_minimum_length = require_int_range(
            "password_minimum_length", args.get("password_minimum_length", 12), 8, 99
        )
        id_token_minutes = require_int_range(
            "id_token_validity_minutes", args.get("id_token_validity_minutes", 60), 5, 1440
        )
        access_token_minutes = require_int_range(
            "access_token_validity_minutes", args.get("access_token_validity_minutes", 60), 5, 1440
        )
        refresh_token_days = require_int_range(
            "refresh_token_validity_days", args.get("refresh_token_validity_days", 30), 1, 3650
        )

        super().__init__("wsauth:index:AuthPool", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        pool = aws.cognito.UserPool(
            f"{name}-pool",
            # Email is the sign-in name; Cognito then requires and stores it for every user.
            username_attributes=["email"],
            username_configuration=aws.cognito.UserPoolUsernameConfigurationArgs(
                case_sensitive=False
            ),
            auto_verified_attributes=["email"],
            verification_message_template=aws.cognito.UserPoolVerificationMessageTemplateArgs(
                default_email_option="CONFIRM_WITH_CODE"
            ),
            # A changed email only takes effect once the new address is verified, so a stolen
            # session cannot move an account to an address the owner does not control.
            user_attribute_update_settings=aws.cognito.UserPoolUserAttributeUpdateSettingsArgs(
                attributes_require_verification_before_updates=["email"]
            ),
            admin_create_user_config=aws.cognito.UserPoolAdminCreateUserConfigArgs(
                allow_admin_create_user_only=not self_sign_up
            ),
            password_policy=aws.cognito.UserPoolPasswordPolicyArgs(
                minimum_length=password_minimum_length,
                require_lowercase=True,
                require_uppercase=True,
                require_numbers=True,
                require_symbols=True,
                temporary_password_validity_days=7,
            ),
            # Email only: SMS recovery costs money per message and is open to SIM swapping.
            account_recovery_setting=aws.cognito.UserPoolAccountRecoverySettingArgs(
                recovery_mechanisms=[
                    aws.cognito.UserPoolAccountRecoverySettingRecoveryMechanismArgs(
                        name="verified_email", priority=1
                    )
                ]
            ),
            # Cognito's own sender is limited to a few dozen emails a day; production pools
            # should move to SES (email_configuration with a verified identity).
            email_configuration=aws.cognito.UserPoolEmailConfigurationArgs(
                email_sending_account="COGNITO_DEFAULT"
            ),
            # The demo clients have no MFA step; stated rather than left to a default.
            mfa_configuration="OFF",
            deletion_protection="ACTIVE" if deletion_protection else "INACTIVE",
            opts=child,
        )

        client = aws.cognito.UserPoolClient(
            f"{name}-web-client",
            user_pool_id=pool.id,
            # Public client: a secret shipped to browsers and terminals would not stay secret.
            generate_secret=False,
            explicit_auth_flows=[
                "ALLOW_USER_SRP_AUTH",
                "ALLOW_USER_PASSWORD_AUTH",
                "ALLOW_REFRESH_TOKEN_AUTH",
            ],
            id_token_validity=id_token_minutes,
            access_token_validity=access_token_minutes,
            refresh_token_validity=refresh_token_days,
            token_validity_units=aws.cognito.UserPoolClientTokenValidityUnitsArgs(
                id_token="minutes", access_token="minutes", refresh_token="days"
            ),
            enable_token_revocation=True,
            # Same answer for "no such user" and "wrong password": no account enumeration.
            prevent_user_existence_errors="ENABLED",
            opts=child,
        )

        self.user_pool_id = pool.id
        self.user_pool_arn = pool.arn
        self.web_client_id = client.id
        self.issuer_url = pool.id.apply(_issuer_url)
        self.jwks_url = self.issuer_url.apply(lambda issuer: f"{issuer}/.well-known/jwks.json")
        self.region = pool.id.apply(lambda pool_id: pool_id.split("_", 1)[0])
        self.register_outputs(
            {
                "user_pool_id": self.user_pool_id,
                "user_pool_arn": self.user_pool_arn,
                "web_client_id": self.web_client_id,
                "issuer_url": self.issuer_url,
                "jwks_url": self.jwks_url,
                "region": self.region,
            }
        )
