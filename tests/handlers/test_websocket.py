"""The websocket handler keeps the connection table true and echoes to the sender."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from tests.support import connection_items
from wsauth.handlers import connections, sender, websocket

DOMAIN = "abcdef1234.execute-api.us-east-1.amazonaws.com"
STAGE = "prod"
MOTO_ACCOUNT = "123456789012"
REGION = "us-east-1"  # the aws_environment fixture's
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _event(route: str, connection_id: str = "conn-1", **fields: Any) -> dict[str, Any]:
    """An API Gateway WebSocket proxy event, as AWS sends it (trimmed to what matters)."""
    event: dict[str, Any] = {
        "requestContext": {
            "routeKey": route,
            "eventType": {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE"),
            "connectionId": connection_id,
            "connectedAt": 1_700_000_000_123,
            "domainName": DOMAIN,
            "stage": STAGE,
            "apiId": "abcdef1234",
            "requestId": "req-1",
        },
        "isBase64Encoded": False,
    }
    if route == "$connect":
        event["requestContext"]["authorizer"] = {
            "principalId": "sub-alice",
            "userId": "sub-alice",
            "username": "alice",
            "tokenUse": "id",
            "groups": "",
        }
        event["headers"] = {"Host": DOMAIN}
    event.update(fields)
    return event


def _item(dynamodb: Any, connection_id: str) -> dict[str, Any] | None:
    found = dynamodb.get_item(
        TableName=os.environ["CONNECTION_TABLE_NAME"],
        Key={"connectionId": {"S": connection_id}},
        ConsistentRead=True,
    )
    return found.get("Item")


def _posted(connection_id: str) -> bytes:
    """What moto's management API received for one connection."""
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

    return apigatewaymanagementapi_backends[MOTO_ACCOUNT][REGION].connections[connection_id].data


def _management_client() -> Any:
    return boto3.client(
        "apigatewaymanagementapi", endpoint_url=f"https://{DOMAIN}/{STAGE}", region_name=REGION
    )


def _client_error(code: str, status: int) -> dict[str, Any]:
    return {"service_error_code": code, "http_status_code": status}


# --- $connect -----------------------------------------------------------------------------------


def test_connect_stores_the_item(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`$connect` stores connection, user, name, connect time, a TTL counted from now and the
    live count's shard it was counted in."""
    monkeypatch.setenv("CONNECTION_TTL_SECONDS", "600")
    monkeypatch.setattr(connections.time, "time", lambda: 1_700_000_000.75)

    answer = websocket.handler(_event("$connect"), None)

    assert answer == {"statusCode": 200}
    assert _item(dynamodb, "conn-1") == {
        "connectionId": {"S": "conn-1"},
        "userId": {"S": "sub-alice"},
        "username": {"S": "alice"},
        "connectedAt": {"N": "1700000000123"},
        "removedAt": {"N": "1700000600"},
    }


def test_connect_ttl_defaults_to_three_hours(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without `CONNECTION_TTL_SECONDS`, `removedAt` is 10800 s after the connect."""
    monkeypatch.setattr(connections.time, "time", lambda: 1_700_000_000.0)

    websocket.handler(_event("$connect"), None)

    assert _item(dynamodb, "conn-1")["removedAt"] == {"N": str(1_700_000_000 + 10800)}


def test_connect_answers_500_when_the_store_fails(
    dynamodb: Any, table_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed write refuses the connection, so the table never misses a live connection."""
    monkeypatch.setenv("CONNECTION_TABLE_NAME", "no-such-table")

    answer = websocket.handler(_event("$connect"), None)

    assert answer["statusCode"] == 500
    assert connection_items(dynamodb, table_name) == []


def test_connect_without_an_authorized_user_is_refused(dynamodb: Any) -> None:
    """With no user from the authorizer, nothing vouches for the connection: 403, nothing stored."""
    event = _event("$connect")
    del event["requestContext"]["authorizer"]

    answer = websocket.handler(event, None)

    assert answer["statusCode"] == 403
    assert _item(dynamodb, "conn-1") is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Sec-WebSocket-Protocol": "wsauth, eyJhbGciOi.e30.c2ln"}, "wsauth"),
        ({"sec-websocket-protocol": "eyJhbGciOi.e30.c2ln,wsauth"}, "wsauth"),
        ({"Sec-WebSocket-Protocol": "chat"}, None),
        ({}, None),
    ],
)
def test_connect_answers_the_subprotocol_only_when_offered(
    dynamodb: Any, headers: dict[str, str], expected: str | None
) -> None:
    """`wsauth` is chosen when offered, and the token (the other subprotocol) never is."""
    answer = websocket.handler(_event("$connect", headers=headers), None)

    assert answer["statusCode"] == 200
    assert answer.get("headers", {}).get("Sec-WebSocket-Protocol") == expected


