"""Monitoring on the cluster rung: kube-prometheus-stack when `ladder:monitoring.enabled`."""

from __future__ import annotations

import pytest

from components import versions
from components.settings import ConfigError, parse_settings
from tests.cluster_helpers import MONITORING
from tests.helpers import cluster_config
from tools.harness import PlainMocks, is_secret, run_program, unwrap

# Set as `pulumi config set --secret --path` sets it (a plain smtpPassword is refused).
SMTP_PASSWORD = {"ladder:monitoring.smtpPassword": "smtp-secret-value"}


def test_enabled_monitoring_installs_the_pinned_chart_with_secret_values() -> None:
    result = run_program(
        "production", overrides={"ladder:monitoring": MONITORING}, secrets=SMTP_PASSWORD, mocks=PlainMocks()
    )
    assert result.error is None, result.error
    release = result.one("kubernetes:helm.sh/v3:Release", "monitoring-release")
    assert (release.inputs["chart"], release.inputs["version"]) == (
        versions.KUBE_PROMETHEUS_STACK.name,
        versions.KUBE_PROMETHEUS_STACK.version,
    )
    assert is_secret(release.inputs["values"])
    values = unwrap(release.inputs["values"])
    assert values["grafana"]["adminPassword"] == "mock-monitoring-grafana-password-Zx81"
    alertmanager = str(values["alertmanager"])
    assert "ops@shop.example.com" in alertmanager and "smtp.example.com:587" in alertmanager
    assert "smtp-secret-value" not in str(result.outputs)
    cluster = result.one("digitalocean:index/kubernetesCluster:KubernetesCluster")
    assert cluster.urn in release.dependencies


def test_monitoring_is_off_by_default() -> None:
    result = run_program("production")
    assert result.error is None, result.error
    assert "ladder:index:Monitoring" not in result.types()


def test_smtp_host_needs_a_sender() -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(
            cluster_config(monitoring={"enabled": True, "alertEmail": "a@b.co", "smtpHost": "smtp.x.io:587"})
        )
    assert "ladder:monitoring.smtpFrom" in str(info.value)


def test_alert_email_without_smtp_host_is_a_config_error_on_the_cluster_rung() -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(cluster_config(monitoring={"enabled": True, "alertEmail": "a@b.co"}))
    assert "ladder:monitoring.smtpHost" in str(info.value)


def test_prometheus_may_scrape_tenant_apps_only_when_monitoring_is_on() -> None:
    on = run_program("production", overrides={"ladder:monitoring": MONITORING}, secrets=SMTP_PASSWORD)
    policies = {
        r.inputs["metadata"]["name"]: r.inputs["spec"]
        for r in on.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    }
    scrape = policies["allow-prometheus"]
    source = scrape["ingress"][0]["from"][0]
    assert source["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}
    assert {p["port"] for p in scrape["ingress"][0]["ports"]} == {8080}
    off = run_program("production")
    names = {r.inputs["metadata"]["name"] for r in off.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    assert "allow-prometheus" not in names


def test_postgres_and_valkey_are_scraped_through_pod_monitors() -> None:
    from components import versions as v
    from tests.cluster_helpers import manifests, pod_spec, production

    result = production("monitoring")
    monitors = {m["metadata"]["name"]: m["spec"] for m in manifests(result, "PodMonitor")}
    assert monitors["postgres"]["selector"]["matchLabels"] == {
        "cnpg.io/cluster": "postgres",
        "cnpg.io/podRole": "instance",
    }
    assert monitors["valkey"]["podMetricsEndpoints"] == [{"port": "metrics"}]
    release = result.one("kubernetes:helm.sh/v3:Release", "monitoring-release")
    for name in ("shop-postgres-pod-monitor", "shop-valkey-pod-monitor"):
        assert release.urn in result.named(name).dependencies  # the chart's CRDs first
    (valkey,) = manifests(result, "StatefulSet")
    exporter = pod_spec(valkey)["containers"][1]
    assert exporter["image"] == v.VALKEY_EXPORTER_IMAGE
    assert exporter["ports"] == [{"name": "metrics", "containerPort": 9121, "protocol": "TCP"}]
    # without monitoring: no exporter, no PodMonitor
    assert len(pod_spec(manifests(production("doks"), "StatefulSet")[0])["containers"]) == 1
    assert not manifests(production("doks"), "PodMonitor")
