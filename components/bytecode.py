"""Bytecode for the Lambda archive, compiled by the runtime's own Python, byte for byte the same.

Lambda's code directory is read-only, so Python cannot cache what it compiles there: without
`.pyc` files in the archive every cold start compiles every module it imports (python-jose and
cryptography included). The `.pyc` files are compiled by an interpreter of the runtime's
version, as unchecked-hash pycs (PEP 552): they carry no source timestamp, so the same sources
give the same bytes, and an immutable archive needs no check that the source changed. One fresh
process compiles every file in a fixed order with a fixed hash seed (the order of frozenset
constants depends on it), so two builds agree.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

__all__ = ["BytecodeError", "compile_sources"]


class BytecodeError(RuntimeError):
    """The runtime's interpreter could not compile the archive's sources."""


# Runs in the target interpreter: reads [[archive name, source path], ...] on stdin, writes each
# pyc under the output folder at the archive name `cache_from_source` gives for that version.
_COMPILE = """
import importlib.util, json, os, py_compile, sys

out = sys.argv[1]
written = []
for name, source in json.load(sys.stdin):
    pyc = importlib.util.cache_from_source(name)
    target = os.path.join(out, pyc)
    try:
        py_compile.compile(
            source, cfile=target, dfile=name, doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    except py_compile.PyCompileError:
        continue  # a file this version cannot import anyway (e.g. another version's backport)
    written.append(pyc)
json.dump(written, sys.stdout)
"""


def compile_sources(python: Path, sources: dict[str, Path], out_dir: Path) -> dict[str, Path]:
    """Compile the `.py` entries of an archive with `python`.

    Args:
        python: An interpreter of the Lambda runtime's version.
        sources: Archive name → file, for every entry; only `.py` names are compiled.
        out_dir: An empty folder for the compiled files.

    Returns:
        Archive name (`pkg/__pycache__/mod.cpython-313.pyc`) → compiled file.

    Raises:
        BytecodeError: The interpreter failed as a whole.
    """
    to_compile = sorted([name, str(path)] for name, path in sources.items() if name.endswith(".py"))
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    env.pop("PYTHONOPTIMIZE", None)  # Lambda runs unoptimized: `.opt-1.pyc` would go unused
    completed = subprocess.run(
        [str(python), "-S", "-c", _COMPILE, str(out_dir)],
        input=json.dumps(to_compile),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if completed.returncode != 0:
        raise BytecodeError(f"{python} could not compile the archive:\n{completed.stderr.strip()}")
    return {name: out_dir / name for name in json.loads(completed.stdout)}
