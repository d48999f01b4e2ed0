"""REQUEST authorizer for the WebSocket API's ``$connect``: Allow a valid Cognito token, else Deny.

Environment (read once, at the first invocation of the process):

* ``USER_POOL_ID``: the pool; its issuer is always the AWS one.
* ``APP_CLIENT_ID``: the allowed app client ids, comma-separated.
* ``TOKEN_USE``: ``id`` (default) or ``access``.
* ``TOKEN_SOURCE``: ``query`` (default; the ``TOKEN_QUERY_KEY`` query parameter) or
  ``protocol`` (the JWT offered as a subprotocol in ``Sec-WebSocket-Protocol``).
* ``TOKEN_QUERY_KEY``: default ``idToken``.
* ``JWKS_URL``: optional; else under ``AWS_ENDPOINT_URL_COGNITO_IDP`` when that is set (the
  local cloud), else Cognito's public URL.
* ``CLOCK_LEEWAY_SECONDS``: default 0.

A bad or missing token gets a Deny (API Gateway answers 403). When no signing key can be
obtained the handler raises, so API Gateway answers 500: it never allows on doubt. Each
decision is logged as one JSON line without the token or the claims.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .cognito_jwt import (
    CognitoJwtVerifier,
    JwksCache,
    JwksUnavailable,
    TokenRejected,
    default_jwks_url,
)

__all__ = ["Authorizer", "AuthorizerConfig", "handler"]

PROTOCOL_HEADER = "Sec-WebSocket-Protocol"
_PROTOCOL_HEADER_LOWER = PROTOCOL_HEADER.lower()
_TOKEN_SOURCES = frozenset({"query", "protocol"})
_DENY_PRINCIPAL = "anonymous"
_LOG = json.JSONEncoder(separators=(",", ":"))
_json_str = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]


@dataclass(frozen=True)
class AuthorizerConfig:
    """The authorizer's settings, as the component passes them in the environment."""

    user_pool_id: str
    app_client_ids: frozenset[str]
    jwks_url: str
    token_use: str = "id"
    token_source: str = "query"
    token_query_key: str = "idToken"
    clock_leeway_seconds: float = 0.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AuthorizerConfig:
        """Read and validate the settings.

        Args:
            environ: the process environment.

        Returns:
            The configuration.

        Raises:
            ValueError: a variable is missing or invalid (the message names it).
        """
        user_pool_id = environ.get("USER_POOL_ID", "").strip()
        if not user_pool_id:
            raise ValueError("USER_POOL_ID is required")
        clients = frozenset(c.strip() for c in environ.get("APP_CLIENT_ID", "").split(","))
        clients -= {""}
        if not clients:
            raise ValueError("APP_CLIENT_ID must name at least one app client")
        token_use = environ.get("TOKEN_USE", "id").strip() or "id"
        if token_use not in ("id", "access"):
            raise ValueError("TOKEN_USE must be 'id' or 'access'")
        token_source = environ.get("TOKEN_SOURCE", "query").strip() or "query"
        if token_source not in _TOKEN_SOURCES:
            raise ValueError("TOKEN_SOURCE must be 'query' or 'protocol'")
        token_query_key = environ.get("TOKEN_QUERY_KEY", "idToken").strip() or "idToken"
        try:
            leeway = float(environ.get("CLOCK_LEEWAY_SECONDS", "0").strip() or "0")
        except ValueError:
            raise ValueError("CLOCK_LEEWAY_SECONDS must be a number of seconds") from None
        if not 0 <= leeway <= 300:
            raise ValueError("CLOCK_LEEWAY_SECONDS must be between 0 and 300")
        jwks_url = environ.get("JWKS_URL", "").strip() or default_jwks_url(
            user_pool_id, environ.get("AWS_ENDPOINT_URL_COGNITO_IDP", "").strip() or None
        )
        return cls(
            user_pool_id=user_pool_id,
            app_client_ids=clients,
            jwks_url=jwks_url,
            token_use=token_use,
            token_source=token_source,
            token_query_key=token_query_key,
            clock_leeway_seconds=leeway,
        )


