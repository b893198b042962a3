"""Helm values for kube-prometheus-stack (cluster rung), as a pure function.

Prometheus, Alertmanager and Grafana with resource requests and limits, a bounded
retention, the Grafana admin password passed in (a secret the rung generates with
`random.RandomPassword`), and Alertmanager emailing `ladder:monitoring.alertEmail`.
ServiceMonitors and PodMonitors from every namespace are picked up (not only the chart's
own), so an app that exposes metrics is scraped once it ships a ServiceMonitor.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from components import versions
from components.image_ref import parse_image
from components.render.k8s import ISSUER_PROD

CHART = versions.KUBE_PROMETHEUS_STACK


def _busybox_image() -> dict[str, Any]:
    """The CRD upgrade Job's busybox, pinned by tag and digest in the chart's own keys.

    The chart (charts/crds/templates/upgrade/job.yaml at kube-prometheus-stack-88.5.3)
    renders `<registry>/<repository>:<busybox.tag>@sha256:<busybox.sha>`, but only when
    `upgradeJob.image.sha` is set: its condition reads that key, not `busybox.sha` (the
    kubectl image's reads `kubectl.sha`). Both are set to the same hex digest so the
    digest is rendered; `image.sha` is listed in tools/contracts.py's DOCUMENTED keys.
    """
    busybox = parse_image(versions.BUSYBOX_IMAGE)
    return {"sha": busybox.digest_hex, "busybox": {"tag": busybox.tag, "sha": busybox.digest_hex}}


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
    if alert_email and smtp is None:
        # settings refuse this (ladder:monitoring.smtpHost); Alertmanager would refuse it too.
        raise ValueError("an alert email needs SMTP settings: Alertmanager has no smarthost to mail through")

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
            "annotations": {"cert-manager.io/cluster-issuer": ISSUER_PROD},
        }
        if ingress_class:
            grafana["ingress"]["ingressClassName"] = ingress_class

    return {
        "fullnameOverride": "kps",
        # The chart's pre-upgrade hook Job applies the CRDs of the new operator version
        # (Helm never upgrades CRDs itself); busybox pinned instead of the chart's `latest`.
        "crds": {"enabled": True, "upgradeJob": {"enabled": True, "image": _busybox_image()}},
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


def _route_receivers(route: dict[str, Any]) -> Iterator[str]:
    if route.get("receiver"):
        yield str(route["receiver"])
    for child in route.get("routes") or []:
        yield from _route_receivers(child)


def alertmanager_config_errors(config: dict[str, Any]) -> list[str]:
    """What Alertmanager's config loader (prometheus/alertmanager config/config.go) refuses,
    for the parts Ladder writes: a root route with a default receiver and no matchers,
    unique receiver names, every routed receiver defined, and every email config with a
    `to`, a smarthost and a sender, set on the config or globally. A refused config stops
    the operator from reconciling Alertmanager, so the tests run this on the merged values."""
    errors: list[str] = []
    glob = config.get("global") or {}
    route = config.get("route") or {}
    if not route.get("receiver"):
        errors.append("root route must specify a default receiver")
    if route.get("matchers") or route.get("match") or route.get("match_re"):
        errors.append("root route must not have any matchers")
    names = [str(r.get("name")) for r in config.get("receivers") or []]
    for name in sorted({n for n in names if names.count(n) > 1}):
        errors.append(f"notification config name {name!r} is not unique")
    for used in sorted(set(_route_receivers(route)) - set(names)):
        errors.append(f"undefined receiver {used!r} used in route")
    for receiver in config.get("receivers") or []:
        for ec in receiver.get("email_configs") or []:
            where = f"receiver {receiver.get('name')!r}: "
            if not ec.get("to"):
                errors.append(where + "missing to address in email config")
            if not ec.get("smarthost") and not glob.get("smtp_smarthost"):
                errors.append(where + "no global SMTP smarthost set")
            if not ec.get("from") and not glob.get("smtp_from"):
                errors.append(where + "no global SMTP from set")
    return errors
