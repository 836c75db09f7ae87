"""Bearer-token auth primitives, and how a principal's tenant scopes what it can reach in the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshctx_service.auth import (
    ForbiddenError,
    Principal,
    Role,
    TokenConfigError,
    TokenStore,
    UnauthenticatedError,
    require,
    token_digest,
)
from meshctx_service.registry import NotFoundError, Registry
from tests.registry.registrar import fsdp2

TOKENS = {
    "acme-writer-token": {"tenant": "acme", "role": "write"},
    "acme-reader-token": {"tenant": "acme", "role": "read"},
    f"sha256:{token_digest('globex-admin-token')}": {"tenant": "globex", "role": "admin"},
}


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    path = tmp_path / "tokens.yaml"
    path.write_text("\n".join(f"{k}: {{tenant: {v['tenant']}, role: {v['role']}}}" for k, v in TOKENS.items()))
    return TokenStore.from_file(path)


def test_valid_tokens_map_to_tenant_and_role(store: TokenStore) -> None:
    writer = store.authenticate("Bearer acme-writer-token")
    assert (writer.tenant, writer.role) == ("acme", Role.WRITE)
    assert writer.token_id == token_digest("acme-writer-token")[:12]
    assert store.authenticate("bearer   globex-admin-token ").role is Role.ADMIN  # pre-hashed entry works
    assert store.authenticate("Bearer acme-reader-token").role is Role.READ


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        (None, "Missing Authorization"),
        ("", "Missing Authorization"),
        ("Bearer", "Malformed"),
        ("Basic YWNtZTpwdw==", "Malformed"),
        ("Bearer acme-writer-token-but-longer", "Unknown"),
        ("Bearer ACME-WRITER-TOKEN", "Unknown"),
        (f"Bearer {token_digest('globex-admin-token')}", "Unknown"),  # the digest is not a credential
    ],
)
def test_missing_malformed_and_wrong_tokens_are_401(store: TokenStore, header: str | None, fragment: str) -> None:
    with pytest.raises(UnauthenticatedError, match=fragment) as err:
        store.authenticate(header)
    assert err.value.status == 401 and err.value.headers()["WWW-Authenticate"].startswith("Bearer")


def test_role_order_and_read_only_token_writing_is_403(store: TokenStore) -> None:
    reader = store.authenticate("Bearer acme-reader-token")
    assert require(reader, Role.READ) is reader
    with pytest.raises(ForbiddenError) as err:
        require(reader, Role.WRITE)
    assert err.value.status == 403 and "read role" in str(err.value) and "needs write" in str(err.value)
    writer = store.authenticate("Bearer acme-writer-token")
    assert require(writer, Role.WRITE) is writer
    with pytest.raises(ForbiddenError):
        require(writer, Role.ADMIN)
    assert Role.READ < Role.WRITE < Role.ADMIN


def test_wrong_tenant_sees_nothing(store: TokenStore, registry: Registry) -> None:
    acme = require(store.authenticate("Bearer acme-writer-token"), Role.WRITE)
    registry.register_job(acme.tenant, "train", fsdp2(8))
    globex = require(store.authenticate("Bearer globex-admin-token"), Role.ADMIN)
    with pytest.raises(NotFoundError):
        registry.get_job(globex.tenant, "train")
    with pytest.raises(NotFoundError):
        registry.delete_job(globex.tenant, "train")
    assert registry.get_job(acme.tenant, "train").job_id == "train"


def test_json_file_and_environment_variable(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps(TOKENS))
    assert len(TokenStore.from_file(path)) == 3
    env = {"MESHCTX_TOKENS": json.dumps({"t0k-0123456789abc": {"tenant": "acme", "role": "admin"}})}
    assert TokenStore.from_env(environ=env).authenticate("Bearer t0k-0123456789abc") == Principal(
        "acme", Role.ADMIN, token_digest("t0k-0123456789abc")[:12]
    )
    assert len(TokenStore.from_env(environ={})) == 0
    with pytest.raises(UnauthenticatedError):
        TokenStore.from_env(environ={}).authenticate("Bearer anything")


def test_bad_configuration_names_every_entry_but_never_the_token(tmp_path: Path) -> None:
    bad = {
        "secret-one": {"tenant": "", "role": "write"},
        "secret-two": {"tenant": "acme", "role": "owner"},
        "sha256:abc": {"tenant": "acme", "role": "read"},
        "secret-three": "acme",
    }
    with pytest.raises(TokenConfigError) as err:
        TokenStore.from_mapping(bad, "tokens.yaml")
    text = str(err.value)
    assert "entry 1" in text and "'tenant'" in text
    assert "entry 2" in text and "'owner'" in text
    assert "entry 3" in text and "64 hex digits" in text
    assert "entry 4" in text
    assert "secret" not in text
    with pytest.raises(TokenConfigError, match="not valid JSON"):
        TokenStore.from_env(environ={"MESHCTX_TOKENS": "{nope"})
    with pytest.raises(TokenConfigError, match="Cannot read"):
        TokenStore.from_file(tmp_path / "missing.yaml")