class Authorizer:
    """Decides ``$connect`` requests; one instance lives for the life of the process."""

    def __init__(self, config: AuthorizerConfig, verifier: CognitoJwtVerifier | None = None):
        """Build the authorizer.

        Args:
            config: the settings.
            verifier: a ready verifier (tests inject one with a fake clock); by default one
                is built from ``config`` with its own JWKS cache.
        """
        self.config = config
        self.verifier = verifier or CognitoJwtVerifier(
            user_pool_id=config.user_pool_id,
            client_ids=config.app_client_ids,
            token_use=config.token_use,
            jwks=JwksCache(config.jwks_url),
            leeway_seconds=config.clock_leeway_seconds,
        )
        self._from_protocol = config.token_source == "protocol"
        self._token_query_key = config.token_query_key

    def decide(self, event: Any) -> dict[str, Any]:
        """Answer one REQUEST authorizer event.

        Args:
            event: the API Gateway WebSocket REQUEST authorizer event.

        Returns:
            The IAM policy answer: Allow with the user in ``context``, or Deny.

        Raises:
            JwksUnavailable: no signing key could be obtained (API Gateway answers 500).
        """
        # Written out flat, like the verifier's fast path: every connection pays for it.
        started = time.perf_counter()
        if type(event) is not dict:
            event = {}
        method_arn = event.get("methodArn")
        request_context = event.get("requestContext")
        connection_id = (
            request_context.get("connectionId") if type(request_context) is dict else None
        )
        if type(connection_id) is not str:
            connection_id = None
        if self._from_protocol:
            token, reason = _token_from_protocol(event.get("headers"))
        else:
            params = event.get("queryStringParameters")
            token = params.get(self._token_query_key) if type(params) is dict else None
            if type(token) is not str or not token:
                token, reason = None, "token_missing"
        if token is None:
            return self._deny(method_arn, reason, connection_id, started)
        try:
            user, cached = self.verifier.verify_cached(token)
        except TokenRejected as rejected:
            return self._deny(method_arn, rejected.reason, connection_id, started)
        except JwksUnavailable:
            _log(_head("error", "jwks_unavailable"), None, connection_id, False, started)
            raise
        if type(method_arn) is not str or not method_arn:
            # Allow needs a resource; "*" would grant more than this connection.
            return self._deny(method_arn, "method_arn_missing", connection_id, started)
        sub = user.sub
        _log(_ALLOW_HEAD, sub, connection_id, cached, started)
        return {
            "principalId": sub,
            "policyDocument": _policy("Allow", method_arn),
            # API Gateway accepts only strings, numbers and booleans as context values.
            "context": {
                "userId": sub,
                "username": user.username,
                "tokenUse": user.token_use,
                "groups": ",".join(user.groups),
                # The session's bounds (DESIGN §7): the websocket function closes the
                # connection once `expiresAt` has passed, unless a refresh moved it.
                "expiresAt": int(user.exp),
                "authTime": int(user.auth_time),
            },
        }

    def _deny(
        self, method_arn: object, reason: str, connection_id: str | None, started: float
    ) -> dict[str, Any]:
        _log(_head("deny", reason), None, connection_id, False, started)
        resource = method_arn if type(method_arn) is str and method_arn else "*"
        return {
            "principalId": _DENY_PRINCIPAL,
            "policyDocument": _policy("Deny", resource),
        }


def _token_from_protocol(headers: object) -> tuple[str | None, str]:
    if type(headers) is not dict:
        return None, "token_missing"
    value = headers.get(PROTOCOL_HEADER)
    if value is None:
        # HTTP header names are case-insensitive and clients spell this one several ways.
        for name, candidate in headers.items():
            if type(name) is str and name.lower() == _PROTOCOL_HEADER_LOWER:
                value = candidate
                break
    if type(value) is not str:
        return None, "token_missing"
    # Subprotocols are comma-separated tokens; base64url and "." never contain a comma.
    jwts = [p for p in (part.strip() for part in value.split(",")) if p.count(".") == 2]
    if not jwts:
        return None, "token_missing"
    if len(jwts) > 1:
        return None, "token_ambiguous"
    return jwts[0], ""


def _policy(effect: str, resource: str) -> dict[str, Any]:
    # Built fresh for every answer: the runtime owns what the handler returns.
    return {
        "Version": "2012-10-17",
        "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
    }


def _head(outcome: str, reason: str) -> str:
    return (
        f'{{"logger":"authorizer","outcome":{_json_str(outcome)},"reason":{_json_str(reason)},'
        '"sub":'
    )


# Every Allow starts its log line with these bytes; Denies are rarer and build theirs.
_ALLOW_HEAD = _head("allow", "ok")


def _log(
    head: str,
    sub: str | None,
    connection_id: str | None,
    cached: bool,
    started: float,
) -> None:
    # Formatted by hand with json's own string escaper: a dict through json.dumps costs as
    # much as everything else a cached decision does. Every string is escaped.
    line = (
        f'{head}{_json_str(sub) if sub is not None else "null"},"connectionId":'
        f'{_json_str(connection_id) if connection_id is not None else "null"},"cached":'
        f'{"true" if cached else "false"},"ms":{(time.perf_counter() - started) * 1000:.3f}}}\n'
    )
    # Looked up per call so a redirected stdout (tests, the local cloud's workers) is honoured.
    # No flush of our own: Lambda's runtime wraps stdout so that every write is flushed
    # (awslambdaric's Unbuffered), and the local cloud's workers line-buffer it.
    sys.stdout.write(line)


_authorizer: Authorizer | None = None


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point (``handlers.authorizer.handler``).

    Args:
        event: the REQUEST authorizer event.
        context: the Lambda context (unused).

    Returns:
        The Allow or Deny policy answer.

    Raises:
        JwksUnavailable: no signing key could be obtained.
        ValueError: the environment is misconfigured.
    """
    global _authorizer
    authorizer = _authorizer
    if authorizer is None:
        try:
            authorizer = _authorizer = Authorizer(AuthorizerConfig.from_env(os.environ))
        except ValueError as exc:
            # The message names a variable, never a secret; a misconfigured function must
            # fail loudly (500), not deny every user silently.
            sys.stdout.write(
                _LOG.encode({"logger": "authorizer", "outcome": "error", "reason": str(exc)}) + "\n"
            )
            raise
    return authorizer.decide(event)


def reset() -> None:
    """Forget the process-wide authorizer, so the next call reads the environment again.

    Tests use it; a Lambda process never needs it.
    """
    global _authorizer
    _authorizer = None
