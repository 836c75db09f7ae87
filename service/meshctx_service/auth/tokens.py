"""Bearer-token auth: each token is bound to one tenant and one role (read < write < admin).

A token file holds either a mapping (YAML or JSON)::

    {"s3cret-token": {"tenant": "team-a", "role": "write"},
     "sha256:9f86d0...": {"tenant": "team-b", "role": "read"}}

or one token per line (``#`` starts a comment line), the format of the shipped Kubernetes Secret; each such
token is the ``admin`` of tenant ``default`` (a single-team deployment: use the mapping for several tenants
or lesser roles). ``$MESHCTX_TOKENS`` holds the JSON mapping.

Refused at start-up: the shipped placeholder token in any format, a token shorter than ``MIN_TOKEN_LENGTH``, and
a token file that its group or others may write.

A key ``sha256:<hex>`` gives the token's digest instead of the token, so the file need not hold secrets.
Only digests are kept in memory. A presented token is hashed and compared with *every* stored digest using
``hmac.compare_digest`` without stopping at a match, so the time taken says nothing about which digest (or
how much of one) matched. No error message ever quotes a token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

from .principals import Principal, Role, UnauthenticatedError

#: Tenant and role of each token of a one-token-per-line file.
LINE_TENANT, LINE_ROLE = "default", Role.ADMIN
#: RFC 6750 ``b64token``: what may follow ``Bearer``.
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_DIGEST = re.compile(r"sha256:[0-9a-fA-F]{64}")
#: The shipped Secret's placeholder (deploy/kubernetes/config.yaml): a known token must never grant access, in
#: whichever format it is written (a line, a mapping key, its ``sha256:`` digest).
PLACEHOLDERS = frozenset({"replace-me-with-a-long-random-token"})
#: Shortest token accepted: a short one is guessed (``openssl rand -hex 32`` makes 64 characters).
MIN_TOKEN_LENGTH = 16


class TokenConfigError(ValueError):
    """The token configuration is malformed; names the entry (never the token itself) and the fix."""


def _mapping_entries(text: str, source: str) -> list[tuple[object, object, int]] | None:
    """``(key, value, line)`` of a YAML/JSON mapping; ``None`` when the text is not one (then it is read as
    one token per line). A text that tries to be YAML (a line holding ``: ``, ``{``) but fails is an error."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if not isinstance(node, yaml.MappingNode):
            if isinstance(node, yaml.SequenceNode):
                raise TokenConfigError(
                    f"{source} line 1: expected a mapping of token -> {{tenant, role}}, or one token per line."
                )
            return None
        return [
            (loader.construct_object(k, deep=True), loader.construct_object(v, deep=True), k.start_mark.line + 1)
            for k, v in node.value
        ]
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        if any(": " in line or line.lstrip().startswith("{") for line in text.splitlines()):
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise TokenConfigError(
                f"{source}{where}: not a valid YAML mapping: {getattr(err, 'problem', err)}."
            ) from None
        return None
    finally:
        loader.dispose()


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


_PLACEHOLDER_DIGESTS = frozenset(token_digest(t) for t in PLACEHOLDERS)


def _weak(token: str | None, digest: str) -> str | None:
    """Why a configured token (``None`` when only its digest is given) must not be accepted, or ``None``."""
    if digest in _PLACEHOLDER_DIGESTS:
        return "still the placeholder token; replace it with a long random one (openssl rand -hex 32)."
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        return f"a token must have at least {MIN_TOKEN_LENGTH} characters; make one with openssl rand -hex 32."
    return None


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
        return cls._from_entries(((k, v, None) for k, v in data.items()), source)

    @classmethod
    def _from_entries(cls, entries: Iterable[tuple[object, object, int | None]], source: str) -> TokenStore:
        principals: dict[str, Principal] = {}
        errors: list[str] = []
        for number, (key, entry, line) in enumerate(entries, start=1):
            where = f"{source} line {line}" if line is not None else f"{source}, entry {number}"
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
            weak = _weak(None if key.startswith("sha256:") else key, digest)
            if weak is not None:
                errors.append(f"{where}: {weak}")
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
    def from_lines(cls, text: str, source: str) -> TokenStore:
        """One token (or ``sha256:<hex>``) per line, each the admin of tenant ``default``; blank and ``#`` lines
        are skipped."""
        principals: dict[str, Principal] = {}
        seen: dict[str, int] = {}
        errors: list[str] = []
        for line, raw in enumerate(text.splitlines(), start=1):
            token = raw.strip()
            if not token or token.startswith("#"):
                continue
            if _DIGEST.fullmatch(token):
                digest = token.removeprefix("sha256:").lower()
                weak = _weak(None, digest)
            elif _TOKEN.fullmatch(token):
                digest = token_digest(token)
                weak = _weak(token, digest)
            else:
                errors.append(
                    f"{source} line {line}: not a token: one per line, each one word of A-Z a-z 0-9 - . _ ~ + / "
                    "(then =), or sha256:<64 hex digits>; or write the file as a YAML mapping token: {tenant, role}."
                )
                continue
            if weak is not None:
                errors.append(f"{source} line {line}: {weak}")
                continue
            if digest in seen:
                errors.append(f"{source} line {line}: the same token as line {seen[digest]}.")
                continue
            seen[digest] = line
            principals[digest] = Principal(LINE_TENANT, LINE_ROLE, digest[:12])
        if errors:
            raise TokenConfigError("\n".join(errors))
        if not principals:
            raise TokenConfigError(f"{source}: no tokens in the file; put one token per line, or remove the setting.")
        return cls(principals)

    @classmethod
    def from_file(cls, path: str | Path) -> TokenStore:
        """A YAML or JSON mapping (JSON is YAML, so one parser reads both), or one token per line."""
        try:
            mode = Path(path).stat().st_mode  # of the file a symlink (a Kubernetes Secret's) points at
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            raise TokenConfigError(f"Cannot read token file {path}: {reason}.") from None
        if mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise TokenConfigError(
                f"Token file {path} is writable by {'others' if mode & stat.S_IWOTH else 'its group'} (mode "
                f"{stat.S_IMODE(mode):o}): anyone who can write it can grant themselves access; chmod go-w {path}."
            )
        entries = _mapping_entries(text, str(path))
        return cls._from_entries(entries, str(path)) if entries is not None else cls.from_lines(text, str(path))

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
