"""The embedded AWS's HTTP server: moto behind a lean HTTP/1.1 front that keeps connections,
keeping only the data it holds."""

from __future__ import annotations

import json
import socket
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from wsauth.localcloud.aws import EmbeddedAws


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAws]:
    server = EmbeddedAws()
    server.start()
    yield server
    server.stop()


def _exchange(sock: socket.socket, request: bytes) -> tuple[str, dict[str, str], bytes]:
    """Send one request and read one `Content-Length` response from the same socket."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection before answering"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (x.partition(":") for x in lines)}
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return status, headers, body


def _list_tables(host: str, body: bytes, *, chunked: bool = False) -> bytes:
    framing = (
        b"Transfer-Encoding: chunked\r\n" if chunked else b"Content-Length: %d\r\n" % len(body)
    )
    if chunked:
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    return (
        b"POST / HTTP/1.1\r\nHost: " + host.encode() + b"\r\n"
        b"X-Amz-Target: DynamoDB_20120810.ListTables\r\n"
        b"Content-Type: application/x-amz-json-1.0\r\n"
        b"Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/"
        b"aws4_request, SignedHeaders=host, Signature=00\r\n" + framing + b"\r\n" + body
    )


def test_one_connection_serves_requests_in_turn(aws: EmbeddedAws) -> None:
    """Requests on one socket are all answered (keep-alive), each with its length and a Date."""
    host = f"{aws.host}:{aws.port}"
    with socket.create_connection((aws.host, aws.port), timeout=10) as sock:
        for _ in range(3):
            status, headers, body = _exchange(sock, _list_tables(host, b"{}"))
            assert status.startswith("HTTP/1.1 200")
            assert b"TableNames" in body
            assert "date" in headers and "connection" not in headers


def test_chunked_body_is_read_whole(aws: EmbeddedAws) -> None:
    """A chunked request body reaches moto as the whole body; the connection stays usable."""
    host = f"{aws.host}:{aws.port}"
    with socket.create_connection((aws.host, aws.port), timeout=10) as sock:
        status, _, body = _exchange(sock, _list_tables(host, b'{"Limit": 5}', chunked=True))
        assert status.startswith("HTTP/1.1 200") and b"TableNames" in body
        status, _, _ = _exchange(sock, _list_tables(host, b"{}"))
        assert status.startswith("HTTP/1.1 200")


def test_connection_close_is_honoured(aws: EmbeddedAws) -> None:
    """`Connection: close` gets the same header back and the server closes the socket."""
    host = f"{aws.host}:{aws.port}"
    request = _list_tables(host, b"{}").replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
    with socket.create_connection((aws.host, aws.port), timeout=10) as sock:
        _, headers, _ = _exchange(sock, request)
        assert headers["connection"] == "close"
        assert sock.recv(1) == b""


def test_malformed_request_line_is_a_400(aws: EmbeddedAws) -> None:
    """A request line that is not `METHOD TARGET VERSION` is refused, not guessed at."""
    with socket.create_connection((aws.host, aws.port), timeout=10) as sock:
        status, headers, _ = _exchange(sock, b"NONSENSE\r\n\r\n")
        assert status.startswith("HTTP/1.1 400") and headers["connection"] == "close"


# --- moto keeps only the data it holds (its instance tracking is off here) -------------------

PAIRS = 500
"""`PutItem`/`DeleteItem` pairs, as many connects and disconnects."""


def _tracked_instances(aws: EmbeddedAws) -> int:
    """Count the model instances moto's registry holds, as its own dashboard lists them."""
    with urllib.request.urlopen(aws.endpoint + "/moto-api/data.json", timeout=10) as response:
        registry: dict[str, dict[str, list[Any]]] = json.load(response)
    return sum(len(instances) for models in registry.values() for instances in models.values())


def test_items_written_and_deleted_are_not_kept(aws: EmbeddedAws) -> None:
    """Hundreds of put/delete pairs leave moto's instance registry exactly as it was."""
    dynamodb = aws.client("dynamodb")
    table = f"connections-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "connectionId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "connectionId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    def connect_and_disconnect(count: int) -> None:
        for n in range(count):
            key = {"connectionId": {"S": f"conn-{n}"}}
            dynamodb.put_item(TableName=table, Item={**key, "userId": {"S": "x" * 36}})
            dynamodb.delete_item(TableName=table, Key=key)

    connect_and_disconnect(10)  # the table, the first items: whatever is made once
    before = _tracked_instances(aws)

    connect_and_disconnect(PAIRS)

    assert _tracked_instances(aws) == before
    assert dynamodb.scan(TableName=table)["Count"] == 0
