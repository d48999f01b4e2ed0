"""Where moto falls short of the documented behaviour of the services it stands for, filled in
the embedded server only (the deployed path never runs this).

DynamoDB: a write is atomic per item, its condition included; moto checks a condition and
writes in separate Python steps, so two threads of the embedded server could both pass one
condition (two handshakes both under a user's connection limit). The server runs DynamoDB
requests one at a time (`aws._SignedServiceDispatch`).

Cognito:

* Admin APIs take a user's `sub` as `Username` ("If username isn't an alias attribute in your
  user pool, this value must be the sub of a local user", AdminGetUser and the other Admin*
  references); moto looks users up by username and sign-in aliases only.
* `AdminUserGlobalSignOut` and `GlobalSignOut` revoke every refresh token of the user however
  they signed in; moto compares the name the sign-out was asked with to the name each token was
  issued under, so a sign-out by `sub` (or by an alias) revoked nothing.

Memory: moto appends every model instance it ever creates (each DynamoDB item written, each
Cognito token's user, ...) to a class-wide list (`BaseModel.__new__`, `instances_tracked`),
for its dashboard (`/moto-api/data.json`) and never lets go of them: a long-running local cloud
grew by about 1.4 KB per connect/disconnect, the `PutItem`/`DeleteItem` pair, forever. A
service frees what is deleted; the embedded server creates models untracked, so its memory
follows the data it holds. The dashboard lists no instances there.
"""

from __future__ import annotations

from typing import Any

__all__ = ["fill"]


def fill() -> None:
    """Patch moto's models (in the embedded server's process)."""
    _stop_tracking_instances()
    _fill_cognito()


def _stop_tracking_instances() -> None:
    from moto.core.common_models import BaseModel

    def untracked_new(cls: type[Any], *args: Any, **kwargs: Any) -> Any:
        # What `BaseModel.__new__` does, minus `cls.instances_tracked.append(instance)`.
        return object.__new__(cls)

    BaseModel.__new__ = staticmethod(untracked_new)  # type: ignore[method-assign,assignment]


def _fill_cognito() -> None:
    from moto.cognitoidp.models import CognitoIdpUserPool

    find_by_name = CognitoIdpUserPool._get_user

    def get_user(pool: Any, username: str) -> Any:
        user = find_by_name(pool, username)
        if user:
            return user
        return next(
            (candidate for candidate in pool.users.values() if candidate.id == username), None
        )

    def sign_out(pool: Any, username: str) -> None:
        user = get_user(pool, username)

        def same_user(name: str) -> bool:
            return name == username or (user is not None and get_user(pool, name) is user)

        for token, issued in list(pool.refresh_tokens.items()):
            if issued is not None and same_user(issued[1]):
                pool.refresh_tokens[token] = None
        for token, (_, name) in list(pool.access_tokens.items()):
            if same_user(name):
                pool.access_tokens.pop(token)

    CognitoIdpUserPool._get_user = get_user  # type: ignore[method-assign,assignment]
    CognitoIdpUserPool.sign_out = sign_out  # type: ignore[method-assign,assignment]
