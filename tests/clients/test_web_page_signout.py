"""The demo page's "Sign out everywhere", in headless Chromium against the local cloud.

Two browser contexts signed in as the same user stand for two devices: the button on one ends
the user's sessions on both (the server's `signedOut` to each connection, then the close).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from wsauth import sign_out_everywhere
from wsauth.client import unverified_claims
from wsauth.localcloud.testing import CloudUser, LocalCloud, eventually
from wsauth.webpage import serve

from .test_web_page import RECONNECTING, connection_ids, sign_in
from .test_web_page_sessions import socket_token, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SIGN_OUT_EVERYWHERE = {"action": "signOutEverywhere"}


@pytest.fixture
def user(local_cloud: LocalCloud) -> CloudUser:
    return local_cloud.create_user()


def frames(page: Any, direction: str) -> list[Any]:
    """The JSON frames the page sent or received (`__sent`, `__received`), decoded, in order."""
    decoded = []
    for item in page.evaluate(f"window.__{direction}"):
        try:
            decoded.append(json.loads(item["data"]))
        except ValueError:
            decoded.append(item["data"])
    return decoded


def assert_signed_out_for_good(page: Any, user: CloudUser) -> None:
    """The sign-in view, its one socket closed, and no reconnect."""
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.locator("#session-view")).to_be_hidden()
    expect(page.get_by_label("Email", exact=True)).to_have_value(user.username)
    page.wait_for_function("() => window.__sockets.every((s) => s.readyState === 3)")
    assert page.evaluate("window.__sockets.length") == 1
    assert not any(RECONNECTING.match(text) for text in page.evaluate("window.__statusLog"))


def test_sign_out_everywhere_ends_every_page_of_the_user(
    new_page: Callable[[], Any], local_cloud: LocalCloud, user: CloudUser
) -> None:
    """One page's "Sign out everywhere" signs out both pages; the table forgets both sockets."""
    here, elsewhere = new_page(), new_page()
    for page in (here, elsewhere):
        sign_in(page, local_cloud, user)
        expect(page.locator("#status")).to_have_text("connected")
    eventually(lambda: len(connection_ids(local_cloud, user)) == 2)

    here.get_by_role("button", name="Sign out everywhere").click()

    expect(here.locator("#notice")).to_have_text("You signed out everywhere.")
    expect(elsewhere.get_by_role("alert")).to_have_text("You were signed out everywhere.")
    for page in (here, elsewhere):
        assert_signed_out_for_good(page, user)
        assert frames(page, "received")[-1] == {"type": "signedOut"}
    assert frames(here, "sent") == [SIGN_OUT_EVERYWHERE]
    assert frames(elsewhere, "sent") == []
    eventually(lambda: connection_ids(local_cloud, user) == [])

    # The user signs in again: a session begun after the sign-out is a session like any other.
    sign_in(here, local_cloud, user)
    expect(here.locator("#status")).to_have_text("connected")
    eventually(lambda: len(connection_ids(local_cloud, user)) == 1)


def test_sign_out_everywhere_without_a_connection_is_said_plainly(
    page: Any, local_cloud: LocalCloud, user: CloudUser
) -> None:
    """Signed in but not connected: the page says it cannot sign out everywhere now."""
    # GIVEN the stack's Cognito, and a WebSocket endpoint where nothing listens.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    outputs = {**local_cloud.outputs, "webSocketEndpoint": f"ws://127.0.0.1:{closed_port}/prod"}
    with serve(outputs) as server:
        page.goto(server.url)
        page.get_by_label("Email", exact=True).fill(user.username)
        page.get_by_label("Password", exact=True).fill(user.password)
        page.get_by_label("Password", exact=True).press("Enter")
        expect(page.get_by_text(f"Signed in as {user.username}")).to_be_visible()
        expect(page.locator("#status")).not_to_have_text("connected")

        page.get_by_role("button", name="Sign out everywhere").click()

        expect(page.get_by_role("alert")).to_have_text(
            "Not connected: cannot sign out everywhere now."
        )
        expect(page.locator("#session-view")).to_be_visible()
        assert frames(page, "sent") == []


def test_page_disconnected_during_the_sign_out_ends_its_session_on_reconnect(
    new_page: Callable[[], Any], local_cloud: LocalCloud, user: CloudUser
) -> None:
    """A page that missed `signedOut` (it was reconnecting) is refused, then so is its refresh."""
    connected, away = new_page(), new_page()
    # The away page's timers run only when the test moves its clock: it stays "reconnecting"
    # for as long as the test needs.
    away.clock.install()
    sign_in(away, local_cloud, user)
    expect(away.locator("#status")).to_have_text("connected")
    [dropped] = eventually(lambda: connection_ids(local_cloud, user))
    sign_in(connected, local_cloud, user)
    expect(connected.locator("#status")).to_have_text("connected")
    local_cloud.client("apigatewaymanagementapi").delete_connection(ConnectionId=dropped)
    away.wait_for_function("() => window.__statusLog.some((text) => /^reconnecting/.test(text))")

    # GIVEN a sign-out everywhere in a later second than the sign-in (auth_time has seconds).
    wait_until(unverified_claims(socket_token(away))["auth_time"] + 1)
    sign_out_everywhere(
        user.sub,
        user_pool_id=local_cloud.outputs["userPoolId"],
        table_name=local_cloud.outputs["connectionTableName"],
        endpoint_url=local_cloud.outputs["managementEndpoint"],
        cognito=local_cloud.client("cognito-idp"),
        dynamodb=local_cloud.client("dynamodb"),
        management=local_cloud.client("apigatewaymanagementapi"),
    )
    expect(connected.get_by_role("alert")).to_have_text("You were signed out everywhere.")

    # WHEN the away page reconnects THEN its handshake is refused, and at the next attempt
    # the refresh token tells it why: the session is over.
    away.clock.fast_forward("00:02")
    away.wait_for_function("() => window.__sockets.length === 2")
    away.wait_for_function("() => window.__sockets[1].readyState === 3")
    away.clock.fast_forward("00:03")
    expect(away.get_by_role("alert")).to_have_text("Your session has ended: sign in again.")
    expect(away.get_by_role("button", name="Sign in")).to_be_visible()
    assert away.evaluate("window.__sockets.length") == 2
    assert {"type": "signedOut"} not in frames(away, "received")
    eventually(lambda: connection_ids(local_cloud, user) == [])
