"""What the terminal clients share: signing in to Cognito and opening the API's WebSocket.

Errors come out as `ClientError` with a sentence a person can act on; the commands turn them
into one line. Tokens never appear in a message, a repr or a log: the URL that carries one is
never shown, only the stack's endpoint.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

from wsauth.outputs import StackOutputs

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

    from wsauth.handlers.sender import DeliveryReport

__all__ = [
    "SUBPROTOCOL",
    "TOKEN_QUERY_KEY",
    "ClientError",
    "HandshakeRefused",
    "RefreshRefused",
    "TokenSource",
    "Tokens",
    "cognito_admin_client",
    "describe_aws_error",
    "forge_signature",
    "handshake_status",
    "open_socket",
    "refresh_tokens",
    "send_to_stack_user",
    "sign_in",
    "stack_clients",
    "unverified_claims",
    "websocket_url",
]

TOKEN_QUERY_KEY = "idToken"
"""The query string key the authorizer reads by default (config `tokenQueryKey`)."""
SUBPROTOCOL = "wsauth"
"""The subprotocol `$connect` chooses when the token travels in `Sec-WebSocket-Protocol`."""

TokenSource = Literal["query", "protocol"]

# Cognito error codes → what to tell the person (UserNotFound reads as a wrong password, as
# Cognito itself does when user-existence errors are off).
_SIGN_IN_ERRORS = {
    "NotAuthorizedException": "wrong username or password",
    "UserNotFoundException": "wrong username or password",
    "UserNotConfirmedException": (
        "user {username} is not confirmed yet (enter the emailed code on the web page first)"
    ),
    "PasswordResetRequiredException": "user {username} must reset their password first",
    "TooManyRequestsException": "too many sign-in attempts; wait a minute and try again",
    "ResourceNotFoundException": (
        "Cognito does not know app client {client_id}: is the outputs file from this stack?"
    ),
}


class ClientError(Exception):
    """A failure to show the person as one line."""


@dataclass(frozen=True)
class Tokens:
    """A Cognito sign-in's tokens (kept out of `repr`, so they never end up in a log)."""

    id_token: str = field(repr=False)
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False, default=None)

    @property
    def claims(self) -> dict[str, Any]:
        """The ID token's claims, unverified: for addressing (`sub`), never for trust."""
        return unverified_claims(self.id_token)


def unverified_claims(jwt: str) -> dict[str, Any]:
    """Decode a JWT's payload without checking it.

    Args:
        jwt: A compact JWS.

    Returns:
        The payload's claims.

    Raises:
        ClientError: The token is not a JWT.
    """
    try:
        payload = jwt.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError) as error:
        raise ClientError("Cognito returned a token that is not a JWT") from error
    if not isinstance(claims, dict):
        raise ClientError("Cognito returned a token that is not a JWT")
    return claims


def forge_signature(jwt: str) -> str:
    """The same token with one bit of its signature flipped: what a forger could present.

    Args:
        jwt: A real, signed token.

    Returns:
        A token whose header and claims are genuine and whose signature is not.
    """
    header, payload, signature = jwt.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    # Flip a bit in the bytes, not a character in the text: the last base64 character can carry
    # padding bits that decode to the same signature.
    raw[0] ^= 0x01
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    return f"{header}.{payload}.{forged}"


def _cognito_client(outputs: StackOutputs) -> Any:
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    # InitiateAuth is one of Cognito's unauthenticated calls: no AWS credentials involved, so
    # the command works on a machine that has none. Few retries: a wrong endpoint should fail
    # in seconds, not after botocore's default backoff.
    config = Config(
        signature_version=UNSIGNED,
        retries={"max_attempts": 2, "mode": "standard"},
        connect_timeout=5,
        read_timeout=15,
    )
    return boto3.client(
        "cognito-idp",
        region_name=outputs.region,
        endpoint_url=outputs.aws_endpoint,
        config=config,
    )


