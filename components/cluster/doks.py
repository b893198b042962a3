"""DigitalOcean Kubernetes (DOKS): a VPC, the cluster, and a Kubernetes provider for it."""

from __future__ import annotations

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
    return ClusterHandle(
        provider=provider,
        kubeconfig=config,
        depends_on=[cluster],
        cluster_id=cluster.id,
        vpc_id=vpc.id,
        region=region,
        ships_metrics_server=False,
    )


def _kube_config_field(kube_configs: object, attr: str, key: str) -> str:
    """A field of the cluster's first kubeconfig entry (typed object, or a dict under mocks)."""
    if isinstance(kube_configs, list) and kube_configs:
        first = kube_configs[0]
        if isinstance(first, dict):
            return str(first.get(attr) or first.get(key) or "")
        return str(getattr(first, attr, "") or "")
    return ""