# --- $disconnect --------------------------------------------------------------------------------


def test_disconnect_deletes_and_is_harmless_twice(dynamodb: Any) -> None:
    """`$disconnect` deletes the item; a second one for the same id still answers 200."""
    websocket.handler(_event("$connect"), None)
    websocket.handler(_event("$connect", connection_id="conn-2"), None)

    first = websocket.handler(_event("$disconnect"), None)
    second = websocket.handler(_event("$disconnect"), None)

    assert first == second == {"statusCode": 200}
    assert _item(dynamodb, "conn-1") is None
    assert _item(dynamodb, "conn-2") is not None


# --- $default: echo -----------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["$default", "sendmessage"])
def test_text_is_echoed_to_the_sender(dynamodb: Any, route: str) -> None:
    """A text frame comes back as `{"message": body}` in UTF-8 JSON, on any non-lifecycle route."""
    body = '{"action": "sendmessage", "data": "héllo ✓"}'

    answer = websocket.handler(_event(route, body=body), None)

    assert answer == {"statusCode": 200}
    assert json.loads(_posted("conn-1").decode("utf-8")) == {"message": body}
    assert "héllo ✓".encode() in _posted("conn-1")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("grüße".encode(), {"message": "grüße"}),
        (
            b"\xff\x00\xfe",
            {"message": base64.b64encode(b"\xff\x00\xfe").decode(), "isBase64Encoded": True},
        ),
    ],
    ids=["utf8-binary", "non-utf8-binary"],
)
def test_binary_is_echoed_as_text_or_base64(
    dynamodb: Any, raw: bytes, expected: dict[str, Any]
) -> None:
    """A binary frame is echoed as its text when it is UTF-8, else as flagged base64."""
    event = _event("$default", body=base64.b64encode(raw).decode(), isBase64Encoded=True)

    websocket.handler(event, None)

    assert json.loads(_posted("conn-1")) == expected


def test_echo_to_a_gone_connection_deletes_its_item(dynamodb: Any, table_name: str) -> None:
    """A 410 Gone from the management API deletes the sender's item."""
    websocket.handler(_event("$connect"), None)
    management = _management_client()
    with Stubber(management) as stub:
        stub.add_client_error(
            "post_to_connection",
            expected_params={"ConnectionId": "conn-1", "Data": ANY},
            **_client_error("GoneException", 410),
        )
        answer = websocket.echo_message(
            _event("$default", body="hi"), management, dynamodb, table_name
        )
        stub.assert_no_pending_responses()

    assert answer == {"statusCode": 200}
    assert _item(dynamodb, "conn-1") is None


def test_echo_failure_answers_500_and_keeps_the_item(dynamodb: Any, table_name: str) -> None:
    """Any other management error is a failure, and the connection stays stored."""
    websocket.handler(_event("$connect"), None)
    management = _management_client()
    with Stubber(management) as stub:
        stub.add_client_error("post_to_connection", **_client_error("ForbiddenException", 403))
        answer = websocket.echo_message(
            _event("$default", body="hi"), management, dynamodb, table_name
        )

    assert answer == {"statusCode": 500}
    assert _item(dynamodb, "conn-1") is not None


