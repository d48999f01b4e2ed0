"""Sign out everywhere, revoked sessions refused, connections per user capped (DESIGN §7).

DynamoDB is moto's; `@connections` and Cognito are recording stand-ins.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.handlers.test_sessions import USER, Management, _message, _refresh, _store
from wsauth.handlers import admission, connections, signout, users, websocket

OTHER = "0b9d2c8e-1111-4222-8333-444455556666"


class Cognito:
    """Records `AdminUserGlobalSignOut` calls."""

    def __init__(self) -> None:
        self.signed_out: list[tuple[str, str]] = []

    def admin_user_global_sign_out(self, UserPoolId: str, Username: str) -> None:  # noqa: N803
        self.signed_out.append((UserPoolId, Username))


@pytest.fixture
def management(monkeypatch: pytest.MonkeyPatch) -> Management:
    from wsauth.handlers import sender

    stand_in = Management()
    monkeypatch.setattr(sender, "management_client", lambda *args, **kwargs: stand_in)
    return stand_in


def _connect(connection_id: str, *, auth_time: int, user: str = USER) -> dict[str, Any]:
    event = _message(connection_id, int(time.time()) + 600, route="$connect")
    event["requestContext"]["eventType"] = "CONNECT"
    event["requestContext"]["connectedAt"] = int(time.time() * 1000)
    authorizer = event["requestContext"]["authorizer"]
    authorizer.update({"userId": user, "principalId": user, "authTime": str(auth_time)})
    return event


def _open_count(dynamodb: Any, table: str, user: str = USER) -> int:
    value = users.user_state(dynamodb, table, user).get("openConnections", {}).get("N", "0")
    return int(value)


# --- revoked sessions stay out ------------------------------------------------------------------


def test_a_token_from_before_the_sign_out_is_refused_at_connect(
    dynamodb: Any, table_name: str, management: Management
) -> None:
    """`auth_time` before the last sign-out everywhere: 403, though the token is valid."""
    signed_out = users.record_sign_out(dynamodb, table_name, USER, time.time())

    answer = websocket.handler(_connect("conn-old", auth_time=signed_out - 1), None)

    assert answer["statusCode"] == 403
    assert connections.stored_expiry(dynamodb, table_name, "conn-old") is None


def test_a_sign_in_in_the_same_second_is_let_in(
    dynamodb: Any, table_name: str, management: Management
) -> None:
    """`auth_time` has one-second granularity: signing in again at once works."""
    signed_out = users.record_sign_out(dynamodb, table_name, USER, time.time())

    assert websocket.handler(_connect("conn-new", auth_time=signed_out), None)["statusCode"] == 200


def test_a_revoked_token_cannot_refresh(
    dynamodb: Any, table_name: str, management: Management, authorizer_env: None, jwt_kit: Any
) -> None:
    """An in-band refresh with a token from before the sign-out is rejected."""
    _store(dynamodb, table_name, "conn-1", int(time.time()) + 30)
    claims = jwt_kit.id_claims(now=time.time())
    token = jwt_kit.mint(jwt_kit.keys.main, claims)
    users.record_sign_out(dynamodb, table_name, USER, claims["auth_time"] + 1)

    websocket.handler(_refresh(token), None)

    assert management.posts == [("conn-1", {"type": "tokenRejected", "reason": "session_revoked"})]


# --- connections per user -------------------------------------------------------------------------


def test_the_limit_refuses_the_next_handshake(
    dynamodb: Any, table_name: str, management: Management, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a limit of 2, the third connection is refused; a disconnect makes room again."""
    monkeypatch.setenv("MAX_CONNECTIONS_PER_USER", "2")
    now = int(time.time())
    answers = [websocket.handler(_connect(f"c{n}", auth_time=now), None) for n in range(3)]

    assert [answer["statusCode"] for answer in answers] == [200, 200, 403]
    assert _open_count(dynamodb, table_name) == 2
    websocket.handler(_message("c0", now + 600, route="$disconnect"), None)
    assert _open_count(dynamodb, table_name) == 1
    assert websocket.handler(_connect("c3", auth_time=now), None)["statusCode"] == 200


def test_a_count_drifted_by_lost_disconnects_heals(
    dynamodb: Any, table_name: str, management: Management
) -> None:
    """At the limit, stored connections API Gateway no longer knows (their `$disconnect` was
    lost) are forgotten and counted out, and the handshake goes through."""
    long_ago = (time.time() - 3600) * 1000
    for name in ("lost-1", "lost-2"):
        connections.put_connection(
            dynamodb, table_name, connection_id=name, user_id=USER, username="alice",
            connected_at_ms=int(long_ago), ttl_seconds=10800, counted=True,
        )  # fmt: skip
        users.count_connection(dynamodb, table_name, USER, limit=2, now=time.time())
    management.gone = {"lost-1", "lost-2"}

    refused = admission.admit(
        dynamodb, table_name, management, user_id=USER, auth_time=time.time(), limit=2,
        check_revocation=True, now=time.time(),
    )  # fmt: skip

    assert refused is None
    assert _open_count(dynamodb, table_name) == 1
    assert connections.stored_expiry(dynamodb, table_name, "lost-1") is None
    assert not list(connections.connection_ids_of_user(dynamodb, table_name, USER))


