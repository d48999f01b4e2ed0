"""Finding the Python that a Lambda runtime runs, on the machine that builds the archive."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

__all__ = ["Interpreter", "find_python"]


class Interpreter(NamedTuple):
    """A Python found on this machine."""

    path: Path
    version: str
    """Its full version, `3.13.0`: bytecode may differ between patch releases."""


@functools.cache
def find_python(version: str) -> Interpreter | None:
    """Return an interpreter of `version` (e.g. `3.13`), found as its user would have it.

    Looked for in order: this interpreter, `python3.13` on PATH, pyenv's versions (whose
    shims only answer for the versions pyenv has selected), uv's managed Pythons. Each
    candidate is run once to check that it is that version.

    Args:
        version: `major.minor`.

    Returns:
        The interpreter, or None when none of the places has one.
    """
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return Interpreter(Path(sys.executable), ".".join(map(str, sys.version_info[:3])))
    for candidate in _candidates(version):
        full_version = _full_version(candidate)
        if full_version is not None and full_version.rpartition(".")[0] == version:
            return Interpreter(candidate, full_version)
    return None


def _candidates(version: str) -> list[Path]:
    executable = f"python{version}"
    found = []
    on_path = shutil.which(executable)
    if on_path:
        found.append(Path(on_path))
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    uv_root = Path(
        os.environ.get("UV_PYTHON_INSTALL_DIR") or Path.home() / ".local/share/uv/python"
    )
    for pattern, root in (
        (f"{version}.*/bin/{executable}", pyenv_root / "versions"),
        (f"cpython-{version}.*/bin/{executable}", uv_root),
    ):
        # Newest patch release first: 3.13.10 after 3.13.9.
        found += sorted(root.glob(pattern), key=_patch_level, reverse=True)
    return found


def _patch_level(path: Path) -> tuple[int, ...]:
    release = path.parent.parent.name.removeprefix("cpython-").split("-")[0]
    return tuple(int(part) if part.isdigit() else -1 for part in release.split("."))


def _full_version(candidate: Path) -> str | None:
    try:
        completed = subprocess.run(
            [str(candidate), "-S", "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed.stdout.strip() if completed.returncode == 0 else None