def sign_in(outputs: StackOutputs, username: str, password: str) -> Tokens:
    """Sign in with USER_PASSWORD_AUTH (the app client allows it).

    Args:
        outputs: The stack (its app client, region and, locally, the embedded Cognito).
        username: The user's name (the email, for the pool this project creates).
        password: The user's password.

    Returns:
        The tokens.

    Raises:
        ClientError: Wrong password, unconfirmed user, Cognito unreachable, or a challenge
            (MFA, new password) that a terminal sign-in does not handle.
    """
    return _initiate_auth(
        outputs,
        "USER_PASSWORD_AUTH",
        {"USERNAME": username, "PASSWORD": password},
        errors=_SIGN_IN_ERRORS,
        username=username,
    )


class RefreshRefused(ClientError):
    """Cognito refused the refresh token (expired or revoked): only a new sign-in helps."""


def refresh_tokens(outputs: StackOutputs, tokens: Tokens) -> Tokens:
    """Fresh ID and access tokens from the refresh token (REFRESH_TOKEN_AUTH).

    Args:
        outputs: The stack.
        tokens: The current tokens; their refresh token is kept unless Cognito rotates it.

    Returns:
        The new tokens.

    Raises:
        RefreshRefused: The refresh token is missing, expired or revoked.
        ClientError: Cognito unreachable or failing (worth trying again later).
    """
    if tokens.refresh_token is None:
        raise RefreshRefused("no refresh token to refresh with")
    fresh = _initiate_auth(
        outputs,
        "REFRESH_TOKEN_AUTH",
        {"REFRESH_TOKEN": tokens.refresh_token},
        errors=_REFRESH_ERRORS,
        username="",
    )
    # A refresh answer carries a refresh token only when the app client rotates them.
    return fresh if fresh.refresh_token else replace(fresh, refresh_token=tokens.refresh_token)


_REFRESH_ERRORS = {
    "NotAuthorizedException": "Cognito refused the refresh token (expired or revoked)",
    "TooManyRequestsException": "too many token refreshes; wait a minute and try again",
    "ResourceNotFoundException": _SIGN_IN_ERRORS["ResourceNotFoundException"],
}


def _initiate_auth(
    outputs: StackOutputs,
    flow: str,
    parameters: dict[str, str],
    *,
    errors: dict[str, str],
    username: str,
) -> Tokens:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError as BotoClientError

    client = _cognito_client(outputs)
    try:
        result = client.initiate_auth(
            ClientId=outputs.user_pool_web_client_id, AuthFlow=flow, AuthParameters=parameters
        )
    except BotoClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        template = errors.get(code)
        if template is None:
            message = error.response.get("Error", {}).get("Message", code)
            what = "token refresh" if flow == "REFRESH_TOKEN_AUTH" else "sign-in"
            raise ClientError(f"Cognito refused the {what}: {code}: {message}") from None
        text = template.format(username=username, client_id=outputs.user_pool_web_client_id)
        if flow == "REFRESH_TOKEN_AUTH" and code == "NotAuthorizedException":
            raise RefreshRefused(text) from None
        raise ClientError(text) from None
    except BotoCoreError:
        raise ClientError(
            f"stack unreachable: cannot reach Cognito at {outputs.cognito_endpoint}"
        ) from None
    authentication = result.get("AuthenticationResult")
    if not authentication:
        raise ClientError(
            f"Cognito asks for a {result.get('ChallengeName', 'further')} step, which "
            "`wsauth` does not handle; sign in on the web page once"
        )
    return Tokens(
        id_token=authentication["IdToken"],
        access_token=authentication["AccessToken"],
        refresh_token=authentication.get("RefreshToken"),
    )


def websocket_url(outputs: StackOutputs, id_token: str | None) -> str:
    """The API's WebSocket address, with the token in the query string when given.

    Args:
        outputs: The stack.
        id_token: The token to present, or None for none.

    Returns:
        The URL to open (secret when it carries a token: never print it).
    """
    if id_token is None:
        return outputs.websocket_endpoint
    parts = urlsplit(outputs.websocket_endpoint)
    query = urlencode({TOKEN_QUERY_KEY: id_token})
    if parts.query:
        query = f"{parts.query}&{query}"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


