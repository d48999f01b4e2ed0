"""The demo page keeps its one connection alive in-band, and ends it when the session expires.

Against the local cloud, in headless Chromium. Cognito's tokens live an hour, too long to watch
a session end; so the page's Cognito calls go through a Playwright route that hands it the real
answer with the ID token re-signed by the embedded pool's key (`wsauth.localcloud.tokens`) to
expire seconds from now. The gateway, the authorizer and the websocket function see a genuine
token of a genuine user, and enforce its expiry with their own clocks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from wsauth.client import forge_signature, unverified_claims
from wsauth.localcloud.testing import CloudUser, LocalCloud, eventually
from wsauth.localcloud.tokens import reissued

from .test_web_page import RECONNECTING, connection_ids, open_sockets, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

# Long enough for sign-in, the handshake and the refresh (the page refreshes a quarter of the
# lifetime ahead: 4 s) on a cold local cloud; short enough to watch it run out.
LIFETIME_SECONDS = 16

RefreshAnswer = Callable[[Any], None]


@pytest.fixture
def user(local_cloud: LocalCloud) -> CloudUser:
    return local_cloud.create_user()


def route_cognito(page: Any, cloud: LocalCloud, on_refresh: RefreshAnswer | None = None) -> None:
    """Route the page's Cognito calls: sign-in answers carry a short-lived ID token.

    Args:
        page: The page.
        cloud: The local cloud (its embedded Cognito answers the real calls).
        on_refresh: Answers the page's REFRESH_TOKEN_AUTH call (given its route) instead of
            passing it through.
    """
    endpoint = cloud.outputs["awsEndpoint"].rstrip("/")

    def handle(route: Any) -> None:
        request = route.request
        if request.method != "POST":
            route.continue_()
            return
        flow = json.loads(request.post_data or "{}").get("AuthFlow")
        if flow == "REFRESH_TOKEN_AUTH" and on_refresh is not None:
            on_refresh(route)
            return
        response = route.fetch()
        answer = response.json()
        result = answer.get("AuthenticationResult")
        if flow == "USER_PASSWORD_AUTH" and result:
            now = int(time.time())
            result["IdToken"] = reissued(result["IdToken"], iat=now, exp=now + LIFETIME_SECONDS)
        route.fulfill(response=response, json=answer)

    page.route(lambda url: url.startswith(endpoint), handle)


def socket_token(page: Any, index: int = 0) -> str:
    """The token the page presented in socket `index`'s handshake."""
    url = page.evaluate(f"window.__sockets[{index}].url")
    [token] = parse_qs(urlsplit(url).query)["idToken"]
    return str(token)


def control_messages(page: Any) -> list[dict[str, Any]]:
    """The server's control messages the page received, on any socket, in order."""
    received = [json.loads(item["data"]) for item in page.evaluate("window.__received")]
    return [message for message in received if isinstance(message, dict) and "type" in message]


def refresh_requests(page: Any) -> list[dict[str, Any]]:
    """The `refreshToken` messages the page sent, with the index of the socket they went on."""
    requests = []
    for item in page.evaluate("window.__sent"):
        try:
            message = json.loads(item["data"])
        except ValueError:
            continue
        if isinstance(message, dict) and message.get("action") == "refreshToken":
            requests.append({**message, "socket": item["socket"]})
    return requests


def wait_until(epoch_seconds: float) -> None:
    """Let the wall clock pass `epoch_seconds`: the server's expiry is a time, not an event."""
    time.sleep(max(0.0, epoch_seconds - time.time()))


