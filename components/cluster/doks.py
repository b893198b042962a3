"""DigitalOcean Kubernetes (DOKS): a VPC, the cluster, and a Kubernetes provider for it."""

from __future__ import annotations

import base64
import os

import pulumi
import pulumi_digitalocean as digitalocean
import pulumi_kubernetes as kubernetes

from components.cluster.providers import ClusterHandle
from components.render.k8s import kubeconfig
from components.settings import Settings

# Weekly window for DOKS patch upgrades (UTC); surge upgrades keep capacity while nodes roll.
MAINTENANCE = {"day": "sunday", "start_time": "03:00"}


def resolve_version(prefix: str) -> pulumi.Output[str]:
    """The newest DOKS slug for `cluster.version` (e.g. 1.34 -> 1.34.1-do.0), never hard-coded.

    Used only inside `apply`: a lookup that answers nothing (mocks) yields no version
    instead of crashing the program.
    """
    result = digitalocean.get_kubernetes_versions_output(version_prefix=prefix)
    slug: pulumi.Output[str] = result.apply(lambda r: str(getattr(r, "latest_version", None) or ""))
    return slug


def api_token() -> pulumi.Output[str] | None:
    """The DigitalOcean token the user manages (`digitalocean:token`, or the env var the provider reads)."""
    configured = pulumi.Config("digitalocean").get_secret("token")
    if configured is not None:
        return pulumi.Output.secret(configured)
    env = os.environ.get("DIGITALOCEAN_TOKEN") or os.environ.get("DIGITALOCEAN_ACCESS_TOKEN")
    return pulumi.Output.secret(env) if env else None


def create(name: str, settings: Settings, opts: pulumi.ResourceOptions) -> ClusterHandle:
    cl = settings.cluster
    region = cl.region or "fra1"
    stack = pulumi.get_stack()
    base = f"{settings.app.name}-{stack}"
    protect = settings.protected

    vpc = digitalocean.Vpc(
        f"{name}-vpc",
        name=f"{base}-vpc",
        region=region,
        description=f"Ladder {settings.app.name} ({stack}): cluster and managed databases",
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=protect)),
    )
    cluster = digitalocean.KubernetesCluster(
        f"{name}-doks",
        name=base,
        region=region,
        version=resolve_version(cl.version),
        vpc_uuid=vpc.id,
        ha=cl.ha_control_plane,
        auto_upgrade=True,
        surge_upgrade=True,
        maintenance_policy=digitalocean.KubernetesClusterMaintenancePolicyArgs(**MAINTENANCE),
        # The default pool is part of the cluster resource: changing its size replaces the
        # whole cluster (terraform-provider-digitalocean#424). Keep it stable; add
        # `digitalocean.KubernetesNodePool`s for other sizes.
        node_pool=digitalocean.KubernetesClusterNodePoolArgs(
            name=f"{base}-default",
            size=cl.node_size or "s-2vcpu-4gb",
            auto_scale=True,
            min_nodes=cl.min_nodes,
            max_nodes=cl.max_nodes,
            labels={"ladder.dev/pool": "default"},
        ),
        tags=["ladder", f"ladder-{settings.app.name}", f"ladder-{stack}"],
        # The API answers only the allowlist (ladder:cluster.apiAllowFrom); without one it
        # stays open to the internet behind token authentication, as DOKS defaults.
        control_plane_firewall=(
            digitalocean.KubernetesClusterControlPlaneFirewallArgs(enabled=True, allowed_addresses=cl.api_allow_from)
            if cl.api_allow_from
            else None
        ),
        opts=pulumi.ResourceOptions.merge(
            opts,
            pulumi.ResourceOptions(
                protect=protect,
                # The autoscaler owns the node count. `version` is not ignored: the lookup
                # follows auto-upgrades to the newest patch, and a new prefix upgrades in place.
                ignore_changes=["nodePool.nodeCount"],
            ),
        ),
    )

    # DOKS kubeconfig tokens expire after 7 days and every refresh mints a new one
    # (pulumi/pulumi-digitalocean#312, #77, #445), which would rewrite the provider and,
    # without a cluster identifier, replace every object under it. Build the kubeconfig
    # from the endpoint and CA with the DigitalOcean API token the user controls instead.
    token = api_token()
    if token is None:
        pulumi.log.warn(
            "digitalocean:token is not set: the Kubernetes provider falls back to the cluster's "
            "7-day kubeconfig token; set it with `pulumi config set digitalocean:token --secret`"
        )
        token = cluster.kube_configs.apply(lambda kcs: _kube_config_field(kcs, "token", "token"))
    ca = cluster.kube_configs.apply(
        lambda kcs: _kube_config_field(kcs, "cluster_ca_certificate", "clusterCaCertificate")
    )
    config: pulumi.Output[str] = pulumi.Output.secret(
        pulumi.Output.all(cluster.endpoint, ca, token).apply(
            lambda a: kubeconfig(base, str(a[0] or ""), str(a[1] or ""), str(a[2] or ""))
        )
    )
    provider = kubernetes.Provider(
        f"{name}-k8s",
        kubeconfig=config,
        # Only a new cluster replaces the provider; a changed token is an update
        # (pulumi-kubernetes#2745, #4019).
        cluster_identifier=cluster.id,
        enable_server_side_apply=True,
        delete_unreachable=False,
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[cluster])),
    )
    if not cl.api_allow_from:
        pulumi.log.warn(
            "ladder:cluster.apiAllowFrom is empty: the Kubernetes API of this cluster is reachable from the "
            "internet (token authentication only); list your office/VPN and CI runner CIDRs to firewall it"
        )
    return ClusterHandle(
        provider=provider,
        kubeconfig=admin_kubeconfig(name, base, cluster.endpoint, ca, provider, opts),
        depends_on=[cluster],
        cluster_id=cluster.id,
        vpc_id=vpc.id,
        region=region,
        ships_metrics_server=False,
    )