_REFUSALS = {
    401: "the API refused the connection (401: no token reached the authorizer)",
    # `$connect` refuses with a bare 403 too, and API Gateway passes no reason on: say all three.
    403: (
        "the API refused the connection (403: the token was rejected, its session was ended by "
        "a sign-out everywhere, or the user has the most open connections allowed)"
    ),
    500: "the API failed while authorizing the connection (500: see the authorizer's logs)",
}


class HandshakeRefused(ClientError):
    """The API answered the WebSocket handshake with an HTTP error."""

    def __init__(self, status: int) -> None:
        super().__init__(_REFUSALS.get(status, f"the API refused the connection (HTTP {status})"))
        self.status = status


async def _handshake(
    outputs: StackOutputs, token: str | None, token_source: TokenSource, timeout: float
) -> ClientConnection:
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI
    from websockets.typing import Subprotocol

    if token is not None and token_source == "protocol":
        # As browsers must: the token rides as a second offered subprotocol, `$connect`
        # chooses `wsauth`.
        url = outputs.websocket_endpoint
        subprotocols = [Subprotocol(SUBPROTOCOL), Subprotocol(token)]
    else:
        url = websocket_url(outputs, token)
        subprotocols = None
    try:
        return await connect(url, subprotocols=subprotocols, open_timeout=timeout)
    except InvalidStatus as error:
        raise HandshakeRefused(int(error.response.status_code)) from None
    except InvalidURI:
        raise ClientError(
            f"webSocketEndpoint {outputs.websocket_endpoint!r} is not a WebSocket URL"
        ) from None
    except (OSError, InvalidHandshake) as error:
        raise _unreachable(outputs, error) from None


async def open_socket(
    outputs: StackOutputs, id_token: str | None, *, timeout: float = 10
) -> tuple[ClientConnection, TokenSource]:
    """Open the API's WebSocket, presenting the token where the stack's authorizer reads it.

    The outputs do not say where that is (config `tokenSource`): the query string by default,
    or the `Sec-WebSocket-Protocol` header. A 401 means the authorizer found no token where
    it looks, so after a 401 with the token in the query string, the header is tried.

    Args:
        outputs: The stack.
        id_token: The token to present (None: none).
        timeout: Seconds to wait for each handshake.

    Returns:
        The open connection, and where the token went (`query` or `protocol`).

    Raises:
        HandshakeRefused: The handshake was refused (the message says why).
        ClientError: The API is unreachable.
    """
    try:
        return await _handshake(outputs, id_token, "query", timeout), "query"
    except HandshakeRefused as refused:
        if refused.status != 401 or id_token is None:
            raise
    return await _handshake(outputs, id_token, "protocol", timeout), "protocol"


async def handshake_status(
    outputs: StackOutputs,
    token: str | None,
    *,
    token_source: TokenSource = "query",
    timeout: float = 10,
) -> int:
    """Try a handshake and report its HTTP status (101 when the API accepted it).

    Args:
        outputs: The stack.
        token: The token to present, or None.
        token_source: Where to put it: `query` (string) or `protocol` (header).
        timeout: Seconds to wait for the handshake.

    Returns:
        101 if the connection opened (it is closed at once), else the refusal's status.

    Raises:
        ClientError: The API is unreachable.
    """
    try:
        connection = await _handshake(outputs, token, token_source, timeout)
    except HandshakeRefused as refused:
        return refused.status
    await connection.close()
    return 101


def _unreachable(outputs: StackOutputs, error: Exception) -> ClientError:
    if isinstance(error, TimeoutError):
        reason = "no answer"
    elif isinstance(error, OSError) and error.strerror:
        reason = error.strerror
    else:
        reason = type(error).__name__
    return ClientError(
        f"stack unreachable: cannot connect to {outputs.websocket_endpoint} ({reason})"
    )


_SENDING = "sending goes through the stack's table and @connections API"


