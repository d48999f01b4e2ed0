"""Lambda functions (run later by the worker pool), their invoke permissions, and event source
mappings on DynamoDB streams (run by the stream poller, `streams.py`)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pulumi

from wsauth.localcloud.event_filters import FilterError, parse_filters
from wsauth.localcloud.lambdas import FunctionSpec, unpack_archive
from wsauth.localcloud.permissions import InvokePermission
from wsauth.localcloud.realizers.base import (
    ACCOUNT_ID,
    Creator,
    RealizeContext,
    Realized,
    RealizeError,
    ServiceRealizer,
    auto_name,
    machine_architecture,
)
from wsauth.localcloud.streams import StreamMappingSpec

__all__ = ["LambdaRealizer", "function_name_of"]

_SOURCE_KINDS = {
    "sqs": "an SQS queue",
    "kinesis": "a Kinesis stream",
    "kafka": "an Amazon MSK (Kafka) cluster",
    "mq": "an Amazon MQ broker",
    "rds": "a DocumentDB change stream",
    "docdb": "a DocumentDB change stream",
}
"""What an event source ARN names, by its service, for the refusal of non-DynamoDB sources."""


def function_name_of(function: str) -> str:
    """Return the function's name from a name, an ARN or a qualified ARN (Lambda takes all)."""
    if function.startswith("arn:"):
        return function.split(":function:", 1)[-1].split(":", 1)[0]
    return function


