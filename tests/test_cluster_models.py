"""Checks no schema makes, as models over the rendered objects: NetworkPolicy
reachability, ResourceQuota admission at peak (rollout surge, sidecars, a restore), and
the Alertmanager config loader's rules."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.render import k8s as r
from components.render import monitoring
from tests.cluster_helpers import production
from tools import contracts
from tools.harness import ProgramResult, unwrap
from tools.manifests import clean, manifests_from
from tools.netpol_model import External, Network, Pod, cnpg_pods, workload_pods
from tools.quota_model import admission_errors, demand
from tools.restore import cnpg_restore_manifest, load_stack_settings

OBJECT_STORE = External("object store (fra1.digitaloceanspaces.com)", "5.101.110.225")
API_SERVER = External("Kubernetes API (DOKS endpoint)", "164.90.160.10")
DNS = Pod("coredns", "kube-system", {"k8s-app": "kube-dns"})
OPERATOR = Pod("cnpg-controller-manager", "cnpg-system", {"app.kubernetes.io/name": "cloudnative-pg"})
PROMETHEUS = Pod("prometheus-kps-0", "monitoring", {"app.kubernetes.io/name": "prometheus"})
OUTSIDER = Pod("debug", "default", {"run": "debug"})
CONTROLLERS = {
    "traefik": Pod("traefik", "traefik", {"app.kubernetes.io/name": "traefik"}),
    "ingress-nginx": Pod("ingress-nginx-controller", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}),
}


def in_namespace(result: ProgramResult, namespace: str) -> list[dict[str, Any]]:
    return [m for m in manifests_from(result) if (m["metadata"].get("namespace") == namespace)]


def namespaces(result: ProgramResult) -> list[str]:
    return [m["metadata"]["name"] for m in manifests_from(result) if m["kind"] == "Namespace"]


def network(result: ProgramResult) -> Network:
    return Network.from_manifests(manifests_from(result), ["kube-system", "cnpg-system", "monitoring", "default"])


def pods_of(result: ProgramResult, namespace: str) -> dict[str, Pod]:
    return {p.name: p for p in workload_pods(in_namespace(result, namespace))}


def solver(namespace: str) -> Pod:
    return Pod("cm-acme-http-solver", namespace, {"acme.cert-manager.io/http01-solver": "true"})


def restore_pods(namespace: str) -> list[Pod]:
    return cnpg_pods(f"{r.POSTGRES_CLUSTER}-restore", namespace)


# --- reachability: every needed flow ------------------------------------------------------


@pytest.mark.parametrize("variant", ["three", "backups", "monitoring", "nginx", "k3s"])
def test_needed_flows(variant: str) -> None:
    result = production(variant)
    net = network(result)
    controller = CONTROLLERS[result.config.get("ladder:cluster", {}).get("ingress", "traefik")]
    if variant == "nginx":
        controller = CONTROLLERS["ingress-nginx"]
    settings = load_stack_settings("production")
    ports = {name: svc.port for name, svc in settings.app.services.items()}
    for ns in namespaces(result):
        pods = pods_of(result, ns)
        app = [p for p in pods.values() if p.labels.get(r.ROLE) == "app"]
        instances = [p for p in pods.values() if p.labels.get("cnpg.io/podRole") == "instance"]
        cnpg = [p for p in pods.values() if "cnpg.io/cluster" in p.labels] + restore_pods(ns)
        valkey = [p for p in pods.values() if p.labels.get(r.NAME) == r.VALKEY]
        assert app and instances and valkey, ns
        for name, port in ports.items():
            if port is not None:
                assert net.allowed(controller, pods[f"Deployment/{name}"], port), (ns, name)
        assert net.allowed(controller, solver(ns), 8089)
        release = [p for p in app if p.name.startswith("Job/release")]
        assert release, ns
        for a in app:  # web, api, worker and the release Job
            assert net.allowed(a, instances[0], r.POSTGRES_PORT), a
            assert net.allowed(a, valkey[0], r.VALKEY_PORT), a
        for p in [*app, *cnpg, *valkey, solver(ns)]:
            assert net.allowed(p, DNS, 53, "UDP") and net.allowed(p, DNS, 53, "TCP"), p
        for pg in cnpg:  # live instances, their Jobs, a recovery cluster of the runbook
            for port in (r.POSTGRES_PORT, r.CNPG_STATUS_PORT):
                assert net.allowed(OPERATOR, pg, port), (pg, port)
                for other in cnpg:
                    assert net.allowed(pg, other, port), (pg, other, port)
            assert net.allowed(pg, OBJECT_STORE, 443)
            assert net.allowed(pg, API_SERVER, 443) and net.allowed(pg, API_SERVER, 6443)
        if variant in ("monitoring", "k3s"):
            for name, port in ports.items():
                if port is not None:
                    assert net.allowed(PROMETHEUS, pods[f"Deployment/{name}"], port)
            assert net.allowed(PROMETHEUS, instances[0], r.POSTGRES_METRICS_PORT)
            assert net.allowed(PROMETHEUS, valkey[0], r.VALKEY_METRICS_PORT)


# --- reachability: every forbidden flow ---------------------------------------------------


@pytest.mark.parametrize("variant", ["three", "monitoring", "existing3"])
def test_forbidden_flows(variant: str) -> None:
    result = production(variant)
    net = network(result)
    spaces = namespaces(result)
    assert len(spaces) >= 2 or variant == "monitoring"
    everything = {ns: list(pods_of(result, ns).values()) + restore_pods(ns) + [solver(ns)] for ns in spaces}
    ports = [80, 443, 3000, 5432, 6379, 8000, 8080, 8089, 9121, 9187]
    for a in spaces:
        for b in spaces:
            if a == b:
                continue
            for src in everything[a]:
                for dst in everything[b]:
                    for port in ports:
                        assert not net.allowed(src, dst, port), (src, dst, port)
    outsiders: list[Pod | External] = [
        OUTSIDER,
        PROMETHEUS,
        OPERATOR,
        DNS,
        *CONTROLLERS.values(),
        External("internet", "198.51.100.7"),
    ]
    for ns in spaces:
        for pg in [p for p in everything[ns] if "cnpg.io/cluster" in p.labels]:
            for peer in outsiders:
                if peer is not OPERATOR:
                    assert not net.allowed(peer, pg, r.POSTGRES_PORT), (peer, pg)
            assert not net.allowed(OUTSIDER, pg, r.CNPG_STATUS_PORT)
        valkey = [p for p in everything[ns] if p.labels.get(r.NAME) == r.VALKEY]
        for peer in outsiders:
            assert not net.allowed(peer, valkey[0], r.VALKEY_PORT)
        # HTTPS egress never reaches private ranges (other tenants, nodes)
        web = pods_of(result, ns)["Deployment/web"]
        assert not net.allowed(web, External("node", "10.0.1.10"), 443)


def test_model_sees_a_policy_that_cuts_off_the_restore_cluster() -> None:
    """The model can fail: the old Postgres policy (matching one Cluster name) left a
    recovery cluster without its operator."""
    old = {
        "metadata": {"name": "allow-postgres", "namespace": "shop"},
        "spec": {
            "podSelector": {"matchLabels": {"cnpg.io/cluster": "postgres"}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "cnpg-system"}}}]}
            ],
            "egress": [{"ports": [{"port": 443, "protocol": "TCP"}]}],
        },
    }
    deny = {
        "metadata": {"name": "default-deny", "namespace": "shop"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }
    net = Network({"shop": {}, "cnpg-system": {}}, [old, deny])
    live, restored = cnpg_pods("postgres", "shop")[0], restore_pods("shop")[0]
    assert net.allowed(OPERATOR, live, 8000)
    assert not net.allowed(OPERATOR, restored, 8000)
    assert not net.allowed(restored, OBJECT_STORE, 443)


# --- quota admission ----------------------------------------------------------------------


def _issuers(result: ProgramResult) -> list[dict[str, Any]]:
    return [m for m in manifests_from(result) if m["kind"] == "ClusterIssuer"]


@pytest.mark.parametrize("variant", ["doks", "three", "backups", "managed", "monitoring", "k3s", "nginx"])
def test_quota_admits_every_pod_at_peak(variant: str) -> None:
    result = production(variant)
    settings = load_stack_settings("production", _overrides(result))
    for ns in namespaces(result):
        objects = in_namespace(result, ns)
        (quota,) = [m for m in objects if m["kind"] == "ResourceQuota"]
        if any(m["kind"] == "Cluster" for m in objects) and settings.backups:
            restore = cnpg_restore_manifest(settings, "production")
            restore["metadata"]["namespace"] = ns
            objects.append(restore)
        d = demand(objects, _issuers(result))
        assert d.pods > 0
        errors = admission_errors(d, quota)
        assert not errors, (ns, errors)


def _overrides(result: ProgramResult) -> dict[str, Any]:
    """The run's config without its secret values (the settings here only need to know what is configured)."""
    secret_fields = {
        "ladder:backups": ("accessKeyId", "secretAccessKey", "encryptionKey"),
        "ladder:monitoring": ("smtpPassword",),
    }
    out = {}
    for key, value in result.config.items():
        if not key.startswith("ladder:") or key in ("ladder:secrets", "ladder:registries"):
            continue
        if key in secret_fields and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in secret_fields[key]}
        out[key] = value
    return out


