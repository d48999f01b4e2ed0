"""Sending to users: every connection of a user, bounded concurrency, gone ones forgotten."""

from __future__ import annotations

import json
import threading
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber

from tests.support import connection_items
from wsauth.handlers import connections, sender
from wsauth.handlers.sender import DeliveryReport, send_to_connection, send_to_user

ENDPOINT = "https://abcdef1234.execute-api.us-east-1.amazonaws.com/prod"
MOTO_ACCOUNT = "123456789012"
REGION = "us-east-1"  # the aws_environment fixture's


def _store(dynamodb: Any, table_name: str, user_id: str, *connection_ids: str) -> None:
    for connection_id in connection_ids:
        connections.put_connection(
            dynamodb,
            table_name,
            connection_id=connection_id,
            user_id=user_id,
            username=user_id,
            connected_at_ms=0,
            ttl_seconds=60,
        )


def _stored_ids(dynamodb: Any, table_name: str) -> set[str]:
    return {item["connectionId"]["S"] for item in connection_items(dynamodb, table_name)}


def _posted() -> dict[str, bytes]:
    """Connection id → bytes moto's management API received."""
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

    backend = apigatewaymanagementapi_backends[MOTO_ACCOUNT][REGION]
    return {connection_id: c.data for connection_id, c in backend.connections.items() if c.data}


class CountingQueries:
    """A DynamoDB client whose queries return small pages, counting them."""

    def __init__(self, client: Any, page_size: int) -> None:
        self._client = client
        self._page_size = page_size
        self.queries = 0

    def query(self, **request: Any) -> Any:
        self.queries += 1
        return self._client.query(**request, Limit=self._page_size)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PostToConnection",
    )


class ScriptedManagement:
    """An `apigatewaymanagementapi` stand-in answering per connection id, safe across threads."""

    def __init__(self, answers: dict[str, Exception]) -> None:
        self._answers = answers
        self._lock = threading.Lock()
        self.posted: dict[str, bytes] = {}

    def post_to_connection(self, *, ConnectionId: str, Data: bytes) -> dict[str, Any]:  # noqa: N803
        if ConnectionId in self._answers:
            raise self._answers[ConnectionId]
        with self._lock:
            self.posted[ConnectionId] = Data
        return {}


def test_send_to_user_reaches_every_connection_across_pages(dynamodb: Any, table_name: str) -> None:
    """All of a user's connections get the payload, read over several index pages; others none."""
    alice = [f"alice-{n:02}" for n in range(23)]
    _store(dynamodb, table_name, "sub-alice", *alice)
    _store(dynamodb, table_name, "sub-bob", "bob-1")
    paged = CountingQueries(dynamodb, page_size=5)

    report = send_to_user(
        "sub-alice",
        {"notice": "hello"},
        table_name=table_name,
        endpoint_url=ENDPOINT,
        dynamodb=paged,
    )

    assert sorted(report.delivered) == alice
    assert report.gone == [] and report.failed == {}
    assert paged.queries >= 5
    posted = _posted()
    assert set(posted) == set(alice)
    assert all(json.loads(data) == {"notice": "hello"} for data in posted.values())


def test_send_to_user_reports_gone_and_failed(dynamodb: Any, table_name: str) -> None:
    """Gone connections are reported and deleted; failed ones are reported with the reason, kept."""
    _store(dynamodb, table_name, "sub-alice", "live", "gone", "busy", "unreachable")
    management = ScriptedManagement(
        {
            "gone": _error("GoneException", 410),
            "busy": _error("LimitExceededException", 429),
            "unreachable": EndpointConnectionError(endpoint_url=ENDPOINT),
        }
    )

    report = send_to_user(
        "sub-alice",
        "hi",
        table_name=table_name,
        endpoint_url=ENDPOINT,
        dynamodb=dynamodb,
        management=management,
    )

    assert report == DeliveryReport(
        delivered=["live"],
        gone=["gone"],
        failed={"busy": "LimitExceededException", "unreachable": "EndpointConnectionError"},
    )
    assert report.attempted == 4
    assert _stored_ids(dynamodb, table_name) == {"live", "busy", "unreachable"}


