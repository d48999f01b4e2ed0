"""The Lambda archive: deterministic, cached, per platform, runnable in a fresh interpreter."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from pulumi_wsauth import packaging
from pulumi_wsauth.interpreters import find_python
from pulumi_wsauth.packaging import PackagingError, build_lambda_archive
from tests.support import create_connection_table

HOST_ARCHITECTURE = "x86_64"
HOST_RUNTIME = f"python3.{sys.version_info.minor}"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the module, so each platform's archive is built once."""
    return tmp_path_factory.mktemp("lambda-cache")


@pytest.fixture(scope="module")
def host_archive(cache_dir: Path) -> Path:
    """The archive the local cloud runs on this machine."""
    return build_lambda_archive(HOST_ARCHITECTURE, HOST_RUNTIME, cache_dir=cache_dir)


def test_same_inputs_give_same_bytes(host_archive: Path, tmp_path: Path) -> None:
    """A build from an empty cache reproduces the cached archive byte for byte."""
    rebuilt = build_lambda_archive(HOST_ARCHITECTURE, HOST_RUNTIME, cache_dir=tmp_path)

    assert rebuilt != host_archive
    assert rebuilt.read_bytes() == host_archive.read_bytes()


def test_cache_hit_does_not_run_pip(
    host_archive: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, capfd
) -> None:
    """A second build with the same inputs returns the cached file without running pip."""

    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip ran on a cache hit")

    monkeypatch.setattr(packaging.subprocess, "run", no_pip)
    mtime = host_archive.stat().st_mtime_ns

    again = build_lambda_archive(HOST_ARCHITECTURE, HOST_RUNTIME, cache_dir=cache_dir)

    assert again == host_archive
    assert again.stat().st_mtime_ns == mtime
    assert "building Lambda archive" not in capfd.readouterr().err


def test_build_reports_progress_on_stderr(tmp_path: Path, capfd) -> None:
    """Running pip is announced on stderr with the platform."""
    build_lambda_archive(HOST_ARCHITECTURE, HOST_RUNTIME, cache_dir=tmp_path)

    assert (
        f"building Lambda archive for {HOST_ARCHITECTURE}/{HOST_RUNTIME}" in capfd.readouterr().err
    )


