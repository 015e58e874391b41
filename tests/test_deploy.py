"""deploy/: the Kubernetes manifests validate against the Kubernetes schemas (kubernetes-validate,
strict: an unknown field is an error), the Deployment probes /readyz and /healthz and runs
`steward serve`, provider keys come from the Secret; the systemd unit runs the same command."""

from __future__ import annotations

import configparser
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
K8S = DEPLOY / "kubernetes"
K8S_VERSION = "1.30.0"


def _docs() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                out.append((path.name, doc))
    return out


@pytest.mark.parametrize(("name", "doc"), [pytest.param(n, d, id=f"{n}:{d['kind']}") for n, d in _docs()
                                           if d["kind"] != "Kustomization"])
def test_manifest_validates_strictly(name: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_validator_rejects_a_broken_deployment() -> None:
    doc = next(d for _, d in _docs() if d["kind"] == "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(doc))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pathh"] = "/readyz"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_deployment_serves_probes_and_reads_keys_from_the_secret() -> None:
    docs = _docs()
    dep = next(d for _, d in docs if d["kind"] == "Deployment")
    assert dep["spec"]["replicas"] >= 2
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["command"][:2] == ["steward", "serve"] and "--no-control-loop" not in c["command"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    secret = next(d for _, d in docs if d["kind"] == "Secret")
    assert {"OPENROUTER_API_KEY", "OPENAI_API_KEY", "STEWARD_DATABASE_URL"} <= set(secret["stringData"])
    assert {"secretRef": {"name": secret["metadata"]["name"]}} in c["envFrom"]
    assert not any(v for k, v in secret["stringData"].items() if k.endswith("_KEY"))  # placeholders only
    external = {d["metadata"]["name"]: d["spec"] for _, d in docs if d["kind"] == "Service"
                and d["spec"].get("type") == "ExternalName"}
    assert {"steward-postgres", "steward-mlflow"} <= set(external)
    kust = next(d for _, d in docs if d["kind"] == "Kustomization")
    assert sorted(kust["resources"]) == sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def test_systemd_unit_runs_serve() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(DEPLOY / "systemd" / "model-steward.service")
    assert unit["Service"]["ExecStart"].split()[1:3] == ["serve", "--host"]
    assert unit["Service"]["KillSignal"] == "SIGTERM" and unit["Install"]["WantedBy"] == "multi-user.target"


def test_pods_are_hardened_and_fenced_by_a_network_policy() -> None:
    """Issue 25: no container securityContext, no NetworkPolicy, a service-account token mounted."""
    docs = _docs()
    pod = next(d for _, d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    for c in pod["containers"] + pod["initContainers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"])  # writable scratch on a read-only root
    pol = next(d for _, d in docs if d["kind"] == "NetworkPolicy")
    assert set(pol["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert pol["spec"]["podSelector"]["matchLabels"] == pod.get("labels", {}) or \
        pol["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "model-steward"
    assert [p["port"] for rule in pol["spec"]["ingress"] for p in rule["ports"]] == [8080]


def test_systemd_unit_keeps_its_files_private() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(DEPLOY / "systemd" / "model-steward.service")
    assert unit["Service"]["UMask"] == "0077"
    assert unit["Service"]["NoNewPrivileges"] == "true" and unit["Service"]["ProtectSystem"] == "strict"
