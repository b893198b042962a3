"""Platform releases every cluster gets: the ingress controller and cert-manager."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as kubernetes
import pulumi_random as random

from components import versions
from components.render import helm_values, monitoring
from components.render.k8s import (
    CERT_MANAGER_NAMESPACE,
    INGRESS_CONTROLLERS,
    ISSUER_PROD,
    ISSUER_STAGING,
    MONITORING_NAMESPACE,
    cluster_issuer,
)
from components.settings import IngressController, Settings
from components.versions import Chart

RETIRED_NGINX = (
    "ladder:cluster.ingress is ingress-nginx, which is retired upstream (no more releases or "
    "security fixes after March 2026): use traefik (the default) unless you are migrating"
)


def helm_release(
    name: str,
    chart: Chart,
    namespace: str,
    values: pulumi.Input[helm_values.Values],
    opts: pulumi.ResourceOptions,
    timeout: int = 600,
) -> kubernetes.helm.v3.Release:
    """A `helm.v3.Release` (runs hooks, unlike helm.v4.Chart: pulumi-kubernetes#3284) pinned by `versions`."""
    return kubernetes.helm.v3.Release(
        name,
        name=chart.name,
        chart=chart.name,
        version=chart.version,
        repository_opts=kubernetes.helm.v3.RepositoryOptsArgs(repo=chart.repo),
        namespace=namespace,
        create_namespace=True,
        values=values,
        atomic=True,
        cleanup_on_fail=True,
        timeout=timeout,
        max_history=10,
        opts=opts,
    )


def custom_resource(
    name: str, body: dict[str, Any], opts: pulumi.ResourceOptions
) -> kubernetes.apiextensions.CustomResource:
    """A custom resource from a rendered body (`apiVersion`, `kind`, `metadata`, `spec`)."""
    return kubernetes.apiextensions.CustomResource(
        name,
        api_version=body["apiVersion"],
        kind=body["kind"],
        metadata=body["metadata"],
        spec=body["spec"],
        opts=opts,
    )


@dataclass
class IngressArgs:
    controller: IngressController = "traefik"
    load_balancer_name: str | None = None
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class Ingress(pulumi.ComponentResource):
    """The ingress controller release, exposed by the cloud's load balancer."""

    def __init__(self, name: str, args: IngressArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ladder:index:Ingress", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=args.depends_on)
        ctrl = INGRESS_CONTROLLERS[args.controller]
        if args.controller == "ingress-nginx":
            pulumi.log.warn(RETIRED_NGINX, resource=self)
            chart, values = versions.INGRESS_NGINX_CHART, helm_values.ingress_nginx_values(args.load_balancer_name)
        else:
            chart, values = versions.TRAEFIK_CHART, helm_values.traefik_values(args.load_balancer_name)
        self.release = helm_release(f"{name}-{args.controller}", chart, ctrl["namespace"], values, child)
        self.ingress_class = ctrl["class"]
        self.namespace = ctrl["namespace"]
        self.register_outputs({"ingressClass": self.ingress_class, "namespace": self.namespace})


@dataclass
class CertManagerArgs:
    acme_email: str
    ingress_class: str
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    acme_server: str | None = None  # `ladder:acmeServer`: the production issuer's directory


class CertManager(pulumi.ComponentResource):
    """cert-manager (CRDs from the chart) and Let's Encrypt ClusterIssuers, production and staging.

    The issuers depend on the release, whose CRDs define them. On a brand-new cluster
    `pulumi preview` may still report "failed to determine if GVK is namespaced"
    (pulumi-kubernetes#3176) because the CRD does not exist yet; `pulumi up` creates the
    release first, or run `pulumi up --target '**cert-manager**'` once and then `pulumi up`.
    """

    def __init__(self, name: str, args: CertManagerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ladder:index:CertManager", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=args.depends_on)
        self.release = helm_release(
            f"{name}-release",
            versions.CERT_MANAGER_CHART,
            CERT_MANAGER_NAMESPACE,
            helm_values.cert_manager_values(),
            child,
        )
        self.issuers: dict[str, kubernetes.apiextensions.CustomResource] = {}
        for issuer in (ISSUER_PROD, ISSUER_STAGING):
            body = cluster_issuer(issuer, args.acme_email, args.ingress_class, args.acme_server)
            self.issuers[issuer] = kubernetes.apiextensions.CustomResource(
                f"{name}-{issuer}",
                api_version="cert-manager.io/v1",
                kind="ClusterIssuer",
                metadata=body["metadata"],
                spec=body["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
            )
        self.issuer = ISSUER_PROD
        self.register_outputs({"issuers": list(self.issuers)})


@dataclass
class MonitoringArgs:
    settings: Settings
    ingress_class: str
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class Monitoring(pulumi.ComponentResource):
    """kube-prometheus-stack: Prometheus, Grafana (generated admin password) and Alertmanager
    mailing `monitoring.alertEmail` through `monitoring.smtpHost`."""

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ladder:index:Monitoring", name, None, opts)
        m = args.settings.monitoring
        password = random.RandomPassword(
            f"{name}-grafana-password", length=24, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        smtp = (
            monitoring.SmtpSettings(smarthost=m.smtp_host, sender=m.smtp_from, username=m.smtp_user)
            if m.smtp_host and m.smtp_from
            else None
        )
        smtp_password = m.smtp_password.get_secret_value() if m.smtp_password else None
        values: pulumi.Output[helm_values.Values] = pulumi.Output.secret(
            password.result.apply(
                lambda pw: monitoring.kube_prometheus_stack_values(
                    grafana_admin_password=pw,
                    alert_email=m.alert_email,
                    smtp=smtp,
                    smtp_password=smtp_password,
                )
            )
        )
        self.release = helm_release(
            f"{name}-release",
            monitoring.CHART,
            MONITORING_NAMESPACE,
            values,
            pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
            timeout=900,
        )
        self.grafana_password = pulumi.Output.secret(password.result)
        self.register_outputs({"grafanaPassword": self.grafana_password})
