"""Fixtures for the component tests: Pulumi mocks (see `fakes`) and a stand-in Lambda archive."""

from __future__ import annotations

import asyncio
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pulumi_wsauth import packaging
from tests.components import fakes


@pytest.fixture(autouse=True)
def event_loop() -> Iterator[None]:
    """A current event loop for Pulumi's mock runtime (an earlier asyncio.run() leaves none)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    asyncio.set_event_loop(None)
    loop.close()


@pytest.fixture
def lambda_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Replace the archive build (pip, minutes) with a tiny zip; returns the requested platforms."""
    requested: list[tuple[str, str]] = []
    archive = tmp_path / "lambda.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("handlers/__init__.py", "")

    def fake_build(
        architecture: str = "arm64", runtime: str = "python3.13", *, cache_dir: Path | None = None
    ) -> Path:
        requested.append((architecture, runtime))
        return archive

    monkeypatch.setattr(packaging, "build_lambda_archive", fake_build)
    return requested


@pytest.fixture
def deploy(lambda_archive: list[tuple[str, str]]) -> Iterator[Callable[..., fakes.Deployment]]:
    """`fakes.run`, with the archive build replaced and the runtime reset afterwards."""
    yield fakes.run
    fakes.reset()