def test_quota_model_refuses_what_the_issue_found() -> None:
    result = production("backups")
    objects = in_namespace(result, "shop")
    (quota,) = [m for m in objects if m["kind"] == "ResourceQuota"]
    # a solver Service of the default type (NodePort) against services.nodeports: 0
    issuers = copy.deepcopy(_issuers(result))
    for issuer in issuers:
        issuer["spec"]["acme"]["solvers"][0]["http01"]["ingress"].pop("serviceType")
    assert any("services.nodeports" in e for e in admission_errors(demand(objects, issuers), quota))
    # without the surge, sidecar and restore room the old quota is exceeded
    tight = copy.deepcopy(quota)
    tight["spec"]["hard"]["persistentvolumeclaims"] = "3"
    settings = load_stack_settings("production", _overrides(result))
    with_restore = [*objects, {**cnpg_restore_manifest(settings, "production")}]
    assert any("persistentvolumeclaims" in e for e in admission_errors(demand(with_restore, _issuers(result)), tight))


def test_sidecar_without_resources_gets_the_limit_range_default() -> None:
    objects = copy.deepcopy(in_namespace(production("backups"), "shop"))
    with_sidecar = demand(objects).mem_lim
    for m in objects:
        if m["kind"] == "ObjectStore":
            m["spec"].pop("instanceSidecarConfiguration")
    # 3 CNPG pods (2 instances + Job): 512Mi limit each from the ObjectStore vs 128Mi default
    assert with_sidecar - demand(objects).mem_lim == 3 * (512 - 128)