ADMIN_ACCOUNT = "ladder-admin"
ADMIN_NAMESPACE = "kube-system"


def admin_kubeconfig(
    name: str,
    base: str,
    endpoint: pulumi.Input[str],
    ca: pulumi.Input[str],
    provider: kubernetes.Provider,
    opts: pulumi.ResourceOptions,
) -> pulumi.Output[str]:
    """The kubeconfig the stack exports: a ServiceAccount token bound to `cluster-admin`.

    Why not the provider's kubeconfig: that one authenticates with the DigitalOcean API
    token (`digitalocean:token`), which also creates and deletes droplets, databases and
    buckets account-wide; a kubeconfig handed to people and CI must open this cluster only.
    Why not `kube_configs[0].raw_config`: DigitalOcean's token in it expires after 7 days
    and every refresh mints a new one (pulumi-digitalocean#312, #77, #445), so the export
    would break weekly and churn on every `pulumi up`. A ServiceAccount token Secret
    (`kubernetes.io/service-account-token`) is valid for this cluster's API only, does not
    expire, and is revoked by deleting the Secret: `pulumi up --replace` on
    `<name>-admin-token` rotates it. pulumi-kubernetes waits until the token controller has
    filled the Secret in (pulumi-kubernetes#2048), so the token is in its `data`.
    """
    on_cluster = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(provider=provider))
    account = kubernetes.core.v1.ServiceAccount(
        f"{name}-admin",
        metadata={"name": ADMIN_ACCOUNT, "namespace": ADMIN_NAMESPACE},
        automount_service_account_token=False,
        opts=on_cluster,
    )
    kubernetes.rbac.v1.ClusterRoleBinding(
        f"{name}-admin",
        metadata={"name": ADMIN_ACCOUNT},
        role_ref={"api_group": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        subjects=[{"kind": "ServiceAccount", "name": ADMIN_ACCOUNT, "namespace": ADMIN_NAMESPACE}],
        opts=pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[account])),
    )
    secret = kubernetes.core.v1.Secret(
        f"{name}-admin-token",
        metadata={
            "name": f"{ADMIN_ACCOUNT}-token",
            "namespace": ADMIN_NAMESPACE,
            "annotations": {"kubernetes.io/service-account.name": ADMIN_ACCOUNT},
        },
        type="kubernetes.io/service-account-token",
        opts=pulumi.ResourceOptions.merge(
            on_cluster, pulumi.ResourceOptions(depends_on=[account], additional_secret_outputs=["data"])
        ),
    )
    token = secret.data.apply(_service_account_token)
    exported: pulumi.Output[str] = pulumi.Output.secret(
        pulumi.Output.all(endpoint, ca, token).apply(
            lambda a: kubeconfig(base, str(a[0] or ""), str(a[1] or ""), str(a[2] or ""))
        )
    )
    return exported


def _service_account_token(data: object) -> str:
    """`data.token` of a service-account-token Secret, decoded ("" until the controller fills it)."""
    encoded = data.get("token") if isinstance(data, dict) else None
    return base64.b64decode(str(encoded)).decode() if encoded else ""


def _kube_config_field(kube_configs: object, attr: str, key: str) -> str:
    """A field of the cluster's first kubeconfig entry (typed object, or a dict under mocks)."""
    if isinstance(kube_configs, list) and kube_configs:
        first = kube_configs[0]
        if isinstance(first, dict):
            return str(first.get(attr) or first.get(key) or "")
        return str(getattr(first, attr, "") or "")
    return ""
