"""The clients against a stack whose authorizer reads the token from Sec-WebSocket-Protocol.

The outputs do not say where the token goes (config `tokenSource`), so the clients find out:
the commands from the 401 a query-string token gets, the page by trying the header when the
first handshake fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from wsauth.commands.smoke import STEPS
from wsauth.localcloud.testing import REPO_ROOT, LocalCloud, start_local_cloud

pytestmark = pytest.mark.e2e

PROGRAM = REPO_ROOT / "tests" / "localcloud" / "programs" / "protocol_token"


@pytest.fixture(scope="module")
def protocol_cloud() -> Iterator[LocalCloud]:
    with start_local_cloud(program_dir=PROGRAM) as cloud:
        yield cloud


def test_smoke_finds_the_header_token_source(protocol_cloud: LocalCloud, tmp_path: Path) -> None:
    """Every step passes; the forged token is refused (403) where the real one was accepted."""
    user = protocol_cloud.create_user()
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(protocol_cloud.outputs))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "wsauth",
            "smoke",
            "--outputs",
            str(outputs),
            "--username",
            user.username,
            "--password-stdin",
        ],
        input=user.password + "\n",
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line for line in lines if " connect " in line][0].endswith(
        "token in the Sec-WebSocket-Protocol header"
    )
    assert lines[-1] == f"all {len(STEPS)} steps passed"


@pytest.mark.browser
def test_page_connects_with_the_token_in_the_header(page: Any, protocol_cloud: LocalCloud) -> None:
    """The page ends up connected, with the token as a subprotocol and not in the URL."""
    user = protocol_cloud.create_user()
    page.goto(protocol_cloud.outputs["webPage"])
    page.get_by_label("Email", exact=True).fill(user.username)
    page.get_by_label("Password", exact=True).fill(user.password)
    page.get_by_label("Password", exact=True).press("Enter")
    expect(page.locator("#status")).to_have_text("connected")
    socket = page.evaluate("(({url, protocol}) => ({url, protocol}))(window.__sockets.at(-1))")
    assert socket["protocol"] == "wsauth"
    assert "idToken" not in socket["url"]
    assert page.evaluate("window.__sockets.filter((s) => s.readyState <= 1).length") == 1

    page.get_by_label("Message").fill("through the header")
    page.get_by_label("Message").press("Enter")
    expect(page.locator("#messages li .text").first).to_have_text("through the header")
