"""Helm values for kube-prometheus-stack (cluster rung), as a pure function.

Prometheus, Alertmanager and Grafana with resource requests and limits, a bounded
retention, the Grafana admin password passed in (a secret the rung generates with
`random.RandomPassword`), and Alertmanager emailing `ladder:monitoring.alertEmail`.
ServiceMonitors and PodMonitors from every namespace are picked up (not only the chart's
own), so an app that exposes metrics is scraped once it ships a ServiceMonitor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components import versions

CHART = versions.KUBE_PROMETHEUS_STACK


@dataclass(frozen=True)
class SmtpSettings:
    """Where Alertmanager sends mail from; the password is a secret the caller supplies."""

    smarthost: str  # host:port, e.g. smtp.sendgrid.net:587
    sender: str
    username: str | None = None
    require_tls: bool = True


def _resources(cpu: str, memory: str, cpu_limit: str | None = None, memory_limit: str | None = None) -> dict[str, Any]:
    return {
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"cpu": cpu_limit or cpu, "memory": memory_limit or memory},
    }


def kube_prometheus_stack_values(
    *,
    grafana_admin_password: str,
    alert_email: str | None,
    smtp: SmtpSettings | None = None,
    smtp_password: str | None = None,
    retention_days: int = 15,
    storage_gb: int = 20,
    grafana_host: str | None = None,
    ingress_class: str | None = None,
) -> dict[str, Any]:
    """Values for the pinned `CHART`; plain data, checked as data in the tests.

    Without `alert_email` Alertmanager keeps the chart's null receiver (alerts stay
    visible in its UI). With it, a `email` receiver becomes the default route; critical
    alerts repeat every 4h, others every 12h.
    """
    if not grafana_admin_password:
        raise ValueError("grafana_admin_password must not be empty")
    if not 1 <= retention_days <= 365:
        raise ValueError("retention_days must be within 1..365")

    alertmanager: dict[str, Any] = {
        "alertmanagerSpec": {
            "retention": "120h",
            "resources": _resources("25m", "64Mi", "200m", "128Mi"),
            "storage": {
                "volumeClaimTemplate": {
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
                }
            },
        }
    }
    if alert_email:
        global_cfg: dict[str, Any] = {"resolve_timeout": "5m"}
        if smtp:
            global_cfg.update({"smtp_smarthost": smtp.smarthost, "smtp_from": smtp.sender})
            global_cfg["smtp_require_tls"] = smtp.require_tls
            if smtp.username:
                global_cfg["smtp_auth_username"] = smtp.username
            if smtp_password:
                global_cfg["smtp_auth_password"] = smtp_password
        alertmanager["config"] = {
            "global": global_cfg,
            "route": {
                "receiver": "email",
                "group_by": ["alertname", "namespace"],
                "group_wait": "30s",
                "group_interval": "5m",
                "repeat_interval": "12h",
                "routes": [
                    {"receiver": "null", "matchers": ['alertname = "Watchdog"']},
                    {"receiver": "email", "matchers": ['severity = "critical"'], "repeat_interval": "4h"},
                ],
            },
            "receivers": [
                {"name": "null"},
                {"name": "email", "email_configs": [{"to": alert_email, "send_resolved": True}]},
            ],
            "inhibit_rules": [
                {
                    "source_matchers": ['severity = "critical"'],
                    "target_matchers": ['severity =~ "warning|info"'],
                    "equal": ["namespace", "alertname"],
                }
            ],
        }

    grafana: dict[str, Any] = {
        "adminUser": "admin",
        "adminPassword": grafana_admin_password,
        "resources": _resources("50m", "128Mi", "500m", "256Mi"),
        "persistence": {"enabled": False},
        "defaultDashboardsTimezone": "utc",
    }
    if grafana_host:
        grafana["ingress"] = {
            "enabled": True,
            "hosts": [grafana_host],
            "tls": [{"secretName": "grafana-tls", "hosts": [grafana_host]}],
            "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
        }
        if ingress_class:
            grafana["ingress"]["ingressClassName"] = ingress_class

    return {
        "fullnameOverride": "kps",
        "crds": {"enabled": True},
        "defaultRules": {"create": True},
        "prometheus": {
            "prometheusSpec": {
                "retention": f"{retention_days}d",
                "retentionSize": f"{max(1, int(storage_gb * 0.85))}GB",
                "resources": _resources("200m", "512Mi", "1", "2Gi"),
                # Scrape every ServiceMonitor/PodMonitor/rule in the cluster, not only the chart's.
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
                "ruleSelectorNilUsesHelmValues": False,
                "storageSpec": {
                    "volumeClaimTemplate": {
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": f"{storage_gb}Gi"}},
                        }
                    }
                },
            }
        },
        "alertmanager": alertmanager,
        "grafana": grafana,
        "prometheusOperator": {"resources": _resources("50m", "128Mi", "200m", "256Mi")},
        "kube-state-metrics": {"resources": _resources("25m", "64Mi", "100m", "128Mi")},
        "prometheus-node-exporter": {"resources": _resources("25m", "32Mi", "100m", "64Mi")},
        # Managed control planes (DOKS) do not expose these; their alerts would only be noise.
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeEtcd": {"enabled": False},
        "kubeProxy": {"enabled": False},
    }