def iso(epoch_seconds: float) -> str:
    """The instant as JavaScript's `toISOString` writes it."""
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def send(page: Any, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_label("Message").press("Enter")


def test_connection_outlives_its_first_token_on_one_socket(
    page: Any, local_cloud: LocalCloud, user: CloudUser
) -> None:
    """Before the token expires, the page sends a fresh one on the open socket; no second one."""
    route_cognito(page, local_cloud)
    sign_in(page, local_cloud, user)
    expect(page.locator("#status")).to_have_text("connected")
    first_expiry = unverified_claims(socket_token(page))["exp"]
    expect(page.locator("#expiry")).to_have_attribute("datetime", iso(first_expiry))

    # GIVEN a 16 s token WHEN 12 s pass THEN the page refreshes in-band and the server agrees.
    page.wait_for_function(
        "() => window.__received.some((item) => item.data.includes('tokenRefreshed'))",
        timeout=LIFETIME_SECONDS * 1000,
    )
    [request] = refresh_requests(page)
    assert request["socket"] == 0
    assert request["token"] != socket_token(page)
    new_expiry = unverified_claims(request["token"])["exp"]
    assert new_expiry > first_expiry
    assert control_messages(page) == [{"type": "tokenRefreshed", "expiresAt": new_expiry}]
    expect(page.locator("#expiry")).to_have_attribute("datetime", iso(new_expiry))
    [item] = local_cloud.connections_of(user)
    assert int(item["expiresAt"]["N"]) == new_expiry

    # Past the first token's expiry, the same connection still echoes.
    wait_until(first_expiry + 1)
    send(page, "after the first token expired")
    expect(page.locator("#messages li .text").first).to_have_text("after the first token expired")
    expect(page.locator("#status")).to_have_text("connected")
    assert page.evaluate("window.__sockets.length") == 1
    assert open_sockets(page) == 1
    expect(page.get_by_role("alert")).to_be_hidden()
    # Control messages are not chat messages.
    expect(page.locator("#messages li")).to_have_count(1)


def forged(route: Any) -> None:
    """Cognito's refresh answer with its ID token's signature broken: the server must refuse it."""
    response = route.fetch()
    answer = response.json()
    result = answer["AuthenticationResult"]
    result["IdToken"] = forge_signature(result["IdToken"])
    route.fulfill(response=response, json=answer)


def unreachable(route: Any) -> None:
    """Cognito does not answer the refresh: the page keeps trying, the token runs out."""
    route.abort("connectionrefused")


@pytest.mark.parametrize("on_refresh", [forged, unreachable], ids=["refused", "not-refreshed"])
def test_expired_session_returns_to_sign_in(
    page: Any, local_cloud: LocalCloud, user: CloudUser, on_refresh: RefreshAnswer
) -> None:
    """A session not extended in time ends: "Your session has expired", the sign-in view."""
    route_cognito(page, local_cloud, on_refresh)
    sign_in(page, local_cloud, user)
    expect(page.locator("#status")).to_have_text("connected")
    first_expiry = unverified_claims(socket_token(page))["exp"]

    if on_refresh is forged:
        # The refusal is said in words; the connection stays up until its old expiry.
        expect(page.get_by_role("alert")).to_have_text(
            "Your session could not be extended (the new token's signature is not valid): "
            f"it ends at {page.locator('#expiry').text_content()}.",
            timeout=LIFETIME_SECONDS * 1000,
        )
        assert control_messages(page) == [{"type": "tokenRejected", "reason": "bad_signature"}]
        expect(page.locator("#status")).to_have_text("connected")

    # A person typing after the expiry: the server says the session is over and closes.
    wait_until(first_expiry + 1)
    send(page, "too late")
    expect(page.get_by_role("alert")).to_have_text("Your session has expired: sign in again.")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.locator("#session-view")).to_be_hidden()
    expect(page.get_by_label("Email", exact=True)).to_have_value(user.username)
    assert control_messages(page)[-1] == {"type": "sessionExpired"}

    # No reconnect with the spent token: the one socket closed, the table forgets it.
    page.wait_for_function("() => window.__sockets.every((s) => s.readyState === 3)")
    assert page.evaluate("window.__sockets.length") == 1
    assert not any(RECONNECTING.match(text) for text in page.evaluate("window.__statusLog"))
    eventually(lambda: connection_ids(local_cloud, user) == [])
