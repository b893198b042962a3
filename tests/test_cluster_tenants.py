"""Per-tenant isolation and the hardened workloads (restricted profile, HPA, PDB, probes)."""

from __future__ import annotations

from typing import Any

import pytest

from components.render import k8s as r
from components.settings import Tenant, parse_settings
from tests.cluster_helpers import TENANTS3, WORKLOAD_KINDS, manifests, pod_spec, production
from tests.helpers import SECRET_KEYS
from tools.harness import stack_config

CLUSTER_SCOPED = {"Namespace", "ClusterIssuer", "ClusterRoleBinding"}


@pytest.mark.parametrize("variant", ["doks", "three", "existing3"])
def test_each_tenant_is_isolated(variant: str) -> None:
    result = production(variant)
    expected = [t["domain"] for t in TENANTS3] if variant != "doks" else ["shop.example.com"]
    objs = manifests(result)
    namespaces = [m["metadata"]["name"] for m in objs if m["kind"] == "Namespace"]
    assert len(namespaces) == len(expected) == len(set(namespaces))
    apps = result.of_type("ladder:index:App")
    assert len(apps) == len(expected)
    for ns in namespaces:
        inside = [m for m in objs if m["metadata"].get("namespace") == ns]
        kinds = [m["kind"] for m in inside]
        assert kinds.count("ResourceQuota") == 1 and kinds.count("LimitRange") == 1
        assert kinds.count("Ingress") == 1 and kinds.count("ServiceAccount") == 1
        policies = {m["metadata"]["name"]: m["spec"] for m in inside if m["kind"] == "NetworkPolicy"}
        deny = policies["default-deny"]
        assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
        assert "allow-dns" in policies
        # No policy admits traffic from another tenant's namespace.
        for spec in policies.values():
            for rule in spec.get("ingress", []) + spec.get("egress", []):
                for peer in rule.get("from", []) + rule.get("to", []):
                    name = (
                        (peer.get("namespaceSelector") or {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
                    )
                    assert name not in set(namespaces) - {ns}
        ingress = next(m for m in inside if m["kind"] == "Ingress")
        (host,) = {rule["host"] for rule in ingress["spec"]["rules"]}
        assert ingress["spec"]["tls"][0]["hosts"] == [host]
        assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt-prod"
    hosts = sorted(m["spec"]["rules"][0]["host"] for m in objs if m["kind"] == "Ingress")
    assert hosts == sorted(expected)
    # every namespaced object lives in a tenant namespace; names are unique per namespace
    keys = [(m["kind"], m["metadata"].get("namespace"), m["metadata"]["name"]) for m in objs]
    assert len(keys) == len(set(keys))
    # (the exported kubeconfig's ServiceAccount and token are platform objects in kube-system)
    for m in objs:
        if m["kind"] not in CLUSTER_SCOPED:
            assert m["metadata"]["namespace"] in [*namespaces, "kube-system"], m["metadata"]


def test_tenant_data_is_separate() -> None:
    result = production("three")
    clusters = [m for m in manifests(result, "Cluster")]
    valkeys = [m for m in manifests(result, "StatefulSet")]
    assert len({m["metadata"]["namespace"] for m in clusters}) == 3
    assert len({m["metadata"]["namespace"] for m in valkeys}) == 3
    passwords = result.of_type("random:index/randomPassword:RandomPassword")
    assert len(passwords) == 6 and len({p.name for p in passwords}) == 6


def test_namespace_enforces_restricted() -> None:
    for ns in manifests(production("three"), "Namespace"):
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def _assert_restricted(pod: dict[str, Any], where: str) -> None:
    assert pod["automountServiceAccountToken"] is False, where
    assert pod["securityContext"]["runAsNonRoot"] is True, where
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC"), where
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for v in volumes.values():
        assert set(v) & {"emptyDir", "configMap", "secret", "persistentVolumeClaim", "projected"}, where
    for c in pod["containers"] + pod.get("initContainers", []):
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False, where
        assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add"), where
        assert sc["runAsNonRoot"] is True and sc.get("runAsUser", 1) != 0, where
        assert sc["seccompProfile"]["type"] == "RuntimeDefault", where
        assert sc["readOnlyRootFilesystem"] is True, where
        assert not sc.get("privileged"), where
        assert "/tmp" in {m["mountPath"] for m in c["volumeMounts"]}, where
        assert c["resources"]["requests"] and c["resources"]["limits"], where


@pytest.mark.parametrize("variant", ["doks", "three", "managed"])
def test_every_workload_passes_the_restricted_profile(variant: str) -> None:
    workloads = [m for m in manifests(production(variant)) if m["kind"] in WORKLOAD_KINDS]
    assert workloads
    for m in workloads:
        _assert_restricted(pod_spec(m), f"{m['kind']}/{m['metadata']['name']}")


def test_deployments_roll_safely_with_probes() -> None:
    result = production("doks")
    for d in manifests(result, "Deployment"):
        name = d["metadata"]["name"]
        assert d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        pod = pod_spec(d)
        assert pod["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
        (c,) = pod["containers"]
        assert c["envFrom"] == [{"configMapRef": {"name": r.APP_CONFIG}}, {"secretRef": {"name": r.APP_SECRET}}]
        if name in ("web", "api"):
            health = "/" if name == "web" else "/api/health"
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert c[probe]["httpGet"]["path"] == health
        else:
            assert "readinessProbe" not in c  # no port, no HTTP probe


def test_hpa_follows_autoscale() -> None:
    result = production("doks")
    (hpa,) = manifests(result, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (3, 10)
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in spec["metrics"]}
    assert targets == {"cpu": 70, "memory": 80}
    api = next(d for d in manifests(result, "Deployment") if d["metadata"]["name"] == "api")
    assert "replicas" not in api["spec"]  # the HPA owns it


def test_hpa_renderer_follows_other_autoscale_settings() -> None:
    raw = {k.split(":", 1)[1]: v for k, v in stack_config("production").items() if k.startswith("ladder:")}
    raw["secrets"] = {"SESSION_SECRET": "x"}
    raw["app"]["services"]["api"]["autoscale"] = {"min": 2, "max": 4, "cpu": 50, "memory": None}
    s = parse_settings(raw, SECRET_KEYS)
    spec = r.TenantSpec(app=s.app, tenant=Tenant(name="shop", domain="shop.example.com"))
    hpa = r.hpa(spec, "api", s.app.services["api"])
    assert hpa is not None
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    assert r.hpa(spec, "web", s.app.services["web"]) is None


def test_pdb_only_for_replicated_services() -> None:
    pdbs = {p["metadata"]["name"] for p in manifests(production("doks"), "PodDisruptionBudget")}
    assert pdbs == {"web", "api"}  # worker has one replica


def test_quota_covers_full_scale() -> None:
    result = production("doks")
    (quota,) = manifests(result, "ResourceQuota")
    hard = quota["spec"]["hard"]
    assert hard["services.loadbalancers"] == "0"
    # api at 10 replicas (+1 surge) alone requests 2750m
    assert int(hard["requests.cpu"].rstrip("m")) > 2750
    # 2 Postgres instances + the restore runbook's recovery instance + Valkey
    assert hard["persistentvolumeclaims"] == "4"


def test_app_reaches_only_its_data() -> None:
    result = production("doks")
    policies = {m["metadata"]["name"]: m["spec"] for m in manifests(result, "NetworkPolicy")}
    valkey = policies["allow-valkey-from-app"]
    assert valkey["ingress"][0]["from"] == [{"podSelector": {"matchLabels": {r.ROLE: "app", r.INSTANCE: "shop"}}}]
    web = policies["allow-ingress-web"]
    peers = web["ingress"][0]["from"]
    assert peers[0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == "traefik"
    egress_ports = {p["port"] for rule in policies["allow-app-egress"]["egress"] for p in rule["ports"]}
    assert {5432, 6379} <= egress_ports


def test_secrets_are_secret() -> None:
    result = production("doks")
    (secret,) = [s for s in result.of_type("kubernetes:core/v1:Secret") if s.inputs["metadata"]["name"] == r.APP_SECRET]
    wrapped = secret.inputs["stringData"]
    assert isinstance(wrapped, dict) and "value" in wrapped  # wire-format secret marker
    assert set(wrapped["value"]) == {"DATABASE_URL", "REDIS_URL", "SESSION_SECRET"}


def test_https_egress_never_reaches_private_ranges() -> None:
    policies = {m["metadata"]["name"]: m["spec"] for m in manifests(production("doks"), "NetworkPolicy")}
    blocks = [
        peer["ipBlock"]
        for rule in policies["allow-app-egress"]["egress"]
        for peer in rule.get("to", [])
        if "ipBlock" in peer
    ]
    (internet,) = [b for b in blocks if b["cidr"] == "0.0.0.0/0"]
    assert "10.0.0.0/8" in internet["except"] and "172.16.0.0/12" in internet["except"]


def test_workers_have_the_liveness_probe_they_name() -> None:
    (worker,) = [d for d in manifests(production("doks"), "Deployment") if d["metadata"]["name"] == "worker"]
    probe = pod_spec(worker)["containers"][0]["livenessProbe"]
    assert probe["exec"]["command"][:2] == ["node", "-e"] and "heartbeat" in probe["exec"]["command"][2]
    # the release Job runs a one-off command: no probe of the worker's kind
    (job,) = manifests(production("doks"), "Job")
    assert "livenessProbe" not in pod_spec(job)["containers"][0]
