"""Bearer-token auth: tokens (``tokens``), who they act as (``principals``) and the per-request gate (``gate``)."""

from .principals import AuthError, ForbiddenError, Principal, Role, UnauthenticatedError, require
from .tokens import TokenConfigError, TokenStore, token_digest

__all__ = [
    "AuthError",
    "ForbiddenError",
    "Principal",
    "Role",
    "TokenConfigError",
    "TokenStore",
    "UnauthenticatedError",
    "require",
    "token_digest",
]
