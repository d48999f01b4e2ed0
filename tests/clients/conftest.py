"""Fixtures of the client tests: headless Chromium (`local_cloud` is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["browser", "page"]

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
# creates, and every text the connection status shows (some last under a second).
INSTRUMENTS = """
window.__sockets = [];
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) {
    super(...args);
    window.__sockets.push(this);
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
def page(browser: Any) -> Iterator[Any]:
    """A fresh page (its own context: no state shared between tests), instrumented.

    The test fails if the page's script throws.
    """
    context = browser.new_context(viewport={"width": 1000, "height": 720})
    page = context.new_page()
    page.add_init_script(INSTRUMENTS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"the page's script failed: {errors}"
