"""Fixtures of the local cloud's end-to-end tests; other test packages import them the same way.

`local_cloud` (session): `wsauth local` on free ports with AWS's limits, the project's program.
`start_local_cloud` (a context manager, not a fixture) starts one with other limits or program.
"""

from __future__ import annotations

from localcloud.testing import local_cloud

__all__ = ["local_cloud"]