def test_young_connections_are_never_taken_for_lost_ones(
    dynamodb: Any, table_name: str, management: Management
) -> None:
    """A connection stored moments ago may still be in its `$connect`: not checked, not freed."""
    connections.put_connection(
        dynamodb, table_name, connection_id="young", user_id=USER, username="alice",
        connected_at_ms=int(time.time() * 1000), ttl_seconds=10800, counted=True,
    )  # fmt: skip
    users.count_connection(dynamodb, table_name, USER, limit=1, now=time.time())
    management.gone = {"young"}

    refused = admission.admit(
        dynamodb, table_name, management, user_id=USER, auth_time=time.time(), limit=1,
        check_revocation=False, now=time.time(),
    )  # fmt: skip

    assert refused == "connection_limit"
    assert _open_count(dynamodb, table_name) == 1


def test_user_items_stay_out_of_both_indexes(dynamodb: Any, table_name: str) -> None:
    """A user's own item is never taken for one of their connections, nor swept."""
    users.record_sign_out(dynamodb, table_name, USER, time.time())
    users.count_connection(dynamodb, table_name, USER, limit=5, now=time.time())

    assert list(connections.connection_ids_of_user(dynamodb, table_name, USER)) == []
    assert (
        list(
            connections.expired_connection_ids(
                dynamodb, table_name, expired_by=time.time() + 10**5, lookback_seconds=2 * 10**5
            )
        )
        == []
    )


# --- sign out everywhere --------------------------------------------------------------------------


def test_sign_out_everywhere_revokes_records_and_closes_every_connection(
    dynamodb: Any, table_name: str, management: Management
) -> None:
    """Cognito's sessions are revoked, the sign-out is recorded, and each of the user's
    connections gets `signedOut` and is closed; another user's are untouched."""
    for name in ("mine-1", "mine-2"):
        _store(dynamodb, table_name, name, int(time.time()) + 600)
    _store(dynamodb, table_name, "theirs", int(time.time()) + 600, user=OTHER)
    cognito = Cognito()

    report = signout.sign_out_everywhere(
        USER, user_pool_id="us-east-1_Pool", table_name=table_name, cognito=cognito,
        dynamodb=dynamodb, management=management, now=1_900_000_000.7,
    )  # fmt: skip

    assert cognito.signed_out == [("us-east-1_Pool", USER)]
    assert report.signed_out_at == 1_900_000_000
    assert users.signed_out_at(users.user_state(dynamodb, table_name, USER)) == 1_900_000_000
    assert sorted(report.closed) == ["mine-1", "mine-2"]
    assert sorted(management.posts) == [
        ("mine-1", {"type": "signedOut"}),
        ("mine-2", {"type": "signedOut"}),
    ]
    assert sorted(management.deleted) == ["mine-1", "mine-2"]


def test_the_route_signs_the_connections_user_out(
    dynamodb: Any, table_name: str, management: Management, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`{"action": "signOutEverywhere"}` ends the sessions of the connection's own user."""
    monkeypatch.setenv("USER_POOL_ID", "us-east-1_Pool")
    cognito = Cognito()
    import boto3

    real_client = boto3.client
    monkeypatch.setattr(
        boto3,
        "client",
        lambda service, **kwargs: (
            cognito if service == "cognito-idp" else real_client(service, **kwargs)
        ),
    )
    _store(dynamodb, table_name, "conn-1", int(time.time()) + 600)
    event = _message("conn-1", int(time.time()) + 600, route="signOutEverywhere")
    event["body"] = json.dumps({"action": "signOutEverywhere"})

    assert websocket.handler(event, None)["statusCode"] == 200
    assert cognito.signed_out == [("us-east-1_Pool", USER)]
    assert management.posts == [("conn-1", {"type": "signedOut"})]
    assert management.deleted == ["conn-1"]


def test_a_client_that_hangs_up_on_the_notice_counts_as_closed(
    dynamodb: Any, table_name: str, management: Management
) -> None:
    """Told `signedOut`, the client closes first; the DELETE's 410 still means closed."""
    from wsauth.handlers import sender

    _store(dynamodb, table_name, "quick", int(time.time()) + 600)

    class HangsUpOnNotice(Management):
        def delete_connection(self, ConnectionId: str) -> None:  # noqa: N803
            self.gone.add(ConnectionId)
            super().delete_connection(ConnectionId)

    hangs_up = HangsUpOnNotice()
    assert sender.close(hangs_up, dynamodb, table_name, "quick", signout.SIGNED_OUT) == (
        "expired",
        None,
    )
    assert hangs_up.posts == [("quick", {"type": "signedOut"})]
    assert connections.stored_expiry(dynamodb, table_name, "quick") is None
