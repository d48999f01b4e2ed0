"""Fixtures shared by every test folder.

`local_cloud` (session scope) is one `wsauth local` on free ports for the whole run: the client,
browser and local-cloud tests all talk to the same stack instead of each starting their own.
"""

from __future__ import annotations

from wsauth.localcloud.testing import local_cloud

__all__ = ["local_cloud"]
