"""Reading a stack's outputs: the local cloud's file and `pulumi stack output --json`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wsauth.outputs import REQUIRED_KEYS, OutputsError, load_outputs

from .samples import LOCAL_OUTPUTS, STACK_OUTPUTS


def write(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_deployed_stack_outputs_use_aws_cognito(tmp_path: Path) -> None:
    """`pulumi stack output --json` is read as is; Cognito is AWS's regional endpoint."""
    outputs = load_outputs(write(tmp_path, STACK_OUTPUTS))
    assert not outputs.is_local
    assert outputs.cognito_endpoint == "https://cognito-idp.eu-west-1.amazonaws.com/"
    assert outputs.as_mapping() == STACK_OUTPUTS


def test_local_cloud_outputs_use_the_embedded_cognito(tmp_path: Path) -> None:
    """The local cloud's file adds awsEndpoint, which is where Cognito answers."""
    outputs = load_outputs(write(tmp_path, LOCAL_OUTPUTS))
    assert outputs.is_local
    assert outputs.cognito_endpoint == "http://127.0.0.1:4566"
    assert outputs.web_page == "http://127.0.0.1:8081/"
    assert outputs.as_mapping() == LOCAL_OUTPUTS


@pytest.mark.parametrize("key", REQUIRED_KEYS)
def test_missing_output_is_named_with_the_file(tmp_path: Path, key: str) -> None:
    """A missing output fails with the key's name and the file's path."""
    path = write(tmp_path, {name: value for name, value in STACK_OUTPUTS.items() if name != key})
    with pytest.raises(OutputsError) as raised:
        load_outputs(path)
    assert repr(key) in str(raised.value)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{", "is not valid JSON"),
        ("[]", "is not a JSON object"),
        ({**STACK_OUTPUTS, "userPoolId": "[secret]"}, "--show-secrets"),
        ({**STACK_OUTPUTS, "region": ""}, "'region' must be a non-empty string"),
        ({**STACK_OUTPUTS, "region": 42}, "'region' must be a non-empty string"),
        ({**STACK_OUTPUTS, "awsEndpoint": 1}, "'awsEndpoint' must be a non-empty string"),
    ],
)
def test_malformed_file_is_refused_readably(tmp_path: Path, content: object, expected: str) -> None:
    """Malformed JSON, a non-object, a hidden secret or a non-string value: one clear error."""
    with pytest.raises(OutputsError, match=expected):
        load_outputs(write(tmp_path, content))


def test_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    """A missing file names itself and the two ways to produce it."""
    with pytest.raises(OutputsError, match=r"not found .*wsauth local.*pulumi stack output"):
        load_outputs(tmp_path / "absent.json")
