"""The project's own program, unchanged; only this directory's `local` stack config differs."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(REPO))  # the components, as an installed project would have them

runpy.run_path(str(REPO / "__main__.py"), run_name="__main__")
