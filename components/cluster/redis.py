"""`ladder:index:Redis` on the cluster rung: Valkey (official image) per tenant, or DigitalOcean managed Valkey."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as kubernetes
import pulumi_random as random

from components import versions
from components.cluster.data import TenantStore
from components.cluster.platform import custom_resource
from components.cluster.providers import ClusterHandle
from components.render import k8s as r
from components.render.urls import redis_url
from components.settings import Settings


@dataclass
class RedisArgs:
    settings: Settings
    cluster: ClusterHandle
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    # kube-prometheus-stack's release (its CRDs define PodMonitor), when monitoring is on.
    monitoring: pulumi.Resource | None = None


class Redis(pulumi.ComponentResource):
    """Valkey in each tenant's namespace (reachable only from that tenant's app), or one managed cluster."""

    def __init__(self, name: str, args: RedisArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ladder:index:Redis", name, None, opts)
        s = args.settings
        self._settings = s
        self._protect = s.protected
        self._monitoring = args.monitoring
        self.mode = s.redis.mode
        if self.mode == "managed":
            from components import do_common

            if args.cluster.cluster_id is None:
                raise ValueError("ladder:redis.mode managed needs a DigitalOcean cluster (provider digitalocean)")
            self.db_cluster = do_common.managed_database(
                name,
                s,
                "valkey",
                args.cluster.region or "fra1",
                args.cluster.vpc_id,
                [("k8s", args.cluster.cluster_id)],
                pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({"mode": self.mode})

    def for_tenant(self, spec: r.TenantSpec, namespace: kubernetes.core.v1.Namespace) -> TenantStore | None:
        tenant = spec.tenant.name
        if self.mode == "container":
            after = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
            password = random.RandomPassword(f"{tenant}-valkey-password", length=32, special=False, opts=after)
            secret = kubernetes.core.v1.Secret(
                f"{tenant}-valkey-password",
                metadata=r.meta("valkey-password", spec.namespace, spec),
                type="Opaque",
                string_data=pulumi.Output.secret(password.result.apply(lambda pw: {"password": pw})),
                opts=after,
            )
            svc = r.valkey_service(spec)
            service = kubernetes.core.v1.Service(
                f"{tenant}-valkey", metadata=svc["metadata"], spec=svc["spec"], opts=after
            )
            sts = r.valkey_statefulset(
                spec,
                versions.VALKEY_IMAGES[self._settings.redis.version],
                "valkey-password",
                versions.VALKEY_EXPORTER_IMAGE if self._monitoring is not None else None,
            )
            statefulset = kubernetes.apps.v1.StatefulSet(
                f"{tenant}-valkey",
                metadata=sts["metadata"],
                spec=sts["spec"],
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[namespace, secret, service], protect=self._protect
                ),
            )
            if self._monitoring is not None:
                custom_resource(
                    f"{tenant}-valkey-pod-monitor",
                    r.valkey_pod_monitor(spec),
                    pulumi.ResourceOptions(parent=self, depends_on=[statefulset, self._monitoring]),
                )
            host = f"{r.VALKEY}.{spec.namespace}.svc.cluster.local"
            return TenantStore(
                url=redis_url(password.result, host, r.VALKEY_PORT),
                host=pulumi.Output.from_input(host),
                ready=[statefulset],
            )
        if self.mode == "managed":
            # One managed Valkey for all tenants: DO's Valkey has no per-tenant users, so
            # tenants share it (prefix keys by LADDER_TENANT). Use container mode for isolation.
            return TenantStore(
                url=pulumi.Output.secret(self.db_cluster.private_uri),
                host=self.db_cluster.private_host,
                ready=[self.db_cluster],
            )
        return None