def test_send_to_user_respects_the_concurrency_bound(dynamodb: Any, table_name: str) -> None:
    """No more than `max_concurrency` posts are ever in flight at once."""
    bound = 3
    _store(dynamodb, table_name, "sub-alice", *(f"c{n}" for n in range(12)))
    lock = threading.Lock()
    bound_reached = threading.Event()
    in_flight = 0
    most = 0

    class HoldingManagement:
        # Each post waits until `bound` posts are in flight at once: an unbounded sender would
        # overshoot while they wait, a bounded one cannot.
        def post_to_connection(self, *, ConnectionId: str, Data: bytes) -> dict[str, Any]:  # noqa: N803
            nonlocal in_flight, most
            with lock:
                in_flight += 1
                most = max(most, in_flight)
                if in_flight >= bound:
                    bound_reached.set()
            assert bound_reached.wait(timeout=30), "the bound was never reached"
            with lock:
                in_flight -= 1
            return {}

    report = send_to_user(
        "sub-alice",
        "hi",
        table_name=table_name,
        endpoint_url=ENDPOINT,
        max_concurrency=bound,
        dynamodb=dynamodb,
        management=HoldingManagement(),
    )

    assert len(report.delivered) == 12
    assert most == bound


def test_send_to_user_with_no_connection_posts_nothing(dynamodb: Any, table_name: str) -> None:
    """A user with no stored connection gets an empty report."""
    management = ScriptedManagement({})

    report = send_to_user(
        "sub-nobody",
        "hi",
        table_name=table_name,
        endpoint_url=ENDPOINT,
        dynamodb=dynamodb,
        management=management,
    )

    assert report == DeliveryReport()
    assert management.posted == {}


def test_send_to_user_refuses_a_zero_bound(dynamodb: Any, table_name: str) -> None:
    """`max_concurrency` below 1 is a caller error."""
    with pytest.raises(ValueError, match="max_concurrency must be at least 1"):
        send_to_user("u", "hi", table_name=table_name, endpoint_url=ENDPOINT, max_concurrency=0)


def test_send_to_connection_delivers_with_default_clients(dynamodb: Any, table_name: str) -> None:
    """With no clients passed, the cached defaults are used; the region comes from the endpoint."""
    report = send_to_connection("c1", b"\x00raw", table_name=table_name, endpoint_url=ENDPOINT)

    assert report == DeliveryReport(delivered=["c1"])
    assert _posted() == {"c1": b"\x00raw"}
    assert sender.management_client(ENDPOINT).meta.region_name == REGION


def test_send_to_connection_forgets_a_gone_connection(dynamodb: Any, table_name: str) -> None:
    """A 410 from a real botocore client deletes the item and reports the connection gone."""
    _store(dynamodb, table_name, "sub-alice", "c1")
    management = boto3.client("apigatewaymanagementapi", endpoint_url=ENDPOINT, region_name=REGION)
    with Stubber(management) as stub:
        stub.add_client_error(
            "post_to_connection", service_error_code="GoneException", http_status_code=410
        )
        report = send_to_connection(
            "c1",
            "hi",
            table_name=table_name,
            endpoint_url=ENDPOINT,
            dynamodb=dynamodb,
            management=management,
        )

    assert report == DeliveryReport(gone=["c1"])
    assert _stored_ids(dynamodb, table_name) == set()


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("héllo", "héllo".encode()),
        (b"\xff\x00", b"\xff\x00"),
        ({"text": "✓", "n": 1}, '{"text":"✓","n":1}'.encode()),
    ],
    ids=["text", "bytes", "json"],
)
def test_payloads_are_encoded(payload: sender.Payload, expected: bytes) -> None:
    """Text is UTF-8, bytes pass through, a mapping becomes compact UTF-8 JSON."""
    assert sender.encode_payload(payload) == expected


def test_other_payload_types_are_refused() -> None:
    """A payload that is not text, bytes or a mapping is a caller error."""
    with pytest.raises(TypeError, match="payload must be str, bytes or a mapping, not list"):
        sender.encode_payload([1, 2])  # type: ignore[arg-type]


def test_connection_ids_follow_pagination(dynamodb: Any, table_name: str) -> None:
    """The index query pages until DynamoDB has no more, with one page per `page_size` items."""
    _store(dynamodb, table_name, "sub-alice", *(f"c{n}" for n in range(7)))

    found = list(connections.connection_ids_of_user(dynamodb, table_name, "sub-alice", page_size=2))

    assert sorted(found) == [f"c{n}" for n in range(7)]
