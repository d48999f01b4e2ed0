"""Fixtures of the client tests: headless Chromium (`local_cloud` is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["browser", "new_page", "page"]

CHROMIUM = Path("/usr/bin/chromium")
# Debian's Chromium, driven by Playwright (no `playwright install`: nothing is downloaded).
# No sandbox: CI runs as root in a container; the rest keeps Chromium off the network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Test-side instruments, installed before the page's own script runs: every WebSocket the page
# creates, every frame sent and received on them (with the socket's index), and every text the
# connection status shows (some last under a second).
INSTRUMENTS = """
window.__sockets = [];
window.__sent = [];
window.__received = [];
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) {
    super(...args);
    const index = window.__sockets.push(this) - 1;
    this.addEventListener("message", (event) => {
      window.__received.push({ socket: index, data: String(event.data) });
    });
  }
  send(data) {
    window.__sent.push({ socket: window.__sockets.indexOf(this), data: String(data) });
    super.send(data);
  }
};
window.__statusLog = [];
document.addEventListener("DOMContentLoaded", () => {
  const status = document.getElementById("status");
  new MutationObserver(() => window.__statusLog.push(status.textContent)).observe(status, {
    childList: true,
    characterData: true,
    subtree: true,
  });
});
"""


# Module scope, not session: Playwright's sync API keeps an event loop running in the main
# thread while it is open, which would break every later test that calls asyncio.run().
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium for one test module."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make browser` installs Debian's chromium"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[[], Any]]:
    """Opens fresh pages, each in its own context (as another browser would: nothing shared),
    instrumented. The test fails if any page's script throws."""
    contexts: list[Any] = []
    errors: list[str] = []

    def open_page() -> Any:
        context = browser.new_context(viewport={"width": 1000, "height": 720})
        contexts.append(context)
        page = context.new_page()
        page.add_init_script(INSTRUMENTS)
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert not errors, f"the page's script failed: {errors}"


@pytest.fixture
def page(new_page: Callable[[], Any]) -> Any:
    """A fresh page (its own context: no state shared between tests), instrumented.

    The test fails if the page's script throws.
    """
    return new_page()
