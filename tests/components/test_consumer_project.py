"""A consumer's own Pulumi project, with its own `components/` and `handlers/`, uses ours.

The most common folder names in Pulumi and Lambda projects must not shadow our import names,
nor be zipped as our Lambda code: the program runs from its own directory, as `pulumi up` runs
it, under Pulumi's mocks.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.components import fakes

REPO_ROOT = Path(__file__).resolve().parents[2]

CONSUMER_PROGRAM = """
import pulumi

import components  # the consumer's own
from handlers import authorizer  # the consumer's own
from pulumi_wsauth import (
    AuthPool,
    ConnectionStore,
    SecuredWebSocketApi,
    SecuredWebSocketApiArgs,
)

pool = AuthPool("auth")
store = ConnectionStore("connections")
SecuredWebSocketApi(
    "api",
    SecuredWebSocketApiArgs(
        user_pool_id=pool.user_pool_id,
        app_client_ids=[pool.web_client_id],
        connection_table_name=store.table_name,
        connection_table_arn=store.table_arn,
        user_id_index_arn=store.user_id_index_arn,
        connection_table_stream_arn=store.stream_arn,
        expiry_index_arn=store.expiry_index_arn,
        user_pool_arn=pool.user_pool_arn,
        lambda_architecture="{architecture}",
        lambda_runtime="{runtime}",
    ),
)
pulumi.export("consumerComponents", components.OWNER)
pulumi.export("consumerAuthorizer", authorizer.handler({{}}, None))
"""

# What Pulumi's Python host does: the project directory first on sys.path, then the program.
RUNNER = """
import asyncio, importlib.util, json, runpy, sys, zipfile

spec = importlib.util.spec_from_file_location("wsauth_test_fakes", sys.argv[1])
fakes = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fakes)
asyncio.set_event_loop(asyncio.new_event_loop())
deployment = fakes.run(lambda: runpy.run_path("__main__.py", run_name="__main__"))

import pulumi_wsauth
archives = {
    resource.name: resource.inputs["code"].path
    for resource in deployment.of_type("aws:lambda/function:Function")
}
print(json.dumps({
    "outputs": {key: fakes.resolved(value) for key, value in deployment.outputs.items()},
    "pulumi_wsauth": pulumi_wsauth.__file__,
    "archives": archives,
}))
"""


@pytest.fixture
def consumer_project(tmp_path: Path) -> Path:
    """A project whose own packages are called `components` and `handlers`."""
    architecture = "arm64" if platform.machine() == "aarch64" else "x86_64"
    runtime = f"python3.{sys.version_info.minor}"
    files = {
        "Pulumi.yaml": "name: consumer\nruntime: python\n",
        "__main__.py": CONSUMER_PROGRAM.format(architecture=architecture, runtime=runtime),
        "components/__init__.py": 'OWNER = "consumer"\n',
        "handlers/__init__.py": "",
        "handlers/authorizer.py": textwrap.dedent(
            """
            def handler(event, context):
                return "the consumer's authorizer"
            """
        ),
    }
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_consumer_gets_our_components_and_our_handlers_zipped(consumer_project: Path) -> None:
    """Both names resolve to the consumer's folders for the consumer, and to ours for us."""
    completed = subprocess.run(
        [sys.executable, "-c", RUNNER, fakes.__file__],
        cwd=consumer_project,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])

    assert result["outputs"] == {
        "consumerComponents": "consumer",
        "consumerAuthorizer": "the consumer's authorizer",
    }
    assert Path(result["pulumi_wsauth"]).resolve().parent == REPO_ROOT / "components"
    assert set(result["archives"]) == {
        "api-authorizer",
        "api-websocket",
        "api-sweeper",
        "api-counter",
    }
    ours = {path.name: path.read_bytes() for path in (REPO_ROOT / "handlers").glob("*.py")}
    for archive in result["archives"].values():
        with zipfile.ZipFile(archive) as zipped:
            zipped_handlers = {
                name.removeprefix("handlers/"): zipped.read(name)
                for name in zipped.namelist()
                if name.startswith("handlers/") and name.endswith(".py")
            }
        assert zipped_handlers == ours