class LambdaRealizer(ServiceRealizer):
    """`aws.lambda_.Function` as a `FunctionSpec`, `aws.lambda_.Permission` as an
    `InvokePermission` (the gateway and the scheduler enforce them), and
    `aws.lambda_.EventSourceMapping` on a DynamoDB stream as a `StreamMappingSpec`."""

    service = "lambda"

    def __init__(self, context: RealizeContext) -> None:
        super().__init__(context)
        self.functions: dict[str, FunctionSpec] = {}
        self.permissions: list[InvokePermission] = []
        self._function_arns: dict[str, str] = {}  # arn → name
        self._mappings: list[StreamMappingSpec] = []  # function as declared (name or ARN)

    def creators(self) -> Mapping[str, Creator]:
        return {
            "aws:lambda/function:Function": self._function,
            "aws:lambda/permission:Permission": self._permission,
            "aws:lambda/eventSourceMapping:EventSourceMapping": self._event_source_mapping,
        }

    def function_for_arn(self, arn: str) -> str | None:
        """Return the name of this program's function with this ARN (`:$LATEST` or not)."""
        return self._function_arns.get(arn.removesuffix(":$LATEST"))

    def _function(self, name: str, inputs: dict[str, Any]) -> Realized:
        function_name = inputs.get("name") or auto_name(name)
        runtime = inputs.get("runtime") or ""
        if not runtime.startswith("python3."):
            raise RealizeError(f"runtime {runtime!r}: the local cloud runs Python functions only")
        expected = f"python3.{sys.version_info.minor}"
        if runtime != expected:
            raise RealizeError(
                f"runtime {runtime!r}: the local cloud runs this interpreter's {expected}; "
                f"take the runtime from the config key lambdaRuntime, which the local stack "
                f"sets to {expected} (as this project's __main__.py does)"
            )
        # Lambda's default is x86_64; an archive for the other one holds wheels that won't load.
        architecture = (inputs.get("architectures") or ["x86_64"])[0]
        if architecture != machine_architecture():
            raise RealizeError(
                f"architecture {architecture!r}: this machine runs {machine_architecture()}; "
                f"take the architecture from the config key lambdaArchitecture, which the local "
                f"stack sets to {machine_architecture()} (as this project's __main__.py does)"
            )
        handler = inputs.get("handler")
        if not handler:
            raise RealizeError("no handler string")
        code_dir = self._code_dir(inputs.get("code"))
        arn = f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{function_name}"
        environment = (inputs.get("environment") or {}).get("variables") or {}
        self.functions[function_name] = FunctionSpec(
            name=function_name,
            handler=handler,
            code_dir=code_dir,
            timeout_seconds=float(inputs.get("timeout") or 3),
            memory_mb=int(inputs.get("memorySize") or 128),
            arn=arn,
            environment={key: str(value) for key, value in environment.items()},
        )
        self._function_arns[arn] = function_name
        invoke_arn = (
            f"arn:aws:apigateway:{self.region}:lambda:path/2015-03-31/functions/{arn}/invocations"
        )
        return function_name, {
            **inputs,
            "id": function_name,
            "name": function_name,
            "arn": arn,
            "invokeArn": invoke_arn,
            "qualifiedArn": f"{arn}:$LATEST",
            "qualifiedInvokeArn": invoke_arn.replace(arn, f"{arn}:$LATEST"),
            "version": "$LATEST",
            "timeout": inputs.get("timeout") or 3,
            "memorySize": inputs.get("memorySize") or 128,
        }

    def _code_dir(self, code: Any) -> Path:
        if isinstance(code, pulumi.FileArchive):
            path = Path(code.path)
            if not path.is_absolute():
                path = self.context.program_dir / path
            if path.is_dir():
                return path
            if path.suffix in (".zip", ".jar") and path.is_file():
                return unpack_archive(path, self.context.unpack_dir)
            raise RealizeError(f"code archive {path} is not a zip file or a directory")
        raise RealizeError(
            f"code of type {type(code).__name__}: the local cloud runs a FileArchive (zip or "
            "directory)"
        )

    def _permission(self, name: str, inputs: dict[str, Any]) -> Realized:
        self.permissions.append(
            InvokePermission(
                function_name=function_name_of(str(inputs.get("function") or "")),
                action=str(inputs.get("action") or ""),
                principal=str(inputs.get("principal") or ""),
                source_arn=inputs.get("sourceArn") or None,
            )
        )
        statement_id = inputs.get("statementId") or auto_name(name)
        return statement_id, {**inputs, "id": statement_id, "statementId": statement_id}

    # --- event source mappings ----------------------------------------------------------------

    def _event_source_mapping(self, name: str, inputs: dict[str, Any]) -> Realized:
        source = str(inputs.get("eventSourceArn") or "")
        table_name = self._stream_table(source, inputs)
        function = str(inputs.get("functionName") or "")
        if not function:
            raise RealizeError("an event source mapping needs a function_name")
        position = inputs.get("startingPosition")
        if position not in ("LATEST", "TRIM_HORIZON"):
            raise RealizeError(
                f"starting_position {position!r}: a DynamoDB stream mapping starts at LATEST or "
                "TRIM_HORIZON (Lambda requires one)"
            )
        batch_size = _whole(inputs, "batchSize", 100, 1, 10_000)
        window = _whole(inputs, "maximumBatchingWindowInSeconds", 0, 0, 300)
        retries = _whole(inputs, "maximumRetryAttempts", -1, -1, 10_000)
        try:
            filters = parse_filters(inputs.get("filterCriteria"))
        except FilterError as error:
            raise RealizeError(str(error)) from None
        enabled = inputs.get("enabled") is not False
        mapping_id = str(uuid.uuid4())
        self._mappings.append(
            StreamMappingSpec(
                name=name,
                uuid=mapping_id,
                function_name=function,
                event_source_arn=source,
                table_name=table_name,
                starting_position=str(position),
                batch_size=batch_size,
                batching_window_seconds=float(window),
                filters=filters,
                enabled=enabled,
                maximum_retry_attempts=retries,
                not_applied=_not_applied(inputs),
            )
        )
        function_arn = (
            function
            if function.startswith("arn:")
            else f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{function}"
        )
        return mapping_id, {
            "batchSize": batch_size,
            "maximumBatchingWindowInSeconds": window,
            "maximumRetryAttempts": retries,
            "maximumRecordAgeInSeconds": -1,
            "parallelizationFactor": 1,
            "bisectBatchOnFunctionError": False,
            "tumblingWindowInSeconds": 0,
            "functionResponseTypes": [],
            **inputs,
            "id": mapping_id,
            "uuid": mapping_id,
            "arn": f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:event-source-mapping:{mapping_id}",
            "functionArn": function_arn,
            "enabled": enabled,
            "state": "Enabled" if enabled else "Disabled",
            "stateTransitionReason": "User action",
            "lastModified": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "lastProcessingResult": "No records processed",
            "tagsAll": inputs.get("tags") or {},
        }

    def _stream_table(self, source: str, inputs: Mapping[str, Any]) -> str:
        """The name of the program's table whose stream `source` is.

        Raises:
            RealizeError: Not a DynamoDB stream (the local cloud runs no other source), or not
                the current stream of a table of this program.
        """
        only = "the local cloud runs event source mappings on DynamoDB streams only"
        if not source:
            kind = (
                "a self-managed Kafka cluster"
                if inputs.get("selfManagedEventSource")
                else "no event_source_arn"
            )
            raise RealizeError(f"event source: {kind}; {only}")
        parts = source.split(":", 5)
        service = parts[2] if len(parts) == 6 and parts[0] == "arn" else ""
        if service != "dynamodb" or "/stream/" not in parts[5]:
            kind = _SOURCE_KINDS.get(service, f"a {service or 'non-AWS'} resource")
            if service == "dynamodb":
                kind = "a DynamoDB table, not its stream (use the table's stream_arn)"
            raise RealizeError(f"event source {source}: {kind}; {only}")
        region, resource = parts[3], parts[5]
        table_name = resource.removeprefix("table/").split("/stream/", 1)[0]
        if region != self.region:
            raise RealizeError(
                f"event source {source}: a stream in {region}, not the stack's {self.region} "
                "(a mapping reads a stream of its own region)"
            )
        dynamodb = self.context.client("dynamodb")
        try:
            table = dynamodb.describe_table(TableName=table_name)["Table"]
        except dynamodb.exceptions.ResourceNotFoundException:
            raise RealizeError(
                f"event source {source}: no table {table_name!r} in this program"
            ) from None
        if table.get("LatestStreamArn") != source:
            current = table.get("LatestStreamArn")
            raise RealizeError(
                f"event source {source}: not the stream of table {table_name!r} "
                + (
                    f"(its stream is {current})"
                    if current
                    else "(it has none: set stream_enabled and stream_view_type)"
                )
            )
        return table_name

    def stream_mappings(self) -> list[StreamMappingSpec]:
        """Each stream mapping with its function resolved to this program's, ordered by name.

        Raises:
            RealizeError: A mapping names a function the program does not declare.
        """
        resolved = []
        for mapping in self._mappings:
            declared = mapping.function_name
            # A name, an ARN, a partial ARN (`123456789012:function:name`), maybe qualified.
            function = declared.split(":function:", 1)[-1].split(":", 1)[0]
            if function not in self.functions:
                raise RealizeError(
                    f"event source mapping {mapping.name} names function {declared!r}, which "
                    "this program does not declare"
                )
            resolved.append(replace(mapping, function_name=function))
        return sorted(resolved, key=lambda mapping: mapping.name)


def _whole(inputs: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = inputs.get(key)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise RealizeError(f"{key} {value!r}: Lambda takes a whole number from {low} to {high}")
    return value


def _not_applied(inputs: Mapping[str, Any]) -> tuple[str, ...]:
    """The declared settings of a stream mapping the local poller does not apply."""
    found = []
    if inputs.get("bisectBatchOnFunctionError"):
        found.append("bisect_batch_on_function_error (a failed batch is retried whole)")
    if "ReportBatchItemFailures" in (inputs.get("functionResponseTypes") or []):
        found.append("ReportBatchItemFailures (a failed batch is retried whole)")
    if (inputs.get("destinationConfig") or {}).get("onFailure"):
        found.append("destination_config.on_failure (a discarded batch is only logged)")
    if (inputs.get("maximumRecordAgeInSeconds") or -1) != -1:
        found.append("maximum_record_age_in_seconds (records never expire)")
    if (inputs.get("parallelizationFactor") or 1) > 1:
        found.append("parallelization_factor (one batch at a time)")
    if inputs.get("tumblingWindowInSeconds"):
        found.append("tumbling_window_in_seconds")
    return tuple(found)
