"""Realize a Pulumi program locally: run it under Pulumi's mocks and create what it declares.

`Realizer` is a `pulumi.runtime.Mocks` whose `new_resource` does not fake a resource but makes
it, through the registry of service realizers (`realizers/`, one module per AWS service):
Cognito pools and clients and DynamoDB tables in the embedded moto server, Lambda functions as
`FunctionSpec`s for the worker pool, each WebSocket API as an `ApiSpec` for a gateway,
EventBridge rules as `RuleSpec`s for the scheduler, event source mappings on DynamoDB streams as
`StreamMappingSpec`s for the stream poller, permissions kept for enforcement. What has
nothing to run locally (IAM, log groups and metric filters, alarms, dashboards, SNS, ACM,
Route 53, custom domains) is *recorded*: it answers with the outputs AWS would give it and is
named in the start-up summary (`RealizedStack.recorded`). A type it cannot realize is an error
that names it: silently skipping a resource would make the local stack differ from the deployed
one without anyone noticing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import runpy
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from wsauth.localcloud.lambdas import FunctionSpec
from wsauth.localcloud.permissions import InvokePermission
from wsauth.localcloud.realizers import (
    ApiGatewayRealizer,
    EventsRealizer,
    LambdaRealizer,
    Registry,
)
from wsauth.localcloud.realizers.base import (
    ACCOUNT_ID,
    RealizeContext,
    RealizeError,
    Recorded,
    api_domain,
    describe_recorded,
    machine_architecture,
)
from wsauth.localcloud.schedules import RuleSpec
from wsauth.localcloud.spec import ApiSpec, CustomDomainSpec, Limits
from wsauth.localcloud.streams import StreamMappingSpec

__all__ = [
    "ACCOUNT_ID",
    "api_domain",
    "describe_recorded",
    "machine_architecture",
    "RealizeError",
    "Realizer",
    "RealizedStack",
    "local_config",
    "realize_program",
]


@dataclass
class RealizedStack:
    """What the program declared, made real: enough to start the gateway and the workers."""

    outputs: dict[str, Any]
    apis: list[ApiSpec]
    """Every WebSocket API, ordered by resource name (the order their ports are given in)."""
    functions: dict[str, FunctionSpec]
    region: str
    permissions: list[InvokePermission] = field(default_factory=list)
    """The functions' invoke permissions (API Gateway and EventBridge are refused without one)."""
    resources: list[tuple[str, str]] = field(default_factory=list)
    """(type, name) of every resource, in declaration order, for the summary."""
    rules: list[RuleSpec] = field(default_factory=list)
    """EventBridge rules with their targets, ordered by name (the scheduler runs them)."""
    recorded: list[Recorded] = field(default_factory=list)
    """What is only recorded (nothing runs locally), by kind, for the summary."""
    custom_domains: list[CustomDomainSpec] = field(default_factory=list)
    """Custom domain names mapped to the program's APIs (not served: the gateway's URL stands
    for them)."""
    mappings: list[StreamMappingSpec] = field(default_factory=list)
    """Event source mappings on DynamoDB streams, ordered by name (the stream poller runs
    them)."""


def local_config(program_dir: Path) -> dict[str, str]:
    """Return the `local` stack's configuration for the program in `program_dir`.

    Project defaults from `Pulumi.yaml`, then `Pulumi.local.yaml` when present; the Lambda
    architecture and runtime are always this machine's and this interpreter's, so the archive the
    components build is one the workers can run.
    """
    import yaml

    config: dict[str, str] = {"aws:region": "us-east-1"}
    project = _read_yaml(program_dir / "Pulumi.yaml")
    project_name = str(project.get("name", "project"))
    for key, value in (project.get("config") or {}).items():
        if isinstance(value, dict):
            value = value.get("value", value.get("default"))
        if value is not None:
            config[_qualify(key, project_name)] = _config_text(value)
    stack_file = program_dir / "Pulumi.local.yaml"
    if stack_file.is_file():
        stack = yaml.safe_load(stack_file.read_text()) or {}
        for key, value in (stack.get("config") or {}).items():
            config[_qualify(key, project_name)] = _config_text(value)
    config[f"{project_name}:lambdaArchitecture"] = machine_architecture()
    config[f"{project_name}:lambdaRuntime"] = f"python3.{sys.version_info.minor}"
    return config


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise RealizeError(f"no Pulumi.yaml in {path.parent}: pass --program DIR")
    loaded = yaml.safe_load(path.read_text()) or {}
    if not isinstance(loaded, dict):
        raise RealizeError(f"{path} is not a YAML mapping")
    return loaded


