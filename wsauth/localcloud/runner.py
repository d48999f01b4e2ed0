"""Start and stop the whole local cloud: moto, the realized program, workers, gateway, web page.

Order matters: moto first (the program's resources are created in it), then the program (it
tells us the APIs, functions, schedules and stream mappings), then a gateway per API (its port
goes into the workers' environment and the outputs), then the schedules, the stream mappings and
the web page (it needs the outputs). The outputs file is written last, atomically: its existence
means "ready". Stopping reverses the order: the stream mappings and the schedules stop first, and
`$disconnect` still runs while the workers and moto are up; the metrics the workers printed last
are published before moto stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from wsauth.localcloud.spec import Limits

__all__ = [
    "LocalCloudError",
    "LocalOptions",
    "api_ports",
    "format_outputs",
    "localize",
    "run_local",
    "write_outputs",
]

log = logging.getLogger("wsauth.localcloud")


class LocalCloudError(Exception):
    """A failure to report in one line (port taken, program failed)."""


@dataclass
class LocalOptions:
    """What `wsauth local` was asked for."""

    program_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    """The gateway's port; the web page takes port+1 and moto port+2, a second API port+3, a
    third port+4, … (all free ports when 0)."""
    web_port: int | None = None
    aws_port: int | None = None
    outputs_file: Path | None = None
    limits: Limits = field(default_factory=Limits)
    max_workers: int | None = None
    """Concurrent executions per function (`default_max_workers()` when None)."""
    web_page: bool = True
    sweep_interval_seconds: float | None = None
    """When given, every `rate(...)` schedule runs this often instead of as declared (tests)."""


def format_outputs(outputs: Mapping[str, Any]) -> str:
    """Render outputs as `pulumi up` prints them: `Outputs:` and one indented line each."""
    width = max((len(key) for key in outputs), default=0)
    lines = ["Outputs:"]
    for key in sorted(outputs):
        lines.append(f"    {key + ':':<{width + 1}} {json.dumps(outputs[key])}")
    return "\n".join(lines)


def write_outputs(path: Path, outputs: Mapping[str, Any]) -> None:
    """Write outputs as one JSON object, atomically (readers never see a partial file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(dict(outputs), stream, indent=2, sort_keys=True)
            stream.write("\n")
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        raise


def _ensure_port_free(host: str, port: int, what: str) -> None:
    """Fail in one line, before seconds of setup, when a fixed port is already taken."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise LocalCloudError(_port_message(host, port, what, error)) from error


def _port_message(host: str, port: int, what: str, error: OSError) -> str:
    if error.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} ({what}) is already in use; stop what holds it or pass "
            "--port (the web page uses PORT+1 and the AWS endpoint PORT+2)"
        )
    return f"cannot listen on {host}:{port} ({what}): {error.strerror or error}"


def _ports(options: LocalOptions) -> tuple[int, int, int]:
    if options.port == 0:
        return 0, options.web_port or 0, options.aws_port or 0
    web = options.web_port if options.web_port is not None else options.port + 1
    aws = options.aws_port if options.aws_port is not None else options.port + 2
    return options.port, web, aws


def _lambda_environment(region: str, aws_endpoint: str) -> dict[str, str]:
    """What Lambda sets in every function, pointed at the embedded services."""
    from wsauth.localcloud.aws import FAKE_CREDENTIALS

    return {
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        **FAKE_CREDENTIALS,
        # boto3 ≥ 1.28 reads per-service endpoints from these (named after the service's id,
        # "Cognito Identity Provider"), so handlers need no local code.
        "AWS_ENDPOINT_URL_DYNAMODB": aws_endpoint,
        "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": aws_endpoint,
        "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER": aws_endpoint,
        # The authorizer's own: where the pool's JWKS is served (no AWS SDK reads this one).
        "AWS_ENDPOINT_URL_COGNITO_IDP": aws_endpoint,
    }


def run_local(options: LocalOptions, *, out: TextIO | None = None) -> int:
    """Run the local cloud until SIGINT or SIGTERM.

    Args:
        options: Program, ports, outputs file and limits.
        out: Where the outputs are printed (stdout by default).

    Returns:
        The exit status (0 after a clean stop).

    Raises:
        LocalCloudError: A port is taken, or the program cannot be realized.
    """
    from wsauth.localcloud.aws import EmbeddedAws
    from wsauth.localcloud.realize import (
        RealizeError,
        describe_recorded,
        local_config,
        realize_program,
    )

    out = out or sys.stdout
    began = time.perf_counter()
    program_dir = options.program_dir.resolve()
    if not (program_dir / "Pulumi.yaml").is_file():
        raise LocalCloudError(f"no Pulumi.yaml in {program_dir}: run from the project or --program")
    gateway_port, web_port, aws_port = _ports(options)
    _ensure_port_free(options.host, gateway_port, "gateway")
    if options.web_page:
        _ensure_port_free(options.host, web_port, "web page")

    try:
        region = local_config(program_dir)["aws:region"]
    except RealizeError as error:
        raise LocalCloudError(str(error)) from error
    aws = EmbeddedAws(options.host, aws_port, region=region)
    try:
        aws.start()
    except OSError as error:
        raise LocalCloudError(
            _port_message(options.host, aws_port, "AWS endpoint", error)
        ) from None
    try:
        log.info("AWS endpoint (moto) at %s, region %s", aws.endpoint, region)
        unpack_dir = Path(tempfile.gettempdir()) / f"wsauth-local-{os.getuid()}" / "lambda"
        try:
            realized = realize_program(
                program_dir, aws, unpack_dir=unpack_dir, limits=options.limits
            )
        except RealizeError as error:
            raise LocalCloudError(str(error)) from None
        log.info(
            "realized %d resources in %.1f s",
            len(realized.resources),
            time.perf_counter() - began,
        )
        if realized.recorded:
            log.info("recorded, nothing to run: %s", describe_recorded(realized.recorded))
        return asyncio.run(_serve(options, realized, aws, web_port, began, out))
    finally:
        aws.stop()


def api_ports(port: int, count: int) -> list[int]:
    """Return the gateway port of each of `count` APIs: `port` for the first, then port+3,
    port+4, … (port+1 and port+2 are the web page's and moto's); all 0 (free) when port is 0."""
    if port == 0:
        return [0] * count
    return [port] + [port + 2 + index for index in range(1, count)]


def localize(value: Any, urls: Mapping[str, str]) -> Any:
    """Replace AWS URL prefixes by local ones in every string of `value` (nested lists and
    dicts too): an output the program derived from an API's endpoint then points here."""
    if isinstance(value, str):
        for aws_url, local_url in urls.items():
            value = value.replace(aws_url, local_url)
        return value
    if isinstance(value, list):
        return [localize(item, urls) for item in value]
    if isinstance(value, dict):
        return {key: localize(item, urls) for key, item in value.items()}
    return value


async def _serve(
    options: LocalOptions, realized: Any, aws: Any, web_port: int, began: float, out: TextIO
) -> int:
    from wsauth.localcloud.aws import FAKE_CREDENTIALS
    from wsauth.localcloud.gateway import Gateway
    from wsauth.localcloud.lambdas import LambdaRuntime
    from wsauth.localcloud.metrics import MetricsPublisher
    from wsauth.localcloud.permissions import PermissionCheckingInvoker
    from wsauth.localcloud.schedules import Scheduler
    from wsauth.localcloud.streams import StreamPoller

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    # The functions' EMF lines become metrics in the embedded CloudWatch, as in Lambda.
    metrics = MetricsPublisher(lambda: aws.client("cloudwatch"))
    metrics.start()
    lambdas = LambdaRuntime(
        realized.functions,
        max_workers=options.max_workers,
        runtime_environment=_lambda_environment(realized.region, aws.endpoint),
        metrics=metrics.submit,
    )
    several = len(realized.apis) > 1
    gateways = [
        Gateway(
            api,
            PermissionCheckingInvoker(
                lambdas,
                realized.permissions,
                execution_arn=api.execution_arn,
                stage=api.stage,
                authorizer_id=api.authorizer_id,
            ),
            region=realized.region,
            host=options.host,
            port=port,
            # With several APIs, each invocation line says which one it belongs to.
            log=_invocation_log(api.name if several else None),
            # What the workers sign with: their @connections calls are verified, not just parsed.
            credentials={
                FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"]: FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
            },
        )
        for api, port in zip(
            realized.apis, api_ports(options.port, len(realized.apis)), strict=True
        )
    ]
    scheduler = Scheduler(
        realized.rules,
        lambdas,
        realized.permissions,
        interval_seconds=options.sweep_interval_seconds,
    )
    # Lambda reads a stream with the function's role: no invoke permission is involved.
    streams = StreamPoller(realized.mappings, lambdas, lambda: aws.client("dynamodbstreams"))
    web: Any = None
    wrote_outputs = False
    try:
        for gateway in gateways:
            try:
                await gateway.start()
            except OSError as error:
                raise LocalCloudError(str(error.strerror or error)) from None
        _point_functions_at_their_api(lambdas, gateways, realized.region)
        # After the functions' environments are final: a worker keeps the one it started with.
        scheduler.start()
        # Before "ready": a record written once the outputs are out reaches a LATEST mapping.
        await streams.start()
        outputs: dict[str, Any] = localize(
            dict(realized.outputs),
            _local_urls(gateways, realized.region, realized.custom_domains),
        )
        outputs.update(region=realized.region, awsEndpoint=aws.endpoint)
        if not several:
            outputs.update(
                webSocketEndpoint=gateways[0].websocket_url(),
                managementEndpoint=gateways[0].management_url(),
            )
        if options.web_page:
            web = _start_web_page(outputs, options.host, web_port)
            if web is not None:
                outputs["webPage"] = web.url

        # Before the outputs: once they are out, start-up has nothing more to say but "ready".
        _log_custom_domains(gateways, realized.custom_domains)
        # File first: whoever sees the printed outputs can rely on the file being there.
        if options.outputs_file is not None:
            write_outputs(options.outputs_file, outputs)
            wrote_outputs = True
        print(format_outputs(outputs), file=out, flush=True)
        log.info(
            "ready in %.1f s: connect to %s (Ctrl-C stops)",
            time.perf_counter() - began,
            ", ".join(gateway.websocket_url() for gateway in gateways),
        )
        await stop.wait()
        log.info("stopping")
    finally:
        if wrote_outputs and options.outputs_file is not None:
            # A stale file would tell clients a stopped cloud is ready.
            with contextlib.suppress(FileNotFoundError):
                options.outputs_file.unlink()
        # Nothing scheduled or streamed may start while the gateways and workers go away.
        await streams.close()
        await scheduler.close()
        for gateway in gateways:
            await gateway.close()
        await lambdas.close()
        # After the workers: what they printed last is published (moto stops after us).
        await asyncio.to_thread(metrics.close)
        if web is not None:
            web.close()
    return 0


def _local_urls(
    gateways: list[Any], region: str, custom_domains: Sequence[Any] = ()
) -> dict[str, str]:
    """Each API's AWS URL prefixes (`wss://…`, `https://…`) → its gateway's; a custom domain's
    `wss://{domain}[/{key}]` → the gateway's URL of the stage mapped there."""
    from wsauth.localcloud.realize import api_domain

    urls: dict[str, str] = {}
    for gateway in gateways:
        domain = api_domain(gateway.api.api_id, region)
        urls[f"wss://{domain}"] = f"ws://{gateway.domain_name}"
        urls[f"https://{domain}"] = f"http://{gateway.domain_name}"
    by_api = {gateway.api.api_id: gateway for gateway in gateways}
    # Longest first: `wss://d/chat` must be replaced before `wss://d` would take its prefix.
    for mapping in sorted(custom_domains, key=lambda spec: -len(spec.websocket_url)):
        gateway = by_api.get(mapping.api_id)
        if gateway is not None and mapping.stage == gateway.api.stage:
            urls[mapping.websocket_url] = f"ws://{gateway.domain_name}/{mapping.stage}"
    return urls


def _log_custom_domains(gateways: list[Any], custom_domains: Sequence[Any]) -> None:
    by_api = {gateway.api.api_id: gateway for gateway in gateways}
    for mapping in custom_domains:
        gateway = by_api.get(mapping.api_id)
        if gateway is not None:
            log.info(
                "custom domain %s is recorded, not served: locally %s stays at %s",
                mapping.websocket_url,
                gateway.api.name,
                gateway.websocket_url(),
            )


def _invocation_log(api_name: str | None) -> Any:
    if api_name is None:
        return lambda line: log.info("%s", line)
    return lambda line: log.info("%s %s", api_name, line)


def _point_functions_at_their_api(lambdas: Any, gateways: list[Any], region: str) -> None:
    """Give each function the `@connections` endpoint of the API it talks to.

    In AWS a handler invoked by a route builds it from the event (`https://{domainName}/
    {stage}`); here boto3 takes it from `AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI`, which is per
    function when the program has several APIs. A function no API invokes (a scheduled one) is
    told its API by the program: a `MANAGEMENT_ENDPOINT` variable holding an API's
    `https://{api}.execute-api.{region}.amazonaws.com/{stage}` gets that API's gateway, and wins
    over the routes (it is what the handler would use in AWS). Any other function gets the first
    API's.
    """
    variable = "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI"
    lambdas.runtime_environment[variable] = gateways[0].management_url()
    serving: dict[str, list[Any]] = {}
    if len(gateways) > 1:
        for gateway in gateways:
            api = gateway.api
            names = {route.function_name for route in api.routes.values()}
            if api.connect_authorizer is not None:
                names.add(api.connect_authorizer.function_name)
            for name in names:
                serving.setdefault(name, []).append(gateway)
    declared = _declared_management_endpoints(lambdas.functions, gateways, region)
    for name, own in serving.items():
        if len(own) > 1 and name not in declared:
            log.warning(
                "%s serves APIs %s; locally its @connections calls go to %s's",
                name,
                ", ".join(gateway.api.name for gateway in own),
                own[0].api.name,
            )
    targets = {name: own[0] for name, own in serving.items()} | declared
    for name, gateway in targets.items():
        spec = lambdas.functions[name]
        environment = {**spec.runtime_environment, variable: gateway.management_url()}
        lambdas.functions[name] = replace(spec, runtime_environment=environment)


def _declared_management_endpoints(
    functions: Mapping[str, Any], gateways: list[Any], region: str
) -> dict[str, Any]:
    """Functions whose `MANAGEMENT_ENDPOINT` is one API's execute-api URL → that API's gateway."""
    from wsauth.localcloud.realize import api_domain

    by_url = {
        f"https://{api_domain(gateway.api.api_id, region)}/{gateway.api.stage}": gateway
        for gateway in gateways
    }
    found = {}
    for name, spec in functions.items():
        url = str(spec.environment.get("MANAGEMENT_ENDPOINT", "")).rstrip("/")
        if url in by_url:
            found[name] = by_url[url]
    return found


def _start_web_page(outputs: Mapping[str, Any], host: str, port: int) -> Any:
    try:
        from wsauth import webpage
    except ModuleNotFoundError as error:
        if error.name != "wsauth.webpage":
            raise
        log.warning("web page not available (wsauth.webpage missing)")
        return None
    from wsauth.outputs import OutputsError

    try:
        return webpage.serve({key: str(value) for key, value in outputs.items()}, host, port)
    except OutputsError as error:
        # A program of another shape (several APIs, other output names): nothing to demo.
        log.warning("web page not served (it needs this project's stack outputs): %s", error)
        return None
    except OSError as error:
        raise LocalCloudError(_port_message(host, port, "web page", error)) from None
