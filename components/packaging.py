"""The Lambda deployment archive: our Lambda code (`wsauth.handlers`, zipped as `handlers/`) and
its third-party dependencies.

One zip serves both functions (their handler strings differ). The archive is deterministic, so
`pulumi up` sees the same hash and shows no change when nothing changed, and it is cached
between runs, so a preview does not run pip. It carries bytecode for the runtime when an
interpreter of the runtime's version is on this machine (see `bytecode`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .bytecode import compile_sources
from .interpreters import find_python

__all__ = [
    "ARCHITECTURES",
    "PACKAGING_VERSION",
    "RUNTIMES",
    "PackagingError",
    "build_lambda_archive",
    "default_cache_dir",
]

PACKAGING_VERSION = "2"
"""Part of the cache key: bump it whenever the archive's layout or build rules change."""

ARCHITECTURES: dict[str, str] = {"arm64": "aarch64", "x86_64": "x86_64"}
"""Lambda architecture → the machine name used in wheel platform tags."""

# Lambda runtime → (Python version, manylinux tags its OS can load, most preferred first).
# python3.11 runs on Amazon Linux 2 (glibc 2.26); python3.12 and later on Amazon Linux 2023
# (glibc 2.34). pip does not widen `manylinux_2_X` tags by itself, so every tag is listed.
RUNTIMES: dict[str, tuple[str, tuple[str, ...]]] = {
    "python3.11": ("3.11", ("manylinux2014",)),
    "python3.12": ("3.12", ("manylinux_2_34", "manylinux_2_28", "manylinux2014")),
    "python3.13": ("3.13", ("manylinux_2_34", "manylinux_2_28", "manylinux2014")),
}

# Zip's epoch: the earliest time a zip entry can carry, so it stands for "no time".
_FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o100644  # regular file, rw-r--r--: Lambda only needs to read the code
_UNIX = 3  # zip "created by" system; fixed so the bytes do not depend on the build host

# Written by pip for its own bookkeeping; useless in Lambda and can vary between pip versions.
_PIP_NOISE = frozenset({"INSTALLER", "REQUESTED", "RECORD", "direct_url.json"})


class PackagingError(RuntimeError):
    """pip could not install the handlers' dependencies for the requested platform."""


def default_cache_dir() -> Path:
    """Return where archives are cached: `$WSAUTH_CACHE_DIR` or `~/.cache/wsauth/lambda`."""
    configured = os.environ.get("WSAUTH_CACHE_DIR")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "wsauth" / "lambda"


# Several stacks or branches may want different archives of one platform at once.
_ARCHIVES_KEPT_PER_PLATFORM = 4


