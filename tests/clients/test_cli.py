"""The `wsauth` client commands as a person runs them: real processes against the local cloud."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from wsauth.commands.smoke import STEPS
from wsauth.localcloud.testing import REPO_ROOT, CloudUser, LocalCloud, eventually

from .samples import LOCAL_OUTPUTS

COMMANDS = ("connect", "notify", "signout", "smoke", "web")
WSAUTH = (sys.executable, "-m", "wsauth")


def wsauth(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*WSAUTH, *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], command: str) -> str:
    """Exit status non-zero, and stderr one readable line (no traceback)."""
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"wsauth {command}: ")
    return lines[0]


def signed_in(command: str, outputs: Path, username: str) -> list[str]:
    """The arguments of `wsauth COMMAND` signing in as a script does (password on stdin)."""
    return [command, "--outputs", str(outputs), "--username", username, "--password-stdin"]


@pytest.fixture
def outputs_file(local_cloud: LocalCloud, tmp_path: Path) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(local_cloud.outputs))
    return path


@pytest.fixture
def user(local_cloud: LocalCloud) -> CloudUser:
    return local_cloud.create_user()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- help and outputs errors (no cloud needed) ---------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_help_explains_the_command(command: str) -> None:
    """`--help` exits 0 and shows usage, the outputs file's origin and an example."""
    result = wsauth(command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: wsauth {command}")
    assert "pulumi stack output --json" in result.stdout
    assert "examples:" in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_outputs_missing_a_key_is_one_line_naming_it(command: str, tmp_path: Path) -> None:
    """An outputs file without webSocketEndpoint: one line naming the key and the file."""
    path = tmp_path / "outputs.json"
    path.write_text(
        json.dumps({k: v for k, v in LOCAL_OUTPUTS.items() if k != "webSocketEndpoint"})
    )
    args = {
        "connect": ["--username", "ada@example.com", "--password-stdin"],
        "notify": ["--user", "some-sub", "hello"],
        "signout": ["--user", "some-sub"],
        "smoke": ["--username", "ada@example.com", "--password-stdin"],
        "web": ["--port", "0"],
    }[command]
    result = wsauth(command, "--outputs", str(path), *args, stdin="password\n")
    line = assert_one_line_error(result, command)
    assert "'webSocketEndpoint'" in line
    assert str(path) in line


@pytest.mark.parametrize(
    ("content", "expected"), [(None, "not found"), ("{not json", "is not valid JSON")]
)
def test_outputs_file_missing_or_malformed_is_one_line(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    """A missing or malformed outputs file: one readable line."""
    path = tmp_path / "outputs.json"
    if content is not None:
        path.write_text(content)
    result = wsauth("notify", "--outputs", str(path), "--user", "some-sub", "hello")
    assert expected in assert_one_line_error(result, "notify")


def test_unreachable_stack_is_one_line(tmp_path: Path) -> None:
    """Cognito not answering: "stack unreachable", naming where it was looked for."""
    endpoint = f"http://127.0.0.1:{closed_port()}"
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({**LOCAL_OUTPUTS, "awsEndpoint": endpoint}))
    result = wsauth(*signed_in("connect", path, "ada@example.com"), stdin="Some-password-1!\n")
    line = assert_one_line_error(result, "connect")
    assert f"stack unreachable: cannot reach Cognito at {endpoint}" in line


# --- against the local cloud ----------------------------------------------------------------------


@pytest.mark.e2e
def test_smoke_passes_against_the_local_cloud(outputs_file: Path, user: CloudUser) -> None:
    """Every step passes, one line each with its time; exit status 0."""
    result = wsauth(*signed_in("smoke", outputs_file, user.username), stdin=user.password + "\n")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for step in STEPS:
        [line] = [line for line in lines if f" {step} " in line]
        assert line.startswith("ok ")
        assert line.split(step)[1].split()[1] == "ms"
    assert lines[-1] == f"all {len(STEPS)} steps passed"


@pytest.mark.e2e
def test_smoke_with_a_wrong_password_fails_and_skips_the_rest(
    outputs_file: Path, user: CloudUser
) -> None:
    """Sign-in fails: its line says why, the steps that need it are skipped, exit status 1."""
    result = wsauth(*signed_in("smoke", outputs_file, user.username), stdin="Not-the-password-1!\n")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[1].startswith("FAIL  sign in")
    assert lines[1].endswith("wrong username or password")
    assert lines[2].startswith("skip  connect")
    # The 401 refusal needs no sign-in, so it still runs and passes.
    assert any(line.startswith("ok    refused without a token (401)") for line in lines)
    assert lines[-1] == f"5 of {len(STEPS)} steps did not pass"


def start_connect(outputs_file: Path, user: CloudUser) -> subprocess.Popen[str]:
    """`wsauth connect` signed in and connected (its first echo received)."""
    process = subprocess.Popen(
        [*WSAUTH, *signed_in("connect", outputs_file, user.username)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(f"{user.password}\nping\n")
    process.stdin.flush()
    assert json.loads(process.stdout.readline()) == {"message": "ping"}
    return process


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_connect_sends_lines_and_prints_the_echo(outputs_file: Path, user: CloudUser) -> None:
    """Lines after the password are sent and echoed on stdout; end of input (Ctrl-D) exits 0."""
    process = start_connect(outputs_file, user)
    assert process.stdin is not None and process.stderr is not None
    process.stdin.close()
    assert process.wait(30) == 0
    stderr = process.stderr.read()
    assert f"connected to {json.loads(outputs_file.read_text())['webSocketEndpoint']}" in stderr
    assert "Traceback" not in stderr


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_connect_exits_cleanly_on_ctrl_c(
    local_cloud: LocalCloud, outputs_file: Path, user: CloudUser
) -> None:
    """Ctrl-C closes the connection (the table forgets it) and exits 0 without a traceback."""
    process = start_connect(outputs_file, user)
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0
    assert process.stderr is not None
    assert "Traceback" not in process.stderr.read()
    eventually(lambda: local_cloud.connections_of(user) == [])


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_connect_reports_a_close_by_the_server(
    local_cloud: LocalCloud, outputs_file: Path, user: CloudUser
) -> None:
    """The gateway dropping the connection ends the command with one line and status 1."""
    process = start_connect(outputs_file, user)
    [item] = local_cloud.connections_of(user)
    local_cloud.client("apigatewaymanagementapi").delete_connection(
        ConnectionId=item["connectionId"]["S"]
    )
    assert process.wait(30) == 1
    assert process.stderr is not None
    last_line = process.stderr.read().strip().splitlines()[-1]
    assert last_line.startswith("wsauth connect: the server closed the connection (code ")


@pytest.mark.e2e
def test_connect_with_a_wrong_password_is_one_line(outputs_file: Path, user: CloudUser) -> None:
    """Wrong password: one line, exit status 1."""
    result = wsauth(
        *signed_in("connect", outputs_file, user.username), stdin="Not-the-password-1!\n"
    )
    assert assert_one_line_error(result, "connect").endswith("wrong username or password")


@pytest.mark.e2e
def test_connect_refused_handshake_is_one_line(
    local_cloud: LocalCloud, user: CloudUser, tmp_path: Path
) -> None:
    """A token for another app client of the pool signs in but is refused at the handshake (403)."""
    other_client = local_cloud.client("cognito-idp").create_user_pool_client(
        UserPoolId=local_cloud.outputs["userPoolId"],
        ClientName=f"not-the-api-client-{tmp_path.name}",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({**local_cloud.outputs, "userPoolWebClientId": other_client}))
    result = wsauth(*signed_in("connect", path, user.username), stdin=user.password + "\n")
    line = assert_one_line_error(result, "connect")
    assert "refused the connection (403" in line


@pytest.mark.e2e
def test_notify_reports_delivered_and_the_user_receives_it(
    local_cloud: LocalCloud, outputs_file: Path, user: CloudUser
) -> None:
    """notify reaches the user's open connection and says so."""

    async def scenario() -> tuple[subprocess.CompletedProcess[str], str]:
        url = local_cloud.websocket_url(local_cloud.id_token(user))
        async with connect(url) as websocket:
            result = await asyncio.to_thread(
                wsauth,
                "notify",
                "--outputs",
                str(outputs_file),
                "--user",
                user.sub,
                '{"message": "build finished"}',
            )
            received = await asyncio.wait_for(websocket.recv(), 10)
        return result, str(received)

    result, received = asyncio.run(scenario())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "delivered 1, gone 0, expired 0, failed 0"
    assert lines[1].split()[0] == "delivered"
    assert json.loads(received) == {"message": "build finished"}


@pytest.mark.e2e
def test_notify_a_user_without_connections(outputs_file: Path, user: CloudUser) -> None:
    """A user with no open connection: nothing delivered, said on stderr, exit status 0."""
    result = wsauth("notify", "--outputs", str(outputs_file), "--user", user.sub, "hello")
    assert result.returncode == 0
    assert result.stdout.strip() == "delivered 0, gone 0, expired 0, failed 0"
    assert "has no open connection" in result.stderr


def signout(outputs_file: Path, user: CloudUser) -> subprocess.CompletedProcess[str]:
    return wsauth("signout", "--outputs", str(outputs_file), "--user", user.sub)


@pytest.mark.e2e
def test_signout_closes_the_users_connection_and_says_so(
    local_cloud: LocalCloud, outputs_file: Path, user: CloudUser
) -> None:
    """The user's open socket gets {"type": "signedOut"} and is closed; the command lists it."""

    async def scenario() -> tuple[subprocess.CompletedProcess[str], str, list[str], int | None]:
        url = local_cloud.websocket_url(local_cloud.id_token(user))
        async with connect(url) as websocket:
            # `$connect` stores the item before the handshake completes.
            opened = [item["connectionId"]["S"] for item in local_cloud.connections_of(user)]
            result = await asyncio.to_thread(signout, outputs_file, user)
            received = await asyncio.wait_for(websocket.recv(), 10)
            await asyncio.wait_for(websocket.wait_closed(), 10)
        return result, str(received), opened, websocket.close_code

    result, received, [connection_id], close_code = asyncio.run(scenario())
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["closed 1 connection", f"  closed     {connection_id}"]
    assert json.loads(received) == {"type": "signedOut"}
    assert close_code == 1000  # closed by the gateway (DELETE @connections), not dropped
    eventually(lambda: local_cloud.connections_of(user) == [])


@pytest.mark.e2e
def test_signout_a_user_without_connections(outputs_file: Path, user: CloudUser) -> None:
    """A user with no open connection is still signed out: "closed 0 connections", status 0."""
    result = signout(outputs_file, user)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "closed 0 connections\n"
    assert f"user {user.sub} signed out everywhere" in result.stderr


@pytest.mark.e2e
def test_signout_an_unknown_user_is_one_line(local_cloud: LocalCloud, outputs_file: Path) -> None:
    """A SUB the user pool does not know: one line naming it and the pool, status 1."""
    unknown = "00000000-0000-4000-8000-000000000000"
    result = wsauth("signout", "--outputs", str(outputs_file), "--user", unknown)
    line = assert_one_line_error(result, "signout")
    assert line.endswith(
        f"user {unknown} not found in user pool {local_cloud.outputs['userPoolId']}"
    )


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_connect_ends_in_words_when_the_user_is_signed_out(
    outputs_file: Path, user: CloudUser
) -> None:
    """`wsauth signout` ends a running `wsauth connect`: one line saying so, status 1."""
    process = start_connect(outputs_file, user)
    result = signout(outputs_file, user)
    assert result.returncode == 0
    # `connect` hangs up on reading `signedOut`: closed all the same, not merely "gone".
    assert result.stdout.splitlines()[0] == "closed 1 connection"
    assert process.wait(30) == 1
    assert process.stderr is not None and process.stdout is not None
    assert process.stderr.read().strip().splitlines()[-1] == (
        "wsauth connect: signed out everywhere: the server closed the connection"
    )
    assert process.stdout.read() == ""  # the control message is not data


@pytest.mark.timeout(60)
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_web_serves_the_page_until_stopped(tmp_path: Path, stop: signal.Signals) -> None:
    """`wsauth web` prints the page's URL, serves its settings, exits 0 on Ctrl-C or SIGTERM."""
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(LOCAL_OUTPUTS))
    process = subprocess.Popen(
        [*WSAUTH, "web", "--outputs", str(path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    with urllib.request.urlopen(url + "config.json", timeout=10) as response:
        config = json.loads(response.read())
    assert config["webSocketEndpoint"] == LOCAL_OUTPUTS["webSocketEndpoint"]
    process.send_signal(stop)
    assert process.wait(30) == 0
