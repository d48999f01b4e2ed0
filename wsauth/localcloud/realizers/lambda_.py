"""Lambda functions (run later by the worker pool) and their invoke permissions."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi

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

__all__ = ["LambdaRealizer", "function_name_of"]


def function_name_of(function: str) -> str:
    """Return the function's name from a name, an ARN or a qualified ARN (Lambda takes all)."""
    if function.startswith("arn:"):
        return function.split(":function:", 1)[-1].split(":", 1)[0]
    return function


class LambdaRealizer(ServiceRealizer):
    """`aws.lambda_.Function` as a `FunctionSpec`, `aws.lambda_.Permission` as an
    `InvokePermission` (the gateway and the scheduler enforce them)."""

    service = "lambda"

    def __init__(self, context: RealizeContext) -> None:
        super().__init__(context)
        self.functions: dict[str, FunctionSpec] = {}
        self.permissions: list[InvokePermission] = []
        self._function_arns: dict[str, str] = {}  # arn → name

    def creators(self) -> Mapping[str, Creator]:
        return {
            "aws:lambda/function:Function": self._function,
            "aws:lambda/permission:Permission": self._permission,
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
