"""Who is asking: the principal behind a request's bearer token, or — with auth off — the local admin.

``MESHCTX_AUTH=auto`` (the default) is safe without configuration: with tokens configured it requires them;
with none it lets every request in as the ``local`` tenant's admin only while the service listens on a
loopback address (``meshctx serve`` on a laptop), and refuses registry requests (401) when it listens on
anything else. ``tokens`` always requires a token; ``disabled`` always lets everyone in (development only).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..settings import Settings
from .principals import Principal, Role, UnauthenticatedError, require
from .tokens import TokenStore

LOCAL_TENANT = "local"
LOCAL = Principal(LOCAL_TENANT, Role.ADMIN, "auth-disabled")
log = logging.getLogger("meshctx.service")
bearer = HTTPBearer(
    auto_error=False,
    description="A token from the service's token file (MESHCTX_TOKENS_FILE), bound to a tenant and a role.",
)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_tokens(settings: Settings) -> TokenStore:
    """Tokens from ``MESHCTX_TOKENS_FILE`` and ``MESHCTX_TOKENS`` together (``TokenConfigError`` if malformed)."""
    stores = []
    if settings.tokens_file is not None:
        stores.append(TokenStore.from_file(settings.tokens_file))
    if settings.tokens:
        stores.append(TokenStore.from_env("MESHCTX_TOKENS", {"MESHCTX_TOKENS": settings.tokens}))
    return TokenStore.merge(*stores)


class Gate:
    def __init__(self, tokens: TokenStore, *, open_access: bool, refusal: str | None = None) -> None:
        self.tokens, self.open_access, self.refusal = tokens, open_access, refusal

    @classmethod
    def from_settings(cls, settings: Settings) -> Gate:
        tokens = load_tokens(settings)
        if settings.auth == "disabled" or (settings.auth == "auto" and not tokens and _loopback(settings.host)):
            log.warning("registry auth is off: every request acts as tenant %r with the admin role", LOCAL_TENANT)
            return cls(tokens, open_access=True)
        refusal = None
        if not tokens:
            refusal = (
                f"This service has no tokens configured and listens on {settings.host}, so it accepts none. Give it "
                f"tokens (MESHCTX_TOKENS_FILE or MESHCTX_TOKENS), or for local development set MESHCTX_AUTH=disabled."
            )
        return cls(tokens, open_access=False, refusal=refusal)

    def principal(self, authorization: str | None, role: Role) -> Principal:
        if self.open_access:
            return LOCAL
        if self.refusal is not None:
            raise UnauthenticatedError(self.refusal)
        return require(self.tokens.authenticate(authorization), role)


def needs(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency giving the request's principal if its role is at least ``role`` (else 401/403)."""

    # async so FastAPI calls it inline: a plain def would cost a worker-thread hop on every request.
    async def principal(
        request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None
    ) -> Principal:
        gate: Gate = request.app.state.gate
        return gate.principal(request.headers.get("authorization"), role)

    return principal
