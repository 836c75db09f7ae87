"""Every YAML under deploy/ parses and validates against the Kubernetes schemas (offline).

Core kinds use kubernetes-validate's bundled schemas in strict mode (unknown fields fail). CRD kinds
have no schema there; the skip-list below checks them against small structural schemas instead.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

kubernetes_validate = pytest.importorskip("kubernetes_validate")

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S_VERSION = "1.30.0"

_str = {"type": "string", "minLength": 1}
_meta = {"type": "object", "required": ["name"], "properties": {"name": _str, "namespace": _str}}


def _crd(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {"metadata": _meta, "spec": spec},
    }


#: (apiVersion, kind) of custom resources → structural schema of the fields we rely on.
CRD_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("cert-manager.io/v1", "Issuer"): _crd(
        {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": False,
            "properties": {"selfSigned": {"type": "object"}, "ca": {"type": "object"}},
        }
    ),
    ("cert-manager.io/v1", "Certificate"): _crd(
        {
            "type": "object",
            "required": ["secretName", "dnsNames", "issuerRef"],
            "properties": {
                "secretName": _str,
                "dnsNames": {"type": "array", "minItems": 1, "items": _str},
                "issuerRef": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": _str, "kind": {"enum": ["Issuer", "ClusterIssuer"]}},
                },
                "duration": {"type": "string", "pattern": "^[0-9]+h$"},
                "renewBefore": {"type": "string", "pattern": "^[0-9]+h$"},
            },
        }
    ),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): _crd(
        {
            "type": "object",
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": {"type": "object", "required": ["matchLabels"]},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "object", "required": ["port", "path"]},
                },
            },
        }
    ),
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"): {
        "type": "object",
        "required": ["resources"],
        "properties": {"resources": {"type": "array", "items": _str}},
    },
}


def documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(DEPLOY.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append(
                    (f"{path.relative_to(DEPLOY)}:{doc['kind']}/{doc.get('metadata', {}).get('name', '')}", doc)
                )
    return docs


DOCS = documents()
BY_KIND = {doc["kind"]: doc for _, doc in DOCS}


@pytest.mark.parametrize(("name", "doc"), DOCS, ids=[n for n, _ in DOCS])
def test_every_document_validates(name: str, doc: dict[str, Any]) -> None:
    key = (doc["apiVersion"], doc["kind"])
    if key in CRD_SCHEMAS:
        jsonschema.validate(doc, CRD_SCHEMAS[key])
        return
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_validator_rejects_a_broken_manifest() -> None:
    """Guard against a validator that passes everything: an unknown field and a wrong type fail."""
    broken = yaml.safe_load(yaml.safe_dump(BY_KIND["Deployment"]))
    broken["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    broken = yaml.safe_load(yaml.safe_dump(BY_KIND["ValidatingWebhookConfiguration"]))
    broken["webhooks"][0]["timeoutSeconds"] = "five"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_image_is_pinned_by_digest() -> None:
    image = BY_KIND["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert re.fullmatch(r"[a-z0-9./-]+(:[\w.-]+)?@sha256:[0-9a-f]{64}", image), image


def test_network_policy_admits_https_only_and_lets_out_dns_and_postgres_only() -> None:
    policy = BY_KIND["NetworkPolicy"]
    labels = BY_KIND["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    [ingress] = policy["spec"]["ingress"]
    container = BY_KIND["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert ingress["ports"] == [{"protocol": "TCP", "port": container["ports"][0]["containerPort"]}]
    assert {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]} == {53, 5432}


def test_kustomization_lists_every_manifest() -> None:
    listed = set(BY_KIND["Kustomization"]["resources"])
    present = {p.name for p in (DEPLOY / "kubernetes").glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_deployment_is_highly_available_probed_and_locked_down() -> None:
    deployment = BY_KIND["Deployment"]
    assert deployment["spec"]["replicas"] >= 2
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert BY_KIND["PodDisruptionBudget"]["spec"]["minAvailable"] >= 1
    settings = BY_KIND["ConfigMap"]["data"]
    assert {"MESHCTX_HOST", "MESHCTX_PORT", "MESHCTX_LOG_LEVEL", "MESHCTX_TOKENS_FILE"} <= set(settings)
    assert all(key.startswith("MESHCTX_") for key in settings)
    assert BY_KIND["Secret"]["metadata"]["name"] in {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}


def test_webhook_speaks_v1_without_side_effects_and_gets_its_ca_from_cert_manager() -> None:
    config = BY_KIND["ValidatingWebhookConfiguration"]
    certificate = BY_KIND["Certificate"]
    inject = config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
    assert inject == f"{certificate['metadata']['namespace']}/{certificate['metadata']['name']}"
    jobs, pods = config["webhooks"]
    for hook in (jobs, pods):
        assert hook["sideEffects"] == "None" and hook["admissionReviewVersions"] == ["v1"]
        assert hook["timeoutSeconds"] <= 10 and hook["failurePolicy"] in {"Ignore", "Fail"}
        assert hook["clientConfig"]["service"]["path"] == "/v1/admission/kubernetes"
    service = BY_KIND["Service"]
    assert f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc" in certificate["spec"]["dnsNames"]
    assert {r for rule in jobs["rules"] for r in rule["resources"]} == {"trainjobs", "pytorchjobs", "jobsets", "jobs"}
    assert all(rule["operations"] == ["CREATE", "UPDATE"] for rule in jobs["rules"])
    # every pod of the cluster would call the webhook: bare pods are checked only when they opt in
    assert [r for rule in pods["rules"] for r in rule["resources"]] == ["pods"]
    assert pods["rules"][0]["operations"] == ["CREATE"]
    assert pods["objectSelector"] == {"matchLabels": {"meshctx.io/check": "true"}}
    # only objects with a meshctx.io/ annotation reach meshctx (contract.md: "The admission gate never opens")
    for hook in (jobs, pods):
        [condition] = hook["matchConditions"]
        assert "object.metadata.annotations.exists(k, k.startsWith('meshctx.io/'))" in condition["expression"]
        assert condition["expression"].startswith("has(object.metadata.annotations)")
    assert (
        BY_KIND["Deployment"]["spec"]["template"]["spec"]["volumes"][1]["secret"]["secretName"]
        == certificate["spec"]["secretName"]
    )


def test_dockerfile_is_multi_stage_non_root_without_torch_and_checks_livez() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert text.count("\nFROM ") + text.startswith("FROM ") >= 2
    user = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert user and not user[-1].startswith(("root", "0"))
    assert "HEALTHCHECK" in text and "/livez" in text
    assert '".[service' in text and "torch" not in text.split('".[service')[1].split('"')[0]
    assert 'CMD ["serve"]' in text and 'ENTRYPOINT ["meshctx"]' in text


def test_systemd_unit_runs_meshctx_serve_unprivileged() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DEPLOY / "systemd" / "meshctx.service")
    service = unit["Service"]
    assert service["ExecStart"].endswith("meshctx serve")
    assert service["User"] != "root" and service["NoNewPrivileges"] == "yes"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