def test_cache_dir_defaults_to_environment(
    host_archive: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`WSAUTH_CACHE_DIR` chooses the cache when no directory is passed."""
    monkeypatch.setenv("WSAUTH_CACHE_DIR", str(cache_dir))

    assert build_lambda_archive(HOST_ARCHITECTURE, HOST_RUNTIME) == host_archive


def test_architectures_give_different_archives(host_archive: Path, cache_dir: Path) -> None:
    """The arm64 archive carries aarch64 binaries, the x86_64 one x86_64 binaries."""
    arm = build_lambda_archive("arm64", HOST_RUNTIME, cache_dir=cache_dir)

    assert arm.read_bytes() != host_archive.read_bytes()
    arm_binaries = [n for n in zipfile.ZipFile(arm).namelist() if n.endswith(".so")]
    host_binaries = [n for n in zipfile.ZipFile(host_archive).namelist() if n.endswith(".so")]
    assert any("aarch64" in name for name in arm_binaries)
    assert not any("x86_64" in name for name in arm_binaries)
    assert any("x86_64" in name for name in host_binaries)


def test_runtime_selects_the_python_abi(cache_dir: Path) -> None:
    """The default runtime (python3.13) gets CPython 3.13 extension modules."""
    archive = build_lambda_archive(cache_dir=cache_dir)

    names = zipfile.ZipFile(archive).namelist()
    assert "_cffi_backend.cpython-313-aarch64-linux-gnu.so" in names


def test_entries_are_normalized(host_archive: Path) -> None:
    """Entries are sorted, dated 1980-01-01, mode 0644, with no pip noise."""
    with zipfile.ZipFile(host_archive) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]

    assert names == sorted(names)
    assert "handlers/__init__.py" in names
    assert "jose/jwt.py" in names
    assert not [n for n in names if n.startswith("boto3/") or n.startswith("botocore/")]
    assert not [n for n in names if n.startswith("bin/")]
    assert not [n for n in names if n.endswith(("/RECORD", "/INSTALLER", "/direct_url.json"))]
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.external_attr >> 16 for info in infos} == {0o100644}


def test_every_source_has_bytecode_for_the_runtime(host_archive: Path) -> None:
    """Each `.py` has its unchecked-hash `.pyc` for the runtime's Python, and nothing else is
    compiled (Lambda's read-only code directory cannot cache what it compiles)."""
    tag = sys.implementation.cache_tag
    with zipfile.ZipFile(host_archive) as archive:
        names = archive.namelist()
        sources = [name for name in names if name.endswith(".py")]
        expected = {importlib.util.cache_from_source(name) for name in sources}
        compiled = {name for name in names if name.endswith(".pyc")}
        flags = {int.from_bytes(archive.read(name)[4:8], "little") for name in compiled}

    assert compiled == expected
    assert all(f"{tag}.pyc" in name for name in compiled)
    assert flags == {0b01}  # PEP 552: hash-based, not checked against the source


def test_default_runtime_bytecode_is_reproducible(tmp_path: Path) -> None:
    """Two builds for python3.13, each in a fresh process on an empty cache, match byte for byte
    (so `pulumi up` shows no change), and carry CPython 3.13 bytecode."""
    if find_python("3.13") is None:
        pytest.skip(
            "Python 3.13 (the default Lambda runtime) is not installed: put python3.13 "
            "on PATH, or install it with pyenv or uv, to test its bytecode"
        )
    built = []
    for attempt in ("first", "second"):
        completed = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from pathlib import Path; "
                "from pulumi_wsauth.packaging import build_lambda_archive; "
                "print(build_lambda_archive('arm64', 'python3.13', cache_dir=Path(sys.argv[1])))",
                str(tmp_path / attempt),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        built.append(Path(completed.stdout.strip()))

    assert built[0].read_bytes() == built[1].read_bytes()
    assert "handlers/__pycache__/authorizer.cpython-313.pyc" in zipfile.ZipFile(built[0]).namelist()


def test_without_the_runtimes_python_the_archive_has_no_bytecode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd
) -> None:
    """No interpreter of the runtime's version: said once, clearly, and the archive is built
    from sources alone."""
    monkeypatch.setattr(packaging, "find_python", lambda version: None)
    monkeypatch.setattr(packaging, "_warned_runtimes", set())

    first = build_lambda_archive(HOST_ARCHITECTURE, HOST_RUNTIME, cache_dir=tmp_path / "a")
    build_lambda_archive(HOST_ARCHITECTURE, HOST_RUNTIME, cache_dir=tmp_path / "b")

    warnings = capfd.readouterr().err.count(f"no python3.{sys.version_info.minor} found")
    assert warnings == 1
    names = zipfile.ZipFile(first).namelist()
    assert "handlers/authorizer.py" in names
    assert not [name for name in names if name.endswith(".pyc")]


def test_handler_sources_change_the_archive(
    host_archive: Path, cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A changed handler file gives a new archive that carries the change."""
    original = packaging._handlers_dir()
    changed = tmp_path / "handlers"
    changed.mkdir()
    for source in [*original.glob("*.py"), original / "requirements.txt"]:
        (changed / source.name).write_bytes(source.read_bytes())
    (changed / "__init__.py").write_text('"""changed"""\n')
    monkeypatch.setattr(packaging, "_handlers_dir", lambda: changed)

    rebuilt = build_lambda_archive(HOST_ARCHITECTURE, HOST_RUNTIME, cache_dir=cache_dir)

    assert rebuilt != host_archive
    assert zipfile.ZipFile(rebuilt).read("handlers/__init__.py") == b'"""changed"""\n'


def test_old_archives_of_a_platform_are_pruned(tmp_path: Path) -> None:
    """A build keeps the newest few archives of its platform and leaves other platforms alone."""
    prefix = f"handlers-{HOST_ARCHITECTURE}-{HOST_RUNTIME}"
    stale = [tmp_path / f"{prefix}-{n:032x}.zip" for n in range(6)]
    for age, path in enumerate(stale):
        path.write_bytes(b"old")
        os.utime(path, (1_000_000 + age, 1_000_000 + age))
    other_platform = tmp_path / "handlers-other-python3.99-0.zip"
    other_platform.write_bytes(b"other")

    built = build_lambda_archive(HOST_ARCHITECTURE, HOST_RUNTIME, cache_dir=tmp_path)

    kept = sorted(tmp_path.glob(f"{prefix}-*.zip"))
    assert built in kept
    assert sorted(set(kept) - {built}) == sorted(stale[-3:])
    assert other_platform.exists()


def test_concurrent_builds_agree(tmp_path: Path) -> None:
    """Two builds racing into one cache both return the same complete archive, no leftovers."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(build_lambda_archive, HOST_ARCHITECTURE, HOST_RUNTIME, cache_dir=tmp_path)
            for _ in range(2)
        ]
        first, second = (future.result() for future in futures)

    assert first == second
    assert zipfile.ZipFile(first).testzip() is None
    assert [path.name for path in tmp_path.iterdir()] == [first.name]


@pytest.mark.parametrize(
    ("architecture", "runtime", "message"),
    [
        ("amd64", "python3.13", "unknown Lambda architecture 'amd64': use one of arm64, x86_64"),
        ("arm64", "python3.9", "unknown Lambda runtime 'python3.9': use one of python3.11"),
    ],
)
def test_unknown_platform_is_refused(
    architecture: str, runtime: str, message: str, tmp_path: Path
) -> None:
    """An unknown architecture or runtime names the value and the allowed ones."""
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        build_lambda_archive(architecture, runtime, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_pip_failure_carries_pips_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When pip fails, the error carries pip's own message and no archive is left behind."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("this is not a requirement ===\n")
    monkeypatch.setattr(packaging, "_requirements_path", lambda: requirements)
    cache = tmp_path / "cache"

    with pytest.raises(PackagingError, match="Invalid requirement"):
        build_lambda_archive(HOST_ARCHITECTURE, HOST_RUNTIME, cache_dir=cache)
    assert list(cache.iterdir()) == []


# Runs inside the fresh interpreter: the archive first, then the interpreter's site-packages,
# as Lambda puts /var/task before /var/runtime (where boto3 lives).
_RUNNER = """
import importlib, json, sys
archive_dir, site_packages, handler_string, event = sys.argv[1:5]
sys.path.insert(0, archive_dir)
sys.path.append(site_packages)
module_name, function_name = handler_string.rsplit(".", 1)
module = importlib.import_module(module_name)
assert module.__file__.startswith(archive_dir), module.__file__
result = getattr(module, function_name)(json.loads(event), None)
import jose
assert jose.__file__.startswith(archive_dir), jose.__file__
print(json.dumps(result))
"""


def _run_from_archive(
    archive_dir: Path, handler_string: str, event: dict, env: dict[str, str]
) -> dict:
    # -I ignores PYTHON* variables and the user's site; -S skips site-packages and .pth files,
    # so nothing but the archive and the runner's explicit boto3 path is importable.
    site_packages = sysconfig.get_paths()["purelib"]
    completed = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            _RUNNER,
            str(archive_dir),
            site_packages,
            handler_string,
            json.dumps(event),
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=archive_dir,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def unpacked(host_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The host archive extracted, as Lambda extracts it to /var/task."""
    target = tmp_path_factory.mktemp("task")
    with zipfile.ZipFile(host_archive) as archive:
        archive.extractall(target)
    return target


def test_authorizer_runs_from_the_archive(unpacked: Path) -> None:
    """`handlers.authorizer.handler` loads from the archive and denies a request with no token."""
    if not (unpacked / "handlers" / "authorizer.py").is_file():
        pytest.fail("handlers/authorizer.py is not in the archive")
    event = {
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod/$connect",
        "headers": {},
        "queryStringParameters": {},
        "requestContext": {"connectionId": "c1", "routeKey": "$connect", "stage": "prod"},
    }
    env = {
        "AWS_DEFAULT_REGION": "us-east-1",
        "USER_POOL_ID": "us-east-1_example",
        "APP_CLIENT_ID": "exampleclient",
        # Never fetched: there is no token to verify. A closed port keeps it offline anyway.
        "JWKS_URL": "http://127.0.0.1:9/jwks.json",
    }

    answer = _run_from_archive(unpacked, "handlers.authorizer.handler", event, env)

    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Deny"


@pytest.fixture
def moto_dynamodb() -> Iterator[tuple[str, Any]]:
    """A moto server on a free loopback port with the connection table; (endpoint, client)."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    create_connection_table(client, "connections")
    yield endpoint, client
    server.stop()


def test_websocket_handler_runs_from_the_archive(
    unpacked: Path, moto_dynamodb: tuple[str, Any]
) -> None:
    """`handlers.websocket.handler` loads from the archive and keeps a real table in step."""
    endpoint, dynamodb = moto_dynamodb
    env = {
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        "CONNECTION_TABLE_NAME": "connections",
    }
    context = {"connectionId": "conn-1", "connectedAt": 1_700_000_000_000, "stage": "prod"}
    connect = {
        "requestContext": {
            **context,
            "routeKey": "$connect",
            "authorizer": {"principalId": "sub-1", "userId": "sub-1", "username": "alice"},
        }
    }
    disconnect = {"requestContext": {**context, "routeKey": "$disconnect"}}
    key = {"connectionId": {"S": "conn-1"}}

    connected = _run_from_archive(unpacked, "handlers.websocket.handler", connect, env)
    stored = dynamodb.get_item(TableName="connections", Key=key).get("Item")
    disconnected = _run_from_archive(unpacked, "handlers.websocket.handler", disconnect, env)

    assert connected == disconnected == {"statusCode": 200}
    assert stored is not None and stored["userId"] == {"S": "sub-1"}
    assert "Item" not in dynamodb.get_item(TableName="connections", Key=key)
