"""The realizer's config for the `local` stack, and the outputs file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from wsauth.localcloud.realize import RealizeError, local_config, machine_architecture
from wsauth.localcloud.runner import format_outputs, write_outputs


def _project(tmp_path: Path, stack_config: str | None = None) -> Path:
    (tmp_path / "Pulumi.yaml").write_text(
        "name: wsauth\nruntime: python\nconfig:\n"
        "  wsauth:stageName:\n    default: beta\n"
        "  wsauth:lambdaArchitecture: arm64\n"
    )
    if stack_config is not None:
        (tmp_path / "Pulumi.local.yaml").write_text(stack_config)
    return tmp_path


def test_local_config_uses_project_defaults_then_the_local_stack(tmp_path: Path) -> None:
    """Pulumi.local.yaml overrides the project's defaults; keys get the project namespace."""
    config = local_config(
        _project(tmp_path, "config:\n  aws:region: eu-west-1\n  tokenSource: protocol\n")
    )
    assert config["aws:region"] == "eu-west-1"
    assert config["wsauth:stageName"] == "beta"
    assert config["wsauth:tokenSource"] == "protocol"


def test_local_config_always_runs_this_machines_lambda_platform(tmp_path: Path) -> None:
    """Architecture and runtime are this machine's, whatever the files say."""
    config = local_config(_project(tmp_path, "config:\n  wsauth:lambdaRuntime: python3.13\n"))
    assert config["wsauth:lambdaArchitecture"] == machine_architecture()
    assert config["wsauth:lambdaRuntime"] == f"python3.{sys.version_info.minor}"
    assert config["aws:region"] == "us-east-1"


def test_missing_project_is_a_clear_error(tmp_path: Path) -> None:
    """A directory without Pulumi.yaml is refused with a hint."""
    with pytest.raises(RealizeError, match="no Pulumi.yaml"):
        local_config(tmp_path)


def test_outputs_file_is_written_whole_and_replaced(tmp_path: Path) -> None:
    """The outputs file is one JSON object; rewriting leaves no temporary files behind."""
    target = tmp_path / "state" / "outputs.json"
    write_outputs(target, {"region": "us-east-1"})
    write_outputs(target, {"region": "eu-west-1", "webPage": "http://127.0.0.1:8081/"})
    assert json.loads(target.read_text()) == {
        "region": "eu-west-1",
        "webPage": "http://127.0.0.1:8081/",
    }
    assert [path.name for path in target.parent.iterdir()] == ["outputs.json"]


def test_outputs_are_formatted_like_pulumi() -> None:
    """`Outputs:` then one aligned, JSON-quoted line per output, sorted by name."""
    assert format_outputs({"region": "us-east-1", "awsEndpoint": "http://x"}) == (
        'Outputs:\n    awsEndpoint: "http://x"\n    region:      "us-east-1"'
    )