def _qualify(key: str, project: str) -> str:
    return key if ":" in key else f"{project}:{key}"


def _config_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _integral(value: Any) -> Any:
    """Turn whole floats back into ints: Pulumi's wire format has only floats, boto3 wants ints."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return value


class Realizer(pulumi.runtime.Mocks):
    """Pulumi mocks that create the program's resources locally.

    Args:
        aws: The started `EmbeddedAws`.
        program_dir: The Pulumi project directory (archive paths are relative to it).
        unpack_dir: Where Lambda archives are unpacked.
    """

    def __init__(self, aws: Any, program_dir: Path, unpack_dir: Path) -> None:
        self.region: str = aws.region
        self.registry = Registry(RealizeContext(aws, program_dir, unpack_dir))
        self.resources: list[tuple[str, str]] = []
        self.unsupported: list[str] = []
        self.failures: list[str] = []
        self._lock = threading.Lock()

    @property
    def lambdas(self) -> LambdaRealizer:
        """The Lambda service's realizer (functions and permissions)."""
        return self.registry.service(LambdaRealizer)

    # --- pulumi.runtime.Mocks ---------------------------------------------------------------

    def new_resource(self, args: Any) -> tuple[str | None, dict[str, Any]]:
        """Create one resource; return its id and output properties (Pulumi's wire names)."""
        # Pulumi registers resources from a thread pool; moto and our tables want one at a time.
        with self._lock:
            if args.resource_id and args.custom is None:  # `Resource.get`: read what exists
                return self._read(args.typ, args.name, args.resource_id)
            if not args.custom or args.typ.startswith("pulumi:providers:"):
                return None, {}
            self.resources.append((args.typ, args.name))
            try:
                inputs = _integral(dict(args.inputs))
                create = self.registry.creator(args.typ)
                if create is not None:
                    return create(args.name, inputs)
                self.unsupported.append(f"{args.typ} ({args.name})")
            except RealizeError as error:
                self.failures.append(f"{args.name}: {error}")
            except Exception as error:  # moto refusing an input: report it against the resource
                detail = " ".join(str(error).split())
                self.failures.append(f"{args.typ} ({args.name}): {detail}")
            return f"{args.name}-unrealized", dict(args.inputs)

    def call(self, args: Any) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        """Answer data-source invokes with this local account and region."""
        token = args.token
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            arn = f"arn:aws:iam::{ACCOUNT_ID}:user/local"
            return {"accountId": ACCOUNT_ID, "arn": arn, "userId": "local", "id": ACCOUNT_ID}, []
        if token == "aws:index/getRegion:getRegion":
            return {
                "name": self.region,
                "region": self.region,
                "id": self.region,
                "description": self.region,
                "endpoint": f"ec2.{self.region}.amazonaws.com",
            }, []
        if token == "aws:index/getPartition:getPartition":
            return {
                "partition": "aws",
                "id": "aws",
                "dnsSuffix": "amazonaws.com",
                "reverseDnsPrefix": "com.amazonaws",
            }, []
        self.unsupported.append(f"{token} (data source)")
        return {}, []

    # --- Resource.get ------------------------------------------------------------------------

    def _read(self, typ: str, name: str, resource_id: str) -> tuple[str, dict[str, Any]]:
        realizer = self.registry.realizer(typ)
        found = realizer.read(typ, name, resource_id) if realizer is not None else None
        if found is None:
            self.unsupported.append(f"{typ} ({name}, read)")
            return resource_id, {}
        return found

    # --- after the program ran --------------------------------------------------------------

    def api_specs(self, limits: Limits) -> list[ApiSpec]:
        """Assemble each WebSocket API the program declares for a gateway of its own.

        Raises:
            RealizeError: See `ApiGatewayRealizer.api_specs`.
        """
        return self.registry.service(ApiGatewayRealizer).api_specs(limits, self.lambdas)

    def rules(self) -> list[RuleSpec]:
        """Assemble the EventBridge rules with their targets.

        Raises:
            RealizeError: See `EventsRealizer.rules`.
        """
        return self.registry.service(EventsRealizer).rules(self.lambdas)

    def check(self) -> None:
        """Raise `RealizeError` naming every resource that could not be realized."""
        problems = []
        if self.unsupported:
            # Sorted: resources register from a thread pool, so arrival order varies.
            problems.append("unsupported: " + ", ".join(sorted(self.unsupported)))
        problems.extend(self.failures)
        if problems:
            raise RealizeError("cannot run this program locally; " + "; ".join(problems))