def stack_clients(outputs: StackOutputs, *, purpose: str = _SENDING) -> tuple[Any, Any]:
    """DynamoDB and `@connections` clients for the stack, as `handlers.sender` takes them.

    A deployed stack uses the caller's own AWS configuration. For the local cloud, DynamoDB is
    the embedded one (`awsEndpoint`), and placeholder credentials stand in when none are
    configured: the local cloud checks that requests are signed, not by whom.

    Args:
        outputs: The stack.
        purpose: What the clients are for, said when there are no credentials.

    Returns:
        `(dynamodb, management)` boto3 clients.

    Raises:
        ClientError: A deployed stack, and no AWS credentials to reach it with.
    """
    session, config = _stack_session(outputs, purpose)
    dynamodb = session.client("dynamodb", endpoint_url=outputs.aws_endpoint, config=config)
    management = session.client(
        "apigatewaymanagementapi", endpoint_url=outputs.management_endpoint, config=config
    )
    return dynamodb, management


def cognito_admin_client(outputs: StackOutputs, *, purpose: str) -> Any:
    """A signed Cognito client for the stack's user pool, for its administrator's calls.

    Unlike sign-in, `Admin*` calls need AWS credentials; locally, placeholders stand in as
    for `stack_clients`.

    Args:
        outputs: The stack.
        purpose: What the client is for, said when there are no credentials.

    Returns:
        A `cognito-idp` boto3 client (the embedded Cognito for the local cloud).

    Raises:
        ClientError: A deployed stack, and no AWS credentials to reach it with.
    """
    session, config = _stack_session(outputs, purpose)
    return session.client("cognito-idp", endpoint_url=outputs.aws_endpoint, config=config)


def _stack_session(outputs: StackOutputs, purpose: str) -> tuple[Any, Any]:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=outputs.region)
    if session.get_credentials() is None:
        if not outputs.is_local:
            raise ClientError(
                f"no AWS credentials: {purpose}, so configure a profile (aws configure, "
                "AWS_PROFILE) that may use them"
            )
        session = boto3.session.Session(
            region_name=outputs.region, aws_access_key_id="local", aws_secret_access_key="local"
        )
    # Few retries: an unreachable stack should fail in seconds, not after the default backoff.
    config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5)
    return session, config


def send_to_stack_user(outputs: StackOutputs, user_id: str, message: str) -> DeliveryReport:
    """Send a message to every connection of a user, as the stack's back-end services would.

    Goes through `handlers.sender.send_to_user` (the table's userIdIndex, then `@connections`)
    with the stack's own clients, so the commands exercise the very code the services use.

    Args:
        outputs: The stack.
        user_id: The user's Cognito `sub`.
        message: The text to send, exactly as given.

    Returns:
        What happened to each of the user's connections.

    Raises:
        ClientError: No credentials for a deployed stack, or the table could not be queried
            (the message says which, and where).
    """
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError as BotoClientError

    from wsauth.handlers.sender import send_to_user

    dynamodb, management = stack_clients(outputs)
    try:
        return send_to_user(
            user_id,
            message,
            table_name=outputs.connection_table_name,
            endpoint_url=outputs.management_endpoint,
            region=outputs.region,
            dynamodb=dynamodb,
            management=management,
        )
    except (BotoCoreError, BotoClientError) as error:
        raise ClientError(describe_aws_error(error, outputs)) from None


def describe_aws_error(error: Exception, outputs: StackOutputs) -> str:
    """One line for a failed call to the stack's table.

    Args:
        error: A botocore error.
        outputs: The stack.

    Returns:
        What went wrong, and where.
    """
    from botocore.exceptions import ClientError as BotoClientError
    from botocore.exceptions import EndpointConnectionError, NoCredentialsError

    table = outputs.connection_table_name
    if isinstance(error, BotoClientError):
        code = error.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            return f"table {table} not found: is the outputs file from this stack?"
        message = error.response.get("Error", {}).get("Message", "")
        return f"DynamoDB refused the query of table {table}: {code}: {message}"
    if isinstance(error, EndpointConnectionError):
        where = outputs.aws_endpoint or f"DynamoDB in {outputs.region}"
        return f"stack unreachable: cannot reach {where}"
    if isinstance(error, NoCredentialsError):
        return "no AWS credentials: configure a profile (aws configure, AWS_PROFILE)"
    return f"cannot query table {table}: {type(error).__name__}: {error}"
