"""Sessions: a connection lives only as long as its token (expiry, in-band refresh, sweeping).

DynamoDB is moto's; the management API is a recording stand-in for API Gateway's
`@connections` (posts, deletes, and 410 for connections it was told are gone).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest

from wsauth.handlers import connections, sender, sweeper, websocket

DOMAIN = "abcdef1234.execute-api.us-east-1.amazonaws.com"
USER = "7c1f1f4e-3b0a-4d5e-9f57-2b1c0a9e8d11"  # the test tokens' sub
OTHER_USER = "0b9d2c8e-1111-4222-8333-444455556666"


class Management:
    """Records what the functions ask of `@connections`; ids in `gone` answer 410."""

    def __init__(self, gone: set[str] | None = None) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.deleted: list[str] = []
        self.gone = gone or set()

    def _check(self, connection_id: str, operation: str) -> None:
        from botocore.exceptions import ClientError

        if connection_id in self.gone:
            raise ClientError(
                {"Error": {"Code": "GoneException"}, "ResponseMetadata": {"HTTPStatusCode": 410}},
                operation,
            )

    def post_to_connection(self, ConnectionId: str, Data: bytes) -> None:  # noqa: N803
        self._check(ConnectionId, "PostToConnection")
        self.posts.append((ConnectionId, json.loads(Data)))

    def delete_connection(self, ConnectionId: str) -> None:  # noqa: N803
        self._check(ConnectionId, "DeleteConnection")
        self.deleted.append(ConnectionId)

    def get_connection(self, ConnectionId: str) -> dict[str, Any]:  # noqa: N803
        self._check(ConnectionId, "GetConnection")
        return {"connectedAt": "2026-01-01T00:00:00Z"}


class CountingDynamoDB:
    """moto's client, counting reads: calls by operation and items returned."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.exceptions = client.exceptions
        self.calls: dict[str, int] = {}
        self.items_read = 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def counted(**kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            answer = method(**kwargs)
            self.items_read += len(answer.get("Items", [])) + ("Item" in answer)
            return answer

        return counted


@pytest.fixture
def management(monkeypatch: pytest.MonkeyPatch) -> Management:
    """The stand-in every handler gets from `sender.management_client`."""
    stand_in = Management()
    monkeypatch.setattr(sender, "management_client", lambda *args, **kwargs: stand_in)
    return stand_in


def _store(dynamodb: Any, table: str, connection_id: str, expires_at: int | None, user=USER):
    connections.put_connection(
        dynamodb,
        table,
        connection_id=connection_id,
        user_id=user,
        username="alice",
        connected_at_ms=1,
        ttl_seconds=10800,
        expires_at=expires_at,
    )


def _message(connection_id: str, expires_at: object, body: str = "hi", route: str = "$default"):
    return {
        "requestContext": {
            "routeKey": route,
            "eventType": "MESSAGE",
            "connectionId": connection_id,
            "domainName": DOMAIN,
            "stage": "prod",
            "authorizer": {"principalId": USER, "userId": USER, "expiresAt": expires_at},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def _expiry(dynamodb: Any, table: str, connection_id: str) -> tuple[str, str] | None:
    item = dynamodb.get_item(
        TableName=table, Key={"connectionId": {"S": connection_id}}, ConsistentRead=True
    ).get("Item")
    if item is None:
        return None
    return item["expiresAt"]["N"], item["expiryBucket"]["N"]


# --- expiry travels with the connection ---------------------------------------------------------


@pytest.mark.parametrize("context_value", [1_900_000_123, "1900000123"], ids=["number", "string"])
def test_connect_stores_the_tokens_expiry(
    dynamodb: Any, table_name: str, context_value: object
) -> None:
    """`$connect` writes the authorizer's `expiresAt` and its bucket on the item."""
    event = _message("conn-1", context_value, route="$connect")
    event["requestContext"]["eventType"] = "CONNECT"

    assert websocket.handler(event, None)["statusCode"] == 200
    assert _expiry(dynamodb, table_name, "conn-1") == ("1900000123", str(1_900_000_123 // 600))


# --- nothing flows on an expired connection ------------------------------------------------------


def test_live_session_echoes_without_a_table_read(
    dynamodb: Any, table_name: str, management: Management, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the context's expiry is ahead, a message is echoed and the table is not read."""
    counting = CountingDynamoDB(dynamodb)
    monkeypatch.setattr(connections, "dynamodb_client", lambda: counting)

    websocket.handler(_message("conn-1", int(time.time()) + 600), None)

    assert management.posts == [("conn-1", {"message": "hi"})]
    assert counting.calls == {}


def test_message_after_expiry_is_refused_and_closed(
    dynamodb: Any, table_name: str, management: Management
) -> None:
    """Past `expiresAt`, the message is not handled: sessionExpired, then the server closes."""
    expired = int(time.time()) - 1
    _store(dynamodb, table_name, "conn-1", expired)

    assert websocket.handler(_message("conn-1", expired), None)["statusCode"] == 200
    assert management.posts == [("conn-1", {"type": "sessionExpired"})]
    assert management.deleted == ["conn-1"]


def test_a_refreshed_session_outlives_the_context(
    dynamodb: Any, table_name: str, management: Management
) -> None:
    """The context keeps the handshake's expiry; the item's (moved by a refresh) decides."""
    _store(dynamodb, table_name, "conn-1", int(time.time()) + 600)

    websocket.handler(_message("conn-1", int(time.time()) - 1), None)

    assert management.posts == [("conn-1", {"message": "hi"})]
    assert management.deleted == []


def test_leeway_applies_as_in_the_authorizer(
    dynamodb: Any, table_name: str, management: Management, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within the clock leeway an expiry has not passed yet."""
    monkeypatch.setenv("CLOCK_LEEWAY_SECONDS", "60")
    just_expired = int(time.time()) - 5
    _store(dynamodb, table_name, "conn-1", just_expired)

    websocket.handler(_message("conn-1", just_expired), None)

    assert management.posts == [("conn-1", {"message": "hi"})]


def test_off_keeps_todays_behaviour(
    dynamodb: Any, table_name: str, management: Management, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`SESSION_EXPIRY=off`: an expired token's connection is echoed to, as before."""
    monkeypatch.setenv("SESSION_EXPIRY", "off")
    expired = int(time.time()) - 100
    _store(dynamodb, table_name, "conn-1", expired)

    websocket.handler(_message("conn-1", expired), None)

    assert management.posts == [("conn-1", {"message": "hi"})]
    assert management.deleted == []


# --- refresh in-band ----------------------------------------------------------------------------


def _refresh(token: object, connection_id: str = "conn-1", expires_at: int | None = None):
    body = json.dumps({"action": "refreshToken", "token": token})
    vouched = expires_at if expires_at is not None else int(time.time()) + 30
    return _message(connection_id, vouched, body=body, route="refreshToken")


def test_refresh_moves_the_expiry(
    dynamodb: Any,
    table_name: str,
    management: Management,
    authorizer_env: None,
    jwt_kit: Any,
) -> None:
    """A valid token of the same user moves `expiresAt` (and its bucket) and says so."""
    _store(dynamodb, table_name, "conn-1", int(time.time()) + 30)
    claims = jwt_kit.id_claims(now=time.time(), exp=int(time.time()) + 3600)
    token = jwt_kit.mint(jwt_kit.keys.main, claims)

    assert websocket.handler(_refresh(token), None)["statusCode"] == 200

    assert management.posts == [("conn-1", {"type": "tokenRefreshed", "expiresAt": claims["exp"]})]
    assert _expiry(dynamodb, table_name, "conn-1") == (
        str(claims["exp"]),
        str(claims["exp"] // 600),
    )


def _bad_tokens(kit: Any) -> dict[str, tuple[object, str]]:
    now = time.time()
    return {
        "other-user": (
            kit.mint(kit.keys.main, kit.id_claims(now=now, sub=OTHER_USER)),
            "other_user",
        ),
        "expired": (kit.mint(kit.keys.main, kit.id_claims(now=now - 7200)), "expired"),
        "forged": (kit.mint(kit.keys.foreign, kit.id_claims(now=now)), "kid_unknown"),
        "malformed": ("not.a.jwt", "malformed_header"),
        "missing": (None, "token_missing"),
        "access-token": (kit.mint(kit.keys.main, kit.access_claims(now=now)), "token_use_mismatch"),
    }


@pytest.mark.parametrize(
    "case", ["other-user", "expired", "forged", "malformed", "missing", "access-token"]
)
def test_refresh_with_a_bad_token_changes_nothing(
    dynamodb: Any,
    table_name: str,
    management: Management,
    authorizer_env: None,
    jwt_kit: Any,
    case: str,
) -> None:
    """Another user's, an expired, a forged, a malformed or no token: rejected with the
    authorizer's reason code, and the session still ends when it did."""
    expires_at = int(time.time()) + 30
    _store(dynamodb, table_name, "conn-1", expires_at)
    token, reason = _bad_tokens(jwt_kit)[case]

    websocket.handler(_refresh(token), None)

    assert management.posts == [("conn-1", {"type": "tokenRejected", "reason": reason})]
    assert _expiry(dynamodb, table_name, "conn-1") == (str(expires_at), str(expires_at // 600))


def test_refresh_never_resurrects_a_closed_connection(
    dynamodb: Any, table_name: str, management: Management, authorizer_env: None, jwt_kit: Any
) -> None:
    """A refresh for a connection whose item `$disconnect` deleted writes nothing."""
    token = jwt_kit.mint(jwt_kit.keys.main, jwt_kit.id_claims(now=time.time()))

    websocket.handler(_refresh(token, "conn-gone"), None)

    assert management.posts == [
        ("conn-gone", {"type": "tokenRejected", "reason": "connection_unknown"})
    ]
    assert _expiry(dynamodb, table_name, "conn-gone") is None


def test_echo_path_does_not_load_the_verifier() -> None:
    """The websocket function's cold start stays lean: the JWT code loads on refresh only."""
    code = (
        "import sys, wsauth.handlers.websocket; "
        "print(sorted(m for m in sys.modules if m.startswith(('jose', 'cryptography', "
        "'wsauth.handlers.cognito_jwt', 'wsauth.handlers.authorizer'))))"
    )
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert child.stdout.strip() == "[]"


# --- the senders --------------------------------------------------------------------------------


def test_send_to_user_skips_and_closes_expired_connections(
    dynamodb: Any, table_name: str, management: Management
) -> None:
    """Live connections get the payload; expired ones are told, closed and reported; one
    with no recorded bound (sessionExpiry off) is delivered to."""
    now = int(time.time())
    _store(dynamodb, table_name, "live", now + 600)
    _store(dynamodb, table_name, "expired", now - 1)
    _store(dynamodb, table_name, "unbounded", None)

    report = sender.send_to_user(
        USER, {"hello": 1}, table_name=table_name, endpoint_url=f"https://{DOMAIN}/prod"
    )

    assert sorted(report.delivered) == ["live", "unbounded"]
    assert report.expired == ["expired"]
    assert sorted(management.posts) == [
        ("expired", {"type": "sessionExpired"}),
        ("live", {"hello": 1}),
        ("unbounded", {"hello": 1}),
    ]
    assert management.deleted == ["expired"]


def test_send_to_connection_reports_an_expired_session(
    dynamodb: Any, table_name: str, management: Management
) -> None:
    """One connection past its expiry: not delivered, closed, reported as expired."""
    _store(dynamodb, table_name, "conn-1", int(time.time()) - 1)

    report = sender.send_to_connection(
        "conn-1", "hi", table_name=table_name, endpoint_url=f"https://{DOMAIN}/prod"
    )

    assert report.expired == ["conn-1"] and not report.delivered
    assert management.deleted == ["conn-1"]


# --- the sweeper --------------------------------------------------------------------------------


def test_sweeper_closes_exactly_the_expired_and_reads_only_them(
    dynamodb: Any, table_name: str, management: Management
) -> None:
    """Idle expired connections are closed; live ones are not read, nothing is scanned."""
    now = int(time.time())
    for index in range(40):
        _store(dynamodb, table_name, f"live-{index}", now + 60 + index * 97)
    expired = {f"expired-{index}": now - 1 - index * 331 for index in range(6)}
    for connection_id, expires_at in expired.items():
        _store(dynamodb, table_name, connection_id, expires_at)
    management.gone = {"expired-5"}  # its `$disconnect` was lost: the item goes here
    counting = CountingDynamoDB(dynamodb)

    counts = sweeper.sweep(
        counting, management, table_name, now=now, leeway_seconds=0, lookback_seconds=10800
    )

    assert counts == {"closed": 5, "gone": 1, "failed": 0}
    assert sorted(management.deleted) == sorted(set(expired) - {"expired-5"})
    assert counting.items_read == len(expired)
    assert "scan" not in counting.calls
    assert connections.stored_expiry(dynamodb, table_name, "expired-5") is None


def test_sweeper_handler_runs_from_its_environment(
    dynamodb: Any, table_name: str, management: Management, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduled entry point reads the table, endpoint and leeway it was deployed with."""
    monkeypatch.setenv("MANAGEMENT_ENDPOINT", f"https://{DOMAIN}/prod")
    _store(dynamodb, table_name, "expired", int(time.time()) - 10)

    assert sweeper.handler({"detail-type": "Scheduled Event"}, None) == {
        "connections": 0,  # nothing counted: the counter is fed by the table's stream
        "closed": 1,
        "gone": 0,
        "failed": 0,
    }


def test_off_records_no_bound(
    dynamodb: Any, table_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `SESSION_EXPIRY=off` the item carries no expiry, so no sender or sweeper ends it."""
    monkeypatch.setenv("SESSION_EXPIRY", "off")
    event = _message("conn-1", int(time.time()) - 100, route="$connect")
    event["requestContext"]["eventType"] = "CONNECT"

    websocket.handler(event, None)

    item = dynamodb.get_item(TableName=table_name, Key={"connectionId": {"S": "conn-1"}})["Item"]
    assert item["userId"] == {"S": USER}
    assert "expiresAt" not in item and "expiryBucket" not in item
