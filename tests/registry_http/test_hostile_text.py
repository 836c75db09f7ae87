"""Text that no database should see — NUL, lone surrogates, control characters, forged cursors — is a 422
naming the field on SQLite and on PostgreSQL (through a real server), never a 500; nothing is stored, so the
tenant's listings keep working."""

from __future__ import annotations

import base64
import json

import httpx

from tests.support.servers import LiveServer

WRITER = {"Authorization": "Bearer writer-a-0123456789"}
ADMIN = {"Authorization": "Bearer admin-a-0123456789"}
REQUEST = {"strategy": "fsdp2", "world_size": 8, "sizes": {"tp_size": 2}}


def _cursor(after: object) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


def _fields(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    return {e["field"] for e in response.json()["errors"]}


def test_hostile_text_is_refused_on_both_databases(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        assert (
            client.put("/v1/jobs/ok", json={"request": REQUEST, "labels": {"team": "llm"}}, headers=WRITER).status_code
            == 201
        )

        # A label value or key with NUL, a lone surrogate or a control character is never stored.
        for value in ("\u0000", "a\u0000b", "\udc80", "line\nbreak"):
            body = json.dumps({"request": REQUEST, "labels": {"team": value}}).encode()
            refused = client.put("/v1/jobs/bad", content=body, headers={**WRITER, "content-type": "application/json"})
            assert "labels.team" in _fields(refused) or refused.json()["errors"], value
        assert client.get("/v1/jobs/bad", headers=WRITER).status_code == 404

        # Filters and cursors in the query string.
        assert "cluster" in _fields(client.get("/v1/jobs", params={"cluster": "\u0000"}, headers=WRITER))
        assert "label.k" in _fields(client.get("/v1/jobs", params={"label": "k=\u0000"}, headers=WRITER))
        for after in ("\u0000", "\udc80", 7, ["x"], "x" * 500):
            assert "cursor" in _fields(client.get("/v1/jobs", params={"cursor": _cursor(after)}, headers=WRITER))
            assert "cursor" in _fields(client.get("/v1/clusters", params={"cursor": _cursor(after)}, headers=WRITER))
        assert "cursor" in _fields(client.get("/v1/jobs", params={"cursor": "%%%"}, headers=WRITER))

        # Paths: a name no job or cluster can have.
        assert "job_id" in _fields(client.get("/v1/jobs/%00", headers=WRITER))
        assert "name" in _fields(client.get("/v1/clusters/%00", headers=WRITER))
        assert "name" in _fields(client.delete("/v1/clusters/%00", headers=ADMIN))

        # Attestation fingerprints.
        for fingerprint in ("sha256:\u0000", "sha256:\udc80", "sha256:\n"):
            body = json.dumps({"fingerprint": fingerprint}).encode()
            response = client.post(
                "/v1/jobs/ok/attestations", content=body, headers={**WRITER, "content-type": "application/json"}
            )
            assert response.status_code == 422, (fingerprint, response.text)

        # Every listing of the tenant still answers.
        listing = client.get("/v1/jobs", params={"label": "team=llm"}, headers=WRITER)
        assert listing.status_code == 200 and [j["job_id"] for j in listing.json()["items"]] == ["ok"]
        assert client.get("/v1/jobs", headers=WRITER).status_code == 200
