"""The page server: three static files and `/config.json`, nothing else."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from wsauth.webpage import WebPageServer, serve

from .samples import LOCAL_OUTPUTS, STACK_OUTPUTS


@pytest.fixture
def page() -> Iterator[WebPageServer]:
    server = serve(LOCAL_OUTPUTS)
    yield server
    server.close()


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_config_is_built_from_the_outputs(page: WebPageServer) -> None:
    """`/config.json` holds the endpoints the page needs; locally Cognito is awsEndpoint."""
    status, headers, body = fetch(page.url + "config.json")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {
        "region": LOCAL_OUTPUTS["region"],
        "userPoolId": LOCAL_OUTPUTS["userPoolId"],
        "userPoolWebClientId": LOCAL_OUTPUTS["userPoolWebClientId"],
        "webSocketEndpoint": LOCAL_OUTPUTS["webSocketEndpoint"],
        "cognitoEndpoint": LOCAL_OUTPUTS["awsEndpoint"],
        "local": True,
    }


def test_deployed_stack_points_the_page_at_aws_cognito() -> None:
    """Without awsEndpoint, the page calls Cognito's regional endpoint."""
    with serve(STACK_OUTPUTS) as server:
        _, _, body = fetch(server.url + "config.json")
    config = json.loads(body)
    assert config["cognitoEndpoint"] == "https://cognito-idp.eu-west-1.amazonaws.com/"
    assert config["local"] is False


@pytest.mark.parametrize(
    ("path", "content_type", "marker"),
    [
        ("", "text/html; charset=utf-8", b'<label for="email">Email</label>'),
        ("index.html", "text/html; charset=utf-8", b'<script src="app.js" defer>'),
        ("app.js", "text/javascript; charset=utf-8", b"AWSCognitoIdentityProviderService."),
        ("style.css", "text/css; charset=utf-8", b"@media"),
    ],
)
def test_static_files_are_served(
    page: WebPageServer, path: str, content_type: str, marker: bytes
) -> None:
    """The page's files come with their types."""
    status, headers, body = fetch(page.url + path)
    assert status == 200
    assert headers["Content-Type"] == content_type
    assert marker in body


@pytest.mark.parametrize(
    "path", ["favicon.ico", "../outputs.py", "%2e%2e/outputs.py", "web/app.js", "app.js/x"]
)
def test_nothing_else_is_served(page: WebPageServer, path: str) -> None:
    """Any other path, traversal attempts included, is a 404."""
    status, _, _ = fetch(page.url + path)
    assert status == 404


def test_content_security_policy_allows_only_the_stack(page: WebPageServer) -> None:
    """Scripts only from the page itself; connections only to the stack's Cognito and API."""
    _, headers, _ = fetch(page.url)
    policy = headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "connect-src 'self' http://127.0.0.1:4566 ws://127.0.0.1:8080;" in policy
    assert headers["Cache-Control"] == "no-store"


def test_close_releases_the_port() -> None:
    """After close(), the port can be bound again."""
    server = serve(LOCAL_OUTPUTS)
    port = server.port
    server.close()
    with socket.create_server(("127.0.0.1", port)):
        pass
