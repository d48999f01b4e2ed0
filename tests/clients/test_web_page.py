"""The demo page in headless Chromium, against the local cloud (real Cognito API, gateway, table).

Each test drives the page as a person would (labels, Enter, buttons) and checks what the person
sees, plus what the stack sees: one connection per signed-in page, none after sign-out.
"""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from wsauth.handlers.sender import send_to_user
from wsauth.localcloud.testing import REPO_ROOT, CloudUser, LocalCloud, eventually
from wsauth.webpage import serve

from .samples import LOCAL_OUTPUTS

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

ARTIFACTS = REPO_ROOT / "test-artifacts"

RECONNECTING = re.compile(r"^reconnecting in \d+ s$")


def sign_in(page: Any, cloud: LocalCloud, user: CloudUser) -> None:
    """Open the page and sign in with the keyboard only (Enter submits)."""
    page.goto(cloud.outputs["webPage"])
    page.get_by_label("Email", exact=True).fill(user.username)
    page.get_by_label("Password", exact=True).fill(user.password)
    page.get_by_label("Password", exact=True).press("Enter")


@pytest.fixture
def user(local_cloud: LocalCloud) -> CloudUser:
    return local_cloud.create_user()


@pytest.fixture
def signed_in(page: Any, local_cloud: LocalCloud, user: CloudUser) -> Iterator[Any]:
    """A page whose user is signed in and connected."""
    sign_in(page, local_cloud, user)
    expect(page.locator("#status")).to_have_text("connected")
    yield page


def open_sockets(page: Any) -> int:
    return int(page.evaluate("window.__sockets.filter((s) => s.readyState <= 1).length"))


def connection_ids(cloud: LocalCloud, user: CloudUser) -> list[str]:
    return [item["connectionId"]["S"] for item in cloud.connections_of(user)]


def test_sign_in_opens_exactly_one_connection(
    signed_in: Any, local_cloud: LocalCloud, user: CloudUser
) -> None:
    """Signed in: "connected", one socket in the browser, one item in the table."""
    page = signed_in
    expect(page.get_by_text(f"Signed in as {user.username}")).to_be_visible()
    assert open_sockets(page) == 1
    assert page.evaluate("window.__sockets.length") == 1
    assert len(connection_ids(local_cloud, user)) == 1


def test_echo_and_push_are_listed_newest_first(
    signed_in: Any, local_cloud: LocalCloud, user: CloudUser
) -> None:
    """A sent message comes back as the echo; a push through @connections shows up above it."""
    page = signed_in
    message = page.get_by_label("Message")
    message.fill("hello from the browser")
    message.press("Enter")
    received = page.locator("#messages li .text")
    expect(received.first).to_have_text("hello from the browser")
    expect(message).to_have_value("")

    report = send_to_user(
        user.sub,
        {"message": "pushed by a back-end service"},
        table_name=local_cloud.outputs["connectionTableName"],
        endpoint_url=local_cloud.outputs["managementEndpoint"],
        dynamodb=local_cloud.client("dynamodb"),
        management=local_cloud.client("apigatewaymanagementapi"),
    )
    assert len(report.delivered) == 1
    expect(received.first).to_have_text("pushed by a back-end service")
    expect(received).to_have_text(["pushed by a back-end service", "hello from the browser"])

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-page.png"))


def test_reconnects_with_backoff_after_the_gateway_drops_it(
    signed_in: Any, local_cloud: LocalCloud, user: CloudUser
) -> None:
    """@connections DELETE closes the socket; the page counts down, reconnects, and stays one."""
    page = signed_in
    [dropped] = connection_ids(local_cloud, user)
    local_cloud.client("apigatewaymanagementapi").delete_connection(ConnectionId=dropped)

    page.wait_for_function(
        "() => window.__statusLog.some((text) => /^reconnecting in \\d+ s$/.test(text))"
    )
    expect(page.locator("#status")).to_have_text("connected")
    assert open_sockets(page) == 1
    assert page.evaluate("window.__sockets.length") == 2

    def replaced() -> list[str] | None:
        ids = connection_ids(local_cloud, user)
        return ids if len(ids) == 1 and ids[0] != dropped else None

    # $disconnect and $connect write the table on their own schedule.
    eventually(replaced)

    page.get_by_label("Message").fill("still here")
    page.get_by_label("Message").press("Enter")
    expect(page.locator("#messages li .text").first).to_have_text("still here")


def test_sign_out_closes_the_connection(
    signed_in: Any, local_cloud: LocalCloud, user: CloudUser
) -> None:
    """Sign out: back to the sign-in form, the socket closed, the table forgets the connection."""
    page = signed_in
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.locator("#session-view")).to_be_hidden()
    page.wait_for_function("() => window.__sockets.every((s) => s.readyState === 3)")
    eventually(lambda: connection_ids(local_cloud, user) == [])
    # No reconnect after a deliberate close.
    assert page.evaluate("window.__sockets.length") == 1
    assert not any(RECONNECTING.match(text) for text in page.evaluate("window.__statusLog"))


