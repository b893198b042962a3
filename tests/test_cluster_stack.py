"""The cluster rung under mocks: DOKS and existing clusters, platform ordering, data modes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.render.k8s import release_job_name
from tests.cluster_helpers import EXISTING_KUBECONFIG, USER_TOKEN, by_kind, production, urn_of
from tools.exposure import exposures
from tools.harness import PlainMocks, run_program
from tools.manifests import clean

DO_CLUSTER = "digitalocean:index/kubernetesCluster:KubernetesCluster"
RELEASE = "kubernetes:helm.sh/v3:Release"


def _release(result: Any, chart: str) -> Any:
    found = [r for r in result.resources if r.type == RELEASE and r.inputs.get("chart") == chart]
    assert len(found) == 1, chart
    return found[0]


def test_production_under_the_plainest_mock() -> None:
    result = run_program("production", mocks=PlainMocks())
    assert result.error is None, result.error
    assert result.outputs["url"] == "https://shop.example.com"
    assert "kubeconfig" in result.secret_outputs
    assert result.outputs["monthlyCost"]["total"] > 0


def test_component_tokens() -> None:
    types = production("doks").types()
    for token in (
        "ladder:index:ClusterStack",
        "ladder:index:Ingress",
        "ladder:index:CertManager",
        "ladder:index:Postgres",
        "ladder:index:Redis",
        "ladder:index:App",
    ):
        assert token in types


def test_doks_cluster_shape() -> None:
    result = production("doks")
    vpc = result.one("digitalocean:index/vpc:Vpc")
    cluster = result.one(DO_CLUSTER)
    inputs = cluster.inputs
    assert inputs["version"] == "1.34.5-do.0"  # resolved from the "1.34" prefix by the lookup
    assert inputs["region"] == "fra1"
    assert inputs["autoUpgrade"] is True and inputs["surgeUpgrade"] is True
    assert inputs["maintenancePolicy"]["day"] == "sunday"
    assert inputs["ha"] is False
    pool = inputs["nodePool"]
    assert pool["autoScale"] is True
    assert (pool["minNodes"], pool["maxNodes"], pool["size"]) == (2, 5, "s-2vcpu-4gb")
    assert vpc.urn in cluster.dependencies
    assert cluster.protect and vpc.protect
    assert "nodePool.nodeCount" in cluster.ignore_changes


def test_doks_provider_uses_user_token_and_cluster_identifier() -> None:
    result = production("doks")
    provider = result.one("pulumi:providers:kubernetes")
    kubeconfig = json.loads(clean(provider.inputs["kubeconfig"]) and provider.inputs["kubeconfig"]["value"])
    assert kubeconfig["users"][0]["user"]["token"] == USER_TOKEN
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://k8s.example.invalid"
    assert "mock-do-token" not in json.dumps(kubeconfig)  # never the cluster's 7-day token
    assert provider.inputs["clusterIdentifier"]  # the cluster's id
    assert urn_of(result, "shop-doks", "KubernetesCluster") in provider.dependencies
    # every Kubernetes object goes through this provider
    for r in result.resources:
        if r.type.startswith("kubernetes:"):
            assert r.provider.startswith(provider.urn), r.name


def test_existing_cluster_creates_no_cloud_resources() -> None:
    result = production("existing")
    assert not [r for r in result.resources if r.type.startswith("digitalocean:")]
    provider = result.one("pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"]["value"] == EXISTING_KUBECONFIG
    assert provider.inputs["clusterIdentifier"].startswith("existing-")
    assert result.outputs["monthlyCost"]["total"] == 0
    assert {"ladder:index:App", "ladder:index:Ingress"} <= result.types()


def test_existing_without_server_has_no_identifier() -> None:
    result = run_program("production", overrides={"ladder:provider": "existing"})
    assert result.error is None, result.error
    provider = result.one("pulumi:providers:kubernetes")
    assert "clusterIdentifier" not in provider.inputs


def test_platform_ordering() -> None:
    result = production("doks")
    cert_manager = _release(result, "cert-manager")
    assert cert_manager.inputs["values"]["crds"]["enabled"] is True
    issuers = by_kind(result, "ClusterIssuer")
    assert {i.inputs["metadata"]["name"] for i in issuers} == {"letsencrypt-prod", "letsencrypt-staging"}
    servers = {i.inputs["spec"]["acme"]["server"] for i in issuers}
    assert any("staging" in s for s in servers) and any("staging" not in s for s in servers)
    for issuer in issuers:
        assert cert_manager.urn in issuer.dependencies
        assert issuer.inputs["spec"]["acme"]["email"] == "ops@shop.example.com"
    traefik = _release(result, "traefik")
    ingress = result.one("kubernetes:networking.k8s.io/v1:Ingress")
    assert traefik.urn in ingress.dependencies
    assert all(i.urn in ingress.dependencies for i in issuers)
    cnpg = _release(result, "cloudnative-pg")
    pg = result.one("kubernetes:postgresql.cnpg.io/v1:Cluster")
    assert cnpg.urn in pg.dependencies
    for release in (cert_manager, traefik, cnpg):
        assert release.inputs["version"] and release.inputs["repositoryOpts"]["repo"].startswith("https://")


def test_traefik_is_the_default_and_nginx_warns(caplog: pytest.LogCaptureFixture) -> None:
    assert _release(production("doks"), "traefik").inputs["values"]["service"]["spec"]["type"] == "LoadBalancer"
    result = run_program(
        "production", overrides={"ladder:cluster.ingress": "ingress-nginx"}, secrets={"digitalocean:token": USER_TOKEN}
    )
    assert result.error is None
    assert _release(result, "ingress-nginx")
    assert not [r for r in result.resources if r.type == RELEASE and r.inputs.get("chart") == "traefik"]
    assert "retired upstream" in caplog.text
    assert result.one("kubernetes:networking.k8s.io/v1:Ingress").inputs["spec"]["ingressClassName"] == "nginx"


def test_metrics_server_on_doks_only() -> None:
    # DOKS ships none (the HPAs would never scale); k3s bundles it; existing: the user's.
    release = _release(production("doks"), "metrics-server")
    assert (release.inputs["version"], release.inputs["namespace"]) == ("3.13.1", "kube-system")
    assert not [r for r in production("existing").of_type(RELEASE) if r.inputs["chart"] == "metrics-server"]
    assert not [r for r in production("k3s").of_type(RELEASE) if r.inputs["chart"] == "metrics-server"]


def test_load_balancer_is_the_only_exposure() -> None:
    exposed = {(e.port, e.source) for e in exposures(production("doks"))}
    assert exposed == {("80/tcp", "0.0.0.0/0"), ("443/tcp", "0.0.0.0/0")}


def test_deployments_wait_for_release_job_and_data() -> None:
    result = production("doks")
    job = result.one("kubernetes:batch/v1:Job")
    pg = result.one("kubernetes:postgresql.cnpg.io/v1:Cluster")
    valkey = result.one("kubernetes:apps/v1:StatefulSet")
    assert pg.urn in job.dependencies and valkey.urn in job.dependencies
    for deployment in by_kind(result, "Deployment"):
        assert job.urn in deployment.dependencies
    assert pg.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Ready"


def test_release_job_name_follows_the_image() -> None:
    before = production("doks").one("kubernetes:batch/v1:Job")
    after = production("bumped").one("kubernetes:batch/v1:Job")
    assert before.inputs["metadata"]["name"] != after.inputs["metadata"]["name"]
    assert before.name != after.name
    assert after.inputs["metadata"]["name"].startswith("release-")


def test_release_job_name_is_stable_for_the_same_image() -> None:
    from components.settings import App

    app = App.model_validate(
        {
            "name": "shop",
            "release": {"service": "api", "command": ["migrate"]},
            "services": {"api": {"image": "ghcr.io/acme/api:1.0.0", "port": 8000}},
        }
    )
    assert release_job_name(app) == release_job_name(app.model_copy())
    bumped = app.model_copy(update={"services": {"api": app.services["api"].model_copy(update={"image": "x/y:2"})}})
    assert release_job_name(bumped) != release_job_name(app)


def test_stateful_resources_are_protected() -> None:
    result = production("doks")
    assert result.one("kubernetes:postgresql.cnpg.io/v1:Cluster").protect
    assert result.one("kubernetes:apps/v1:StatefulSet").protect
    unprotected = run_program(
        "production", overrides={"ladder:protect": False}, secrets={"digitalocean:token": USER_TOKEN}
    )
    assert not any(r.protect for r in unprotected.resources)


def test_managed_valkey_in_the_vpc_behind_a_firewall() -> None:
    result = production("managed-valkey")
    clusters = result.of_type("digitalocean:index/databaseCluster:DatabaseCluster")
    assert {c.inputs["engine"] for c in clusters} == {"pg", "valkey"}
    vpc = result.one("digitalocean:index/vpc:Vpc")
    for c in clusters:
        assert c.protect and vpc.urn in c.dependencies
    assert len(result.of_type("digitalocean:index/databaseFirewall:DatabaseFirewall")) == 2
    names = [i["name"] for i in result.outputs["monthlyCost"]["items"]]
    assert any("managed Valkey" in n for n in names)


def test_managed_data_in_the_vpc_behind_a_firewall() -> None:
    result = production("managed")
    clusters = result.of_type("digitalocean:index/databaseCluster:DatabaseCluster")
    assert {c.inputs["engine"] for c in clusters} == {"pg"}
    vpc = result.one("digitalocean:index/vpc:Vpc")
    doks = result.one(DO_CLUSTER)
    for c in clusters:
        assert c.protect
        assert vpc.urn in c.dependencies  # private_network_uuid = the VPC
    pg = next(c for c in clusters if c.inputs["engine"] == "pg")
    assert pg.inputs["nodeCount"] == 2
    firewalls = result.of_type("digitalocean:index/databaseFirewall:DatabaseFirewall")
    assert len(firewalls) == 1
    for fw in firewalls:
        assert [rule["type"] for rule in fw.inputs["rules"]] == ["k8s"]
        assert doks.urn in fw.dependencies
    dbs = result.of_type("digitalocean:index/databaseDb:DatabaseDb")
    users = result.of_type("digitalocean:index/databaseUser:DatabaseUser")
    assert len(dbs) == len(users) == 2
    assert len({d.inputs["name"] for d in dbs}) == 2
    assert not by_kind(result, "Cluster")
    assert not [r for r in result.resources if r.type == RELEASE and r.inputs.get("chart") == "cloudnative-pg"]
    names = [i["name"] for i in result.outputs["monthlyCost"]["items"]]
    assert any("managed Postgres" in n for n in names)


def test_cnpg_backups_use_the_barman_cloud_plugin() -> None:
    result = production("backups")
    plugin = _release(result, "plugin-barman-cloud")
    assert _release(result, "cloudnative-pg").urn in plugin.dependencies
    pg = result.one("kubernetes:postgresql.cnpg.io/v1:Cluster")
    assert pg.inputs["spec"]["plugins"][0]["name"] == "barman-cloud.cloudnative-pg.io"
    assert "backup" not in pg.inputs["spec"]  # no deprecated in-tree barmanObjectStore
    store = result.one("kubernetes:barmancloud.cnpg.io/v1:ObjectStore")
    config = store.inputs["spec"]["configuration"]
    assert config["destinationPath"] == "s3://shop-backups/production/shop"  # stack, then namespace
    assert config["endpointURL"] == "https://fra1.digitaloceanspaces.com"
    assert store.inputs["spec"]["retentionPolicy"] == "14d"
    scheduled = result.one("kubernetes:postgresql.cnpg.io/v1:ScheduledBackup")
    assert scheduled.inputs["spec"]["schedule"] == "0 0 */6 * * *"  # seconds field first
    assert scheduled.inputs["spec"]["method"] == "plugin"
    creds = [r for r in by_kind(result, "Secret") if r.inputs["metadata"]["name"] == "backup-credentials"]
    assert len(creds) == 1 and "AKIAEXAMPLE" not in json.dumps(clean(creds[0].inputs))


def test_cost_grows_linearly_with_tenants() -> None:
    from tests.cluster_helpers import tenants

    totals = []
    for n in (1, 2, 3):
        result = run_program(
            "production", overrides={"ladder:tenants": tenants(n)}, secrets={"digitalocean:token": USER_TOKEN}
        )
        assert result.error is None
        totals.append(result.outputs["monthlyCost"]["total"])
    assert round(totals[2] - totals[1], 2) == round(totals[1] - totals[0], 2) > 0


def test_tenant_namespace_is_protected_with_its_data() -> None:
    assert all(ns.protect for ns in production("three").of_type("kubernetes:core/v1:Namespace"))


def test_helm_values_as_data() -> None:
    import yaml

    from components.artifacts import rendered_files
    from tools.plan import _settings_of

    files = rendered_files(_settings_of(production("doks")))
    traefik = yaml.safe_load(files["helm/traefik.values.yaml"])
    assert traefik["service"]["spec"]["type"] == "LoadBalancer"
    assert traefik["ingressClass"] == {"enabled": True, "isDefaultClass": True, "name": "traefik"}
    assert traefik["providers"]["kubernetesIngress"]["enabled"] is True
    assert isinstance(traefik["deployment"]["replicas"], int)
    cert_manager = yaml.safe_load(files["helm/cert-manager.values.yaml"])
    assert cert_manager["crds"] == {"enabled": True, "keep": True}
    assert "helm/cloudnative-pg.values.yaml" in files


def test_acme_server_reaches_the_production_cluster_issuer() -> None:
    """`ladder:acmeServer` is one key for every rung: Caddy's CA on a VPS, the production
    ClusterIssuer's directory on a cluster (staging stays Let's Encrypt staging)."""
    staging_ca = "https://acme-staging-v02.api.letsencrypt.org/directory"
    other = "https://acme.example.test/directory"

    def servers(result: Any) -> dict[str, str]:
        issuers = [r for r in result.resources if r.inputs.get("kind") == "ClusterIssuer"]
        return {r.inputs["metadata"]["name"]: r.inputs["spec"]["acme"]["server"] for r in issuers}

    assert servers(production("doks"))["letsencrypt-prod"] == "https://acme-v02.api.letsencrypt.org/directory"
    result = run_program(
        "production", overrides={"ladder:acmeServer": other}, secrets={"digitalocean:token": USER_TOKEN}
    )
    assert result.error is None, result.error
    assert servers(result) == {"letsencrypt-prod": other, "letsencrypt-staging": staging_ca}


def test_managed_postgres_is_verified_against_its_ca() -> None:
    """sslmode=require encrypts but accepts any certificate: the URL says verify-full with the
    cluster's CA (`digitalocean.get_database_ca`), which every app container mounts."""
    from components.render import k8s as r
    from tests.cluster_helpers import manifests, pod_spec

    result = production("managed")
    maps = [m for m in manifests(result, "ConfigMap") if m["metadata"]["name"] == r.DB_CA_CONFIG_MAP]
    namespaces = {m["metadata"]["name"] for m in manifests(result, "Namespace")}
    assert len(maps) == 2 and all(r.DB_CA_FILE in m["data"] for m in maps), maps
    assert {m["metadata"]["namespace"] for m in maps} <= namespaces  # one per tenant namespace
    workloads = [*manifests(result, "Deployment"), *manifests(result, "Job")]
    assert workloads
    for w in workloads:
        spec = pod_spec(w)
        assert {"name": "database-ca", "configMap": {"name": r.DB_CA_CONFIG_MAP}} in spec["volumes"]
        for c in spec["containers"]:
            assert {"name": "database-ca", "mountPath": r.DB_CA_DIR, "readOnly": True} in c["volumeMounts"]
    assert r.DB_CA_PARAMS == "sslmode=verify-full&sslrootcert=/etc/ladder/database-ca/ca.crt"
    urls = [
        s.inputs["stringData"]["value"]["DATABASE_URL"]
        for s in result.of_type("kubernetes:core/v1:Secret")
        if s.inputs["metadata"]["name"] == r.APP_SECRET
    ]
    assert len(urls) == 2 and all(u.endswith("?" + r.DB_CA_PARAMS) for u in urls), urls


def test_in_cluster_postgres_mounts_no_ca() -> None:
    from tests.cluster_helpers import manifests, pod_spec

    for w in manifests(production("doks"), "Deployment"):
        assert all(v["name"] != "database-ca" for v in pod_spec(w)["volumes"])
