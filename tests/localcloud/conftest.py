"""The local cloud's end-to-end tests take `local_cloud` from tests/conftest.py.

`start_local_cloud` (a context manager in wsauth.localcloud.testing) starts one with other limits or
program.
"""