def test_id_token_is_refreshed_before_it_expires(
    page: Any, local_cloud: LocalCloud, user: CloudUser
) -> None:
    """Near expiry, the refresh token buys a new ID token, which the next connection presents."""
    page.clock.install()
    sign_in(page, local_cloud, user)
    expect(page.locator("#status")).to_have_text("connected")
    first_url = page.evaluate("window.__sockets[0].url")

    # GIVEN a one-hour ID token WHEN 56 minutes pass THEN the page refreshes it (5 min ahead).
    with page.expect_request(
        lambda request: (
            request.method == "POST" and "REFRESH_TOKEN_AUTH" in (request.post_data or "")
        )
    ):
        page.clock.fast_forward("56:00")
    expect(page.locator("#status")).to_have_text("connected")

    [connection_id] = connection_ids(local_cloud, user)
    local_cloud.client("apigatewaymanagementapi").delete_connection(ConnectionId=connection_id)
    page.wait_for_function("() => window.__sockets.length === 2")
    expect(page.locator("#status")).to_have_text("connected")
    second_url = page.evaluate("window.__sockets[1].url")
    assert "idToken=" in second_url
    assert second_url != first_url


def test_sign_up_then_confirm_then_sign_in(page: Any, local_cloud: LocalCloud) -> None:
    """Sign up asks for the emailed code; once confirmed, the account signs in.

    The embedded Cognito (moto) accepts any confirmation code, so this checks the page's flow,
    not Cognito's code check.
    """
    email = f"new-{uuid.uuid4().hex[:10]}@example.com"
    password = "Fresh-account-1-password!"
    page.goto(local_cloud.outputs["webPage"])
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign up").click()

    expect(page.get_by_role("heading", name="Confirm your email")).to_be_visible()
    expect(page.locator("#confirm-hint")).to_contain_text(email)
    expect(page.locator("#confirm-hint")).to_contain_text("accepts any code")
    expect(page.get_by_role("button", name="Send a new code")).to_be_hidden()
    page.get_by_label("Confirmation code").fill("123456")
    page.get_by_label("Confirmation code").press("Enter")

    expect(page.locator("#notice")).to_contain_text("Email confirmed")
    expect(page.get_by_label("Email", exact=True)).to_have_value(email)
    expect(page.get_by_label("Password", exact=True)).to_be_focused()
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_have_text("connected")


def test_wrong_password_is_said_plainly(
    page: Any, local_cloud: LocalCloud, user: CloudUser
) -> None:
    """A wrong password: "Wrong email or password", and no connection is attempted."""
    sign_in(page, local_cloud, CloudUser(user.username, "Not-the-password-1!", user.sub))
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    expect(page.get_by_role("button", name="Sign in")).to_be_enabled()
    assert page.evaluate("window.__sockets.length") == 0


def test_unconfirmed_user_is_asked_for_the_code(page: Any, local_cloud: LocalCloud) -> None:
    """Signing in before confirming says so and offers the code step."""
    email = f"unconfirmed-{uuid.uuid4().hex[:10]}@example.com"
    password = "Unconfirmed-1-password!"
    local_cloud.client("cognito-idp").sign_up(
        ClientId=local_cloud.outputs["userPoolWebClientId"],
        Username=email,
        Password=password,
        UserAttributes=[{"Name": "email", "Value": email}],
    )
    sign_in(page, local_cloud, CloudUser(email, password, ""))
    expect(page.get_by_role("alert")).to_contain_text("not confirmed")
    expect(page.get_by_label("Confirmation code")).to_be_visible()


def test_unreachable_cognito_is_said_plainly(page: Any) -> None:
    """With Cognito down, signing in says "Server unreachable" (no local cloud needed)."""
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    outputs = {**LOCAL_OUTPUTS, "awsEndpoint": f"http://127.0.0.1:{closed_port}"}
    with serve(outputs) as server:
        page.goto(server.url)
        page.get_by_label("Email", exact=True).fill("ada@example.com")
        page.get_by_label("Password", exact=True).fill("Some-password-1!")
        page.get_by_label("Password", exact=True).press("Enter")
        expect(page.get_by_role("alert")).to_contain_text("Server unreachable")


@pytest.mark.parametrize("width", [360, 1400])
def test_layout_fits_narrow_and_wide_windows(
    signed_in: Any, width: int, local_cloud: LocalCloud
) -> None:
    """No horizontal scrolling on a phone; on a wide screen the column stays readable."""
    page = signed_in
    page.set_viewport_size({"width": width, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    box = page.get_by_label("Message").bounding_box()
    assert box is not None
    assert box["width"] >= 200
    assert page.locator("main").bounding_box()["width"] <= 720
    expect(page.get_by_role("button", name="Send")).to_be_in_viewport()