# --- Alertmanager's loader ----------------------------------------------------------------


def _alertmanager_config(result: ProgramResult) -> dict[str, Any]:
    (release,) = [
        x for x in result.of_type("kubernetes:helm.sh/v3:Release") if x.inputs["chart"] == "kube-prometheus-stack"
    ]
    values = unwrap(release.inputs["values"])
    c = contracts.contract(release.inputs["chart"], release.inputs["version"])
    merged: dict[str, Any] = contracts.coalesce(c.defaults, values)
    return dict(merged["alertmanager"]["config"])


@pytest.mark.parametrize("variant", ["monitoring", "k3s"])
def test_alertmanager_accepts_the_merged_config(variant: str) -> None:
    config = _alertmanager_config(production(variant))
    assert any(rcv.get("email_configs") for rcv in config["receivers"])
    assert monitoring.alertmanager_config_errors(config) == []
    assert clean(config)["global"]["smtp_smarthost"] == "smtp.example.com:587"


def test_alertmanager_loader_rules_refuse() -> None:
    config = _alertmanager_config(production("monitoring"))
    no_host = copy.deepcopy(config)
    del no_host["global"]["smtp_smarthost"]
    assert monitoring.alertmanager_config_errors(no_host) == ["receiver 'email': no global SMTP smarthost set"]
    undefined = copy.deepcopy(config)
    undefined["route"]["routes"].append({"receiver": "pager"})
    assert "undefined receiver 'pager' used in route" in monitoring.alertmanager_config_errors(undefined)
    twice = copy.deepcopy(config)
    twice["receivers"].append({"name": "null"})
    assert "notification config name 'null' is not unique" in monitoring.alertmanager_config_errors(twice)


def test_renderer_refuses_an_email_without_smtp() -> None:
    with pytest.raises(ValueError, match="smarthost"):
        monitoring.kube_prometheus_stack_values(grafana_admin_password="x", alert_email="a@b.co", smtp=None)
