"""The project's own program, unchanged; only this directory's `local` stack config differs."""

from __future__ import annotations

import runpy
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]

runpy.run_path(str(REPO / "__main__.py"), run_name="__main__")