@contextmanager
def _program_context(program_dir: Path) -> Iterator[None]:
    """Run as `pulumi up` does: from the project directory, with it importable."""
    previous_cwd = os.getcwd()
    sys.path.insert(0, str(program_dir))
    os.chdir(program_dir)
    try:
        yield
    finally:
        os.chdir(previous_cwd)
        sys.path.remove(str(program_dir))


def _event_loops() -> set[asyncio.AbstractEventLoop]:
    return {obj for obj in gc.get_objects() if isinstance(obj, asyncio.AbstractEventLoop)}


def _close_program_loops(existing: set[asyncio.AbstractEventLoop]) -> None:
    """Close the event loop Pulumi ran the program on, and the loops of its executor's threads.

    Pulumi's mocks register each resource on a thread of that loop's default executor, and each
    thread makes itself a loop it never closes. Left to the garbage collector, such a loop may
    be finalized after the socket of its self-pipe, which prints a traceback; so every loop
    the program made (none of `existing`) is closed here, explicitly, while all is still open.
    """
    with contextlib.suppress(RuntimeError):
        loop = asyncio.get_event_loop_policy().get_event_loop()
        if not loop.is_running() and not loop.is_closed():
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()
            asyncio.set_event_loop(None)
    for made in _event_loops() - existing:
        if not made.is_running() and not made.is_closed():
            made.close()


def _run_main(main: Path) -> None:
    runpy.run_path(str(main), run_name="__main__")


def realize_program(
    program_dir: Path, aws: Any, *, unpack_dir: Path, limits: Limits | None = None
) -> RealizedStack:
    """Run the Pulumi program in `program_dir` under mocks that realize its resources.

    Call once per process: Pulumi's runtime settings are global.

    Args:
        program_dir: Holds `Pulumi.yaml` and `__main__.py`.
        aws: The started `EmbeddedAws`.
        unpack_dir: Where Lambda archives are unpacked.
        limits: The gateway's limits (AWS's defaults when None).

    Returns:
        The stack's outputs (resolved) and what the gateway and workers need.

    Raises:
        RealizeError: The program failed, or declares something the local cloud cannot run.
    """
    program_dir = program_dir.resolve()
    project = str(_read_yaml(program_dir / "Pulumi.yaml").get("name", "project"))
    main = program_dir / "__main__.py"
    if not main.is_file():
        raise RealizeError(f"no __main__.py in {program_dir}")
    realizer = Realizer(aws, program_dir, unpack_dir)
    pulumi.runtime.set_all_config(local_config(program_dir))
    pulumi.runtime.set_mocks(realizer, project=project, stack="local", preview=False)
    existing = _event_loops()
    try:
        return _realize(program_dir, main, realizer, limits or Limits(), aws.region)
    finally:
        # Nothing runs on the program's loops any more (the local cloud serves on its own).
        _close_program_loops(existing)


def _realize(
    program_dir: Path, main: Path, realizer: Realizer, limits: Limits, region: str
) -> RealizedStack:
    from pulumi.runtime import settings
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    with _program_context(program_dir):
        try:
            _sync_await(run_pulumi_func(lambda: _run_main(main)))
        except RealizeError:
            raise
        except Exception as error:
            raise RealizeError(f"the program failed: {type(error).__name__}: {error}") from error
    realizer.check()

    stack = settings.get_root_resource()
    declared = dict(getattr(stack, "outputs", {}) or {})

    async def resolve() -> dict[str, Any]:
        return {
            key: await pulumi.Output.from_input(value).future() for key, value in declared.items()
        }

    outputs = _sync_await(resolve())
    return RealizedStack(
        outputs=outputs,
        apis=realizer.api_specs(limits),
        functions=realizer.lambdas.functions,
        region=region,
        permissions=realizer.lambdas.permissions,
        resources=realizer.resources,
        rules=realizer.rules(),
        recorded=realizer.registry.recorded(),
        custom_domains=realizer.registry.service(ApiGatewayRealizer).custom_domains(),
        mappings=realizer.lambdas.stream_mappings(),
    )