# --- the management endpoint rule ---------------------------------------------------------------


def test_endpoint_comes_from_the_event_by_default(aws_environment: None) -> None:
    """Without an override, the endpoint is `https://{domainName}/{stage}`."""
    context = _event("$default")["requestContext"]

    assert websocket.management_endpoint(context) == f"https://{DOMAIN}/{STAGE}"


CONFIGURED = f"https://{DOMAIN}/{STAGE}"
LOCAL = "http://127.0.0.1:8080/local"


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({}, f"https://ws.example.com/{STAGE}"),
        ({"MANAGEMENT_ENDPOINT": CONFIGURED}, CONFIGURED),
        ({"AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI": LOCAL}, None),
        (
            {"AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI": LOCAL, "MANAGEMENT_ENDPOINT": CONFIGURED},
            None,
        ),
        ({"MANAGEMENT_ENDPOINT": ""}, f"https://ws.example.com/{STAGE}"),
    ],
    ids=["event-only", "configured", "boto3-variable", "boto3-variable-wins", "empty-configured"],
)
def test_endpoint_precedence(
    aws_environment: None,
    monkeypatch: pytest.MonkeyPatch,
    variables: dict[str, str],
    expected: str | None,
) -> None:
    """boto3's variable (None: left to boto3), then `MANAGEMENT_ENDPOINT`, then the event's
    domain, here a custom domain's, which is right only when nothing else is configured."""
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    context = _event("$default")["requestContext"]
    context["domainName"] = "ws.example.com"

    assert websocket.management_endpoint(context) == expected


def test_messages_through_a_custom_domain_post_to_the_configured_endpoint(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event whose `domainName` is a custom domain is answered through execute-api."""
    monkeypatch.setenv("MANAGEMENT_ENDPOINT", CONFIGURED)
    asked: list[str | None] = []
    real_client = sender.management_client

    def recording(endpoint_url: str | None, region: str | None = None) -> Any:
        asked.append(endpoint_url)
        return real_client(endpoint_url, region)

    monkeypatch.setattr(sender, "management_client", recording)
    event = _event("$default", body="hi")
    event["requestContext"]["domainName"] = "ws.example.com"

    assert websocket.handler(event, None) == {"statusCode": 200}
    assert asked == [CONFIGURED]
    assert json.loads(_posted("conn-1")) == {"message": "hi"}


def test_endpoint_variable_wins_when_set(
    aws_environment: None, fresh_clients: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI` is left to boto3, which then uses it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI", "http://127.0.0.1:8080/local")
    context = _event("$default", requestContext={"domainName": "127.0.0.1:8080"})

    endpoint = websocket.management_endpoint(context["requestContext"])
    client = sender.management_client(endpoint, REGION)

    assert endpoint is None
    assert client.meta.endpoint_url == "http://127.0.0.1:8080/local"


def test_management_clients_are_created_once_per_endpoint(
    aws_environment: None, fresh_clients: None
) -> None:
    """The same endpoint reuses one client; another endpoint gets its own."""
    first = sender.management_client(f"https://{DOMAIN}/{STAGE}", REGION)

    assert sender.management_client(f"https://{DOMAIN}/{STAGE}", REGION) is first
    assert sender.management_client(f"https://{DOMAIN}/other", REGION) is not first


def test_no_boto3_client_is_created_at_import() -> None:
    """Importing the handler modules creates no boto3 client (tests and the local cloud choose)."""
    script = (
        "import boto3, boto3.session\n"
        "created = []\n"
        "boto3.session.Session.client = lambda *a, **k: created.append(a)\n"
        "import wsauth.handlers.websocket, wsauth.handlers.sender, wsauth.handlers.connections\n"
        "assert not created, created\n"
        "print('ok')\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "ok"
