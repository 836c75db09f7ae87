"""Who a request acts as: a tenant and a role (read < write < admin), and the refusals when it may not."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ..http.errors import ServiceError


class Role(IntEnum):
    READ = 1
    WRITE = 2
    ADMIN = 3

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: object) -> Role | None:
        return cls.__members__.get(value.upper()) if isinstance(value, str) else None


@dataclass(frozen=True)
class Principal:
    tenant: str
    role: Role
    token_id: str  # the first 12 hex digits of the token's digest: safe to log

    def allows(self, role: Role) -> bool:
        return self.role >= role


class AuthError(ServiceError):
    status = 401
    code = "unauthenticated"


class UnauthenticatedError(AuthError):
    """No credentials, malformed ones, or a token nobody configured: HTTP 401 with a Bearer challenge."""

    def headers(self) -> dict[str, str] | None:
        return {"WWW-Authenticate": 'Bearer realm="meshctx"'}


class ForbiddenError(AuthError):
    """A valid token whose role is too low for the operation: HTTP 403."""

    status = 403
    code = "forbidden"

    def __init__(self, principal: Principal, needed: Role) -> None:
        self.principal, self.needed = principal, needed
        super().__init__(
            f"This token has the {principal.role} role for tenant {principal.tenant!r}; this operation needs "
            f"{needed}. Use a token with the {needed} role."
        )


def require(principal: Principal, role: Role) -> Principal:
    """``principal`` if its role is at least ``role``, else ``ForbiddenError``."""
    if not principal.allows(role):
        raise ForbiddenError(principal, role)
    return principal
