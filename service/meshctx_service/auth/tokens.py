"""Bearer-token auth: each token is bound to one tenant and one role (read < write < admin).

Tokens are configured as a mapping (YAML or JSON, from a file or an environment variable)::

    {"s3cret-token": {"tenant": "team-a", "role": "write"},
     "sha256:9f86d0...": {"tenant": "team-b", "role": "read"}}

A key ``sha256:<hex>`` gives the token's digest instead of the token, so the file need not hold secrets.
Only digests are kept in memory. A presented token is hashed and compared with *every* stored digest using
``hmac.compare_digest`` without stopping at a match, so the time taken says nothing about which digest (or
how much of one) matched.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from pathlib import Path

import yaml

from .principals import Principal, Role, UnauthenticatedError


class TokenConfigError(ValueError):
    """The token configuration is malformed; names the entry (never the token itself) and the fix."""


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    def __init__(self, principals: Mapping[str, Principal] | None = None) -> None:
        """``principals`` maps sha256 hex digests of tokens to who they authenticate."""
        self._entries: list[tuple[bytes, Principal]] = [(d.encode(), p) for d, p in (principals or {}).items()]

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def merge(cls, *stores: TokenStore) -> TokenStore:
        """One store holding every token of ``stores`` (e.g. a token file and ``$MESHCTX_TOKENS``)."""
        merged = cls()
        for store in stores:
            merged._entries.extend(store._entries)
        return merged

    @classmethod
    def from_mapping(cls, data: object, source: str = "token configuration") -> TokenStore:
        if not isinstance(data, Mapping):
            raise TokenConfigError(f"{source}: expected a mapping of token -> {{tenant, role}}.")
        principals: dict[str, Principal] = {}
        errors: list[str] = []
        for number, (key, entry) in enumerate(data.items(), start=1):
            where = f"{source}, entry {number}"
            if not isinstance(key, str) or not key.strip():
                errors.append(f"{where}: the token must be a non-empty string.")
                continue
            if key.startswith("sha256:"):
                digest = key.removeprefix("sha256:").lower()
                if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                    errors.append(f"{where}: 'sha256:' must be followed by 64 hex digits.")
                    continue
            else:
                digest = token_digest(key)
            if not isinstance(entry, Mapping):
                errors.append(f"{where}: expected {{tenant: NAME, role: read|write|admin}}.")
                continue
            tenant, role = entry.get("tenant"), Role.parse(entry.get("role"))
            if not isinstance(tenant, str) or not tenant:
                errors.append(f"{where}: 'tenant' must be a non-empty string.")
            if role is None:
                errors.append(f"{where}: 'role' must be read, write or admin, got {entry.get('role')!r}.")
            if digest in principals:
                errors.append(f"{where}: the same token is configured twice.")
            if isinstance(tenant, str) and tenant and role is not None:
                principals[digest] = Principal(tenant, role, digest[:12])
        if errors:
            raise TokenConfigError("\n".join(errors))
        return cls(principals)

    @classmethod
    def from_file(cls, path: str | Path) -> TokenStore:
        """YAML or JSON (JSON is YAML, so one parser reads both)."""
        try:
            data = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as err:
            raise TokenConfigError(f"Cannot read token file {path}: {err}") from err
        return cls.from_mapping(data, str(path))

    @classmethod
    def from_env(cls, variable: str = "MESHCTX_TOKENS", environ: Mapping[str, str] | None = None) -> TokenStore:
        """The variable holds the JSON mapping; unset or empty means no tokens."""
        text = (environ if environ is not None else os.environ).get(variable, "").strip()
        if not text:
            return cls()
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise TokenConfigError(f"${variable} is not valid JSON: {err.msg} at position {err.pos}.") from err
        return cls.from_mapping(data, f"${variable}")

    def lookup(self, token: str) -> Principal | None:
        presented = token_digest(token).encode()
        found: Principal | None = None
        for digest, principal in self._entries:
            if hmac.compare_digest(presented, digest):
                found = principal
        return found

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal behind an ``Authorization: Bearer <token>`` header, or ``UnauthenticatedError``."""
        if authorization is None or not authorization.strip():
            raise UnauthenticatedError("Missing Authorization header; send 'Authorization: Bearer <token>'.")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise UnauthenticatedError("Malformed Authorization header; expected 'Bearer <token>'.")
        principal = self.lookup(token)
        if principal is None:
            raise UnauthenticatedError("Unknown or revoked token.")
        return principal
