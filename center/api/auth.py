"""Bearer-token auth: who holds the token, and whether its role may do what a route does.
A route takes one of `Actor` (any valid token: reads), `Operator` (ticket actions),
`Engineer` (baseline approvals) or `Admin` (maintenance windows) as a parameter; its value
is the token's name, recorded as who acted."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from center.auth.roles import MINIMUM_ROLE, Permission, allows

_bearer = HTTPBearer(auto_error=False)


def _token_holder(
    request: Request,
    cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> tuple[str, str]:
    """The token's name and role: who does what through the API."""
    if cred is not None:
        given = cred.credentials.encode()
        for name, token, role in request.app.state.tokens:
            if hmac.compare_digest(given, token):
                return str(name), str(role)
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "missing or unknown bearer token",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _allowed(permission: Permission) -> Callable[[tuple[str, str]], str]:
    def check(holder: Annotated[tuple[str, str], Depends(_token_holder)]) -> str:
        name, role = holder
        if not allows(role, permission):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"token {name!r} has role {role}; this needs {MINIMUM_ROLE[permission]} or above",
            )
        return name

    return check


# Module level: with postponed annotations FastAPI resolves names in module globals, so
# every router module imports these names at its top.
Actor = Annotated[str, Depends(_allowed(Permission.READ))]  # any valid token: reads
Operator = Annotated[str, Depends(_allowed(Permission.TICKET_ACTION))]
Engineer = Annotated[str, Depends(_allowed(Permission.APPROVE_BASELINE))]
Admin = Annotated[str, Depends(_allowed(Permission.MAINTENANCE))]