def build_lambda_archive(
    architecture: str = "arm64",
    runtime: str = "python3.13",
    *,
    cache_dir: Path | None = None,
) -> Path:
    """Build (or reuse) the Lambda archive for one architecture and runtime.

    The archive holds the `handlers` package's `.py` files at its root and the dependencies of
    `handlers/requirements.txt` as wheels for the target platform, each `.py` with its `.pyc`
    for the runtime when `find_python` finds that version (otherwise it says so, once, and the
    archive goes without). boto3 is left out: Lambda provides it.

    Args:
        architecture: Lambda architecture, `arm64` or `x86_64`.
        runtime: Lambda runtime, one of `RUNTIMES` (e.g. `python3.13`).
        cache_dir: Where archives are kept; defaults to `default_cache_dir()`.

    Returns:
        Path of the zip; the same inputs give the same path and the same bytes.

    Raises:
        ValueError: Unknown architecture or runtime.
        PackagingError: pip failed; the message carries pip's output.
        BytecodeError: The runtime's interpreter failed to compile the sources.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"unknown Lambda architecture {architecture!r}: use one of {', '.join(ARCHITECTURES)}"
        )
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown Lambda runtime {runtime!r}: use one of {', '.join(RUNTIMES)}")

    handler_files = _handler_sources()
    requirements = _requirements_path().read_bytes()
    python = find_python(RUNTIMES[runtime][0])
    bytecode_version = python.version if python is not None else "none"
    key = _cache_key(handler_files, requirements, architecture, runtime, bytecode_version)
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    archive = cache / f"handlers-{architecture}-{runtime}-{key[:32]}.zip"
    if archive.is_file():
        return archive

    cache.mkdir(parents=True, exist_ok=True)
    print(f"building Lambda archive for {architecture}/{runtime} …", file=sys.stderr, flush=True)
    # Build beside the final path and rename: another process may build the same archive at
    # the same time; both write identical bytes and `os.replace` is atomic, so readers never
    # see a partial zip.
    with tempfile.TemporaryDirectory(dir=cache, prefix=".build-") as build_dir:
        site = Path(build_dir) / "site"
        _pip_install(_requirements_path(), site, architecture, runtime)
        entries = dict(_dependency_files(site))
        for name, path in handler_files.items():
            entries[f"handlers/{name}"] = path
        if python is not None:
            entries.update(compile_sources(python.path, entries, Path(build_dir) / "bytecode"))
        else:
            _warn_no_bytecode(runtime)
        partial = Path(build_dir) / "archive.zip"
        _write_zip(partial, entries)
        os.replace(partial, archive)
    _prune(cache, architecture, runtime, keep=archive)
    return archive


_warned_runtimes: set[str] = set()


def _warn_no_bytecode(runtime: str) -> None:
    if runtime in _warned_runtimes:
        return
    _warned_runtimes.add(runtime)
    version = RUNTIMES[runtime][0]
    print(
        f"warning: no python{version} found (on PATH, under pyenv or uv), so the {runtime} Lambda "
        f"archive carries no bytecode and every cold start compiles its modules (~2x slower). "
        f"Install Python {version} and deploy again.",
        file=sys.stderr,
        flush=True,
    )


def _prune(cache: Path, architecture: str, runtime: str, *, keep: Path) -> None:
    """Drop all but the newest few archives of one platform: each handler change adds ~5 MB.

    A pruned archive is only a cache miss later: its name is a hash of its inputs, so the same
    sources rebuild the same bytes.
    """
    older = sorted(
        (path for path in cache.glob(f"handlers-{architecture}-{runtime}-*.zip") if path != keep),
        key=lambda path: path.stat().st_mtime,
        reverse=True,
    )
    for path in older[_ARCHIVES_KEPT_PER_PLATFORM - 1 :]:
        path.unlink(missing_ok=True)


def _handlers_dir() -> Path:
    # Found by our own import name, never by the generic `handlers`: a consumer's folder of that
    # name would be zipped as our Lambda code. find_spec runs none of the handler code.
    spec = importlib.util.find_spec("wsauth.handlers")
    if spec is None or not spec.submodule_search_locations:
        raise PackagingError("the wsauth.handlers package is not installed: pip install wsauth")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def _requirements_path() -> Path:
    return _handlers_dir() / "requirements.txt"


def _handler_sources() -> dict[str, Path]:
    """Return the package's `.py` files keyed by their POSIX path relative to the package."""
    root = _handlers_dir()
    return {
        path.relative_to(root).as_posix(): path
        for path in sorted(root.rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def _cache_key(
    handler_files: dict[str, Path],
    requirements: bytes,
    architecture: str,
    runtime: str,
    bytecode_version: str,
) -> str:
    digest = hashlib.sha256()
    for part in (PACKAGING_VERSION, architecture, runtime, bytecode_version):
        digest.update(part.encode() + b"\0")
    digest.update(hashlib.sha256(requirements).digest())
    for name in sorted(handler_files):
        digest.update(name.encode() + b"\0")
        digest.update(hashlib.sha256(handler_files[name].read_bytes()).digest())
    return digest.hexdigest()


def _pip_install(requirements: Path, target: Path, architecture: str, runtime: str) -> None:
    python_version, manylinux_tags = RUNTIMES[runtime]
    machine = ARCHITECTURES[architecture]
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        "--no-compile",  # .pyc would be for this interpreter; `bytecode` compiles for Lambda's
        "--target",
        str(target),
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        "--only-binary=:all:",
        "--requirement",
        str(requirements),
    ]
    for tag in manylinux_tags:
        command += ["--platform", f"{tag}_{machine}"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        raise PackagingError(
            f"pip could not install {requirements} for {architecture}/{runtime}:\n{output}"
        )


def _dependency_files(site: Path) -> list[tuple[str, Path]]:
    """Return the installed dependencies' files worth shipping, keyed by archive name."""
    files = []
    for path in sorted(site.rglob("*")):
        if not path.is_file():
            continue
        relative = path.relative_to(site)
        top = relative.parts[0]
        # `bin/` holds console scripts whose shebang names this machine's interpreter.
        if top == "bin" or "__pycache__" in relative.parts or path.suffix == ".pyc":
            continue
        if top.endswith(".dist-info") and relative.name in _PIP_NOISE:
            continue
        files.append((relative.as_posix(), path))
    return files


def _write_zip(destination: Path, entries: dict[str, Path]) -> None:
    with zipfile.ZipFile(destination, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE_TIME)
            info.create_system = _UNIX
            info.external_attr = _FILE_MODE << 16
            archive.writestr(info, entries[name].read_bytes(), zipfile.ZIP_DEFLATED, 9)
