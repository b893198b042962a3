"""`ladder:index:ClusterStack`: the cluster, its platform releases, the data stores and one App per tenant."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as kubernetes

from components import backup_buckets, images, versions
from components.buckets import Buckets, BucketsArgs, Keys
from components.cluster.app import App, AppArgs
from components.cluster.data import TenantStore
from components.cluster.platform import (
    CertManager,
    CertManagerArgs,
    Ingress,
    IngressArgs,
    Monitoring,
    MonitoringArgs,
    helm_release,
)
from components.cluster.postgres import Postgres, PostgresArgs, backups_enabled, user_backup_keys
from components.cluster.providers import create_cluster
from components.cluster.redis import Redis, RedisArgs
from components.render import appenv, helm_values
from components.render import k8s as r
from components.render import k8s_extras as x
from components.settings import Settings, backs_up_archives

ANYWHERE = "0.0.0.0/0"


def tenant_label(s: Settings, stack: str, tenant: str) -> str:
    """What names a tenant's own buckets: the stack alone for the app's own tenant."""
    return stack if tenant == s.app.name else f"{stack}-{tenant}"


def tenant_specs(s: Settings, built: images.ServiceImages | None = None, stack: str = "stack") -> list[r.TenantSpec]:
    """Each tenant's render input; pure, so tests and the benchmark use it directly.

    `built` carries the images built from source (their digests); without it every
    service runs its configured or planned reference. `stack` names the tenants' buckets.
    """
    data = r.DataAccess(
        postgres_in_namespace=s.postgres.mode == "operator",
        valkey_in_namespace=s.redis.mode == "container",
        external=tuple(_external_ports(s)),
    )
    return [
        r.TenantSpec(
            app=s.app,
            tenant=t,
            ingress=s.cluster.ingress,
            data=data,
            postgres_instances=s.postgres.instances if s.postgres.mode == "operator" else 0,
            postgres_storage_gb=s.postgres.storage_gb if s.postgres.mode == "operator" else 0,
            valkey_storage_gb=r.valkey_storage_gb(s.redis.max_memory_mb) if s.redis.mode == "container" else 0,
            valkey_max_memory_mb=s.redis.max_memory_mb if s.redis.mode == "container" else 0,
            monitoring=s.monitoring.enabled,
            backups=s.postgres.mode == "operator" and backups_enabled(s),
            images=dict(built.references) if built else {},
            planned_images=dict(built.planned) if built else {},
            # Every configured registry has a login (given, or minted for DOCR).
            pull_secret=r.PULL_SECRET if s.registries else None,
            accessories=tuple(sorted(s.accessories.items())),
            egress=tuple(s.egress),
            extra_env=tuple(sorted(_tenant_env(s, stack, t.name).items())),
            backup_schedule=s.backups.schedule if s.backups is not None and backups_enabled(s) else None,
            db_ca=s.postgres.mode == "managed",
            postgres_dump_image=versions.CNPG_POSTGRES_IMAGES[s.postgres.version] if dumps_postgres(s) else None,
            backup_port=_backup_port(s),
        )
        for t in s.effective_tenants
    ]


def dumps_postgres(s: Settings) -> bool:
    """A sealed `pg_dump` per tenant beside Barman: CloudNativePG, backups on and a passphrase
    (without `backups.encryptionKey` Postgres is backed up by Barman alone)."""
    b = s.backups
    return s.postgres.mode == "operator" and backups_enabled(s) and b is not None and b.encryption_key is not None


def _backup_port(s: Settings) -> int:
    endpoint = s.backups.endpoint if s.backups is not None else None
    return (urlsplit(endpoint).port or 443) if endpoint else 443


def _tenant_env(s: Settings, stack: str, tenant: str) -> dict[str, str]:
    namespace = r.namespace_name(s.app.name, tenant)

    def host(name: str) -> str:
        return f"{name}.{namespace}.svc.cluster.local"

    return appenv.extra_env(s, tenant_label(s, stack, tenant), host)


def backup_target(s: Settings, stack: str, tenant: str) -> x.BackupTarget | None:
    """Volume and accessory backups go beside the tenant's Postgres backups: `<stack>/<namespace>/volumes/`,
    its sealed database dumps to `<stack>/<namespace>/dumps/postgres/`."""
    if s.backups is None or not backups_enabled(s):
        return None
    return archive_target(s, stack, tenant)


def archive_target(s: Settings, stack: str, tenant: str) -> x.BackupTarget:
    """Where a tenant's archives are, whether or not this config holds the keys (the restore plan):
    the tenant's bucket (`backup_buckets.tenant_backup_bucket`), under its namespace."""
    b = s.backups
    assert b is not None
    namespace = r.namespace_name(s.app.name, tenant)
    return x.BackupTarget(
        bucket=backup_buckets.tenant_backup_bucket(s, tenant),
        region=b.region,
        prefix=f"{stack}/{namespace}/volumes",
        endpoint=b.endpoint,
        dumps=f"{stack}/{namespace}/dumps",
    )


def _external_ports(s: Settings) -> list[tuple[int, str]]:
    """Egress for stores outside the cluster; the database firewall is the real perimeter."""
    ports: list[tuple[int, str]] = []
    if s.postgres.mode == "managed":
        ports.append((25060, ANYWHERE))
    if s.redis.mode == "managed":
        ports.append((25061, ANYWHERE))
    for mode, key, default in ((s.postgres.mode, "DATABASE_URL", 5432), (s.redis.mode, "REDIS_URL", 6379)):
        if mode == "external":
            try:
                port = urlsplit(s.secret(key) or "").port or default
            except ValueError:
                port = default
            ports.append((port, ANYWHERE))
    return ports


@dataclass
class ClusterStackArgs:
    settings: Settings


class ClusterStack(pulumi.ComponentResource):
    def __init__(self, name: str, args: ClusterStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ladder:index:ClusterStack", name, None, opts)
        s = args.settings
        assert s.acme_email is not None and s.domain is not None  # enforced by settings

        handle = create_cluster(name, s, pulumi.ResourceOptions(parent=self))
        self.kubeconfig = handle.kubeconfig
        self.server_ips = handle.server_ips
        on_cluster = pulumi.ResourceOptions(parent=self, providers=[handle.provider])

        ingress = Ingress(
            "ingress",
            IngressArgs(
                controller=s.cluster.ingress,
                load_balancer_name=f"{s.app.name}-{pulumi.get_stack()}" if s.provider_name == "digitalocean" else None,
                depends_on=handle.depends_on,
            ),
            opts=on_cluster,
        )
        certs = CertManager(
            "cert-manager",
            CertManagerArgs(
                s.acme_email, ingress.ingress_class, depends_on=handle.depends_on, acme_server=s.acme_server
            ),
            opts=on_cluster,
        )
        # Before the data stores: the Postgres PodMonitor needs the chart's CRDs.
        self.monitoring: Monitoring | None = None
        if s.monitoring.enabled:
            self.monitoring = Monitoring(
                "monitoring",
                MonitoringArgs(s, ingress.ingress_class, depends_on=handle.depends_on),
                opts=on_cluster,
            )
        if not handle.ships_metrics_server:
            # DOKS ships no metrics-server: without it every HPA stays at its minimum.
            helm_release(
                "metrics-server",
                versions.METRICS_SERVER_CHART,
                "kube-system",
                helm_values.metrics_server_values(),
                pulumi.ResourceOptions(parent=self, providers=[handle.provider], depends_on=handle.depends_on),
            )
        stack = pulumi.get_stack()
        # The backup buckets (and, where the store allows, a key per tenant) before the
        # tenants' Secrets that carry those keys.
        minted: dict[str, Keys] = {}
        if s.provider_name == "digitalocean":
            from components import do_common

            minted = do_common.tenant_backup_keys(
                name,
                s,
                [t.name for t in s.effective_tenants],
                s.cluster.region or "fra1",
                pulumi.ResourceOptions(parent=self),
            )
        postgres = Postgres(
            "postgres",
            PostgresArgs(
                s,
                handle,
                depends_on=[*handle.depends_on, certs.release],
                monitoring=self.monitoring.release if self.monitoring else None,
                backup_keys=minted,
            ),
            opts=on_cluster,
        )
        redis = Redis(
            "redis",
            RedisArgs(
                s,
                handle,
                depends_on=handle.depends_on,
                monitoring=self.monitoring.release if self.monitoring else None,
            ),
            opts=on_cluster,
        )

        def connect(spec: r.TenantSpec, namespace: kubernetes.core.v1.Namespace) -> Mapping[str, TenantStore]:
            stores: dict[str, TenantStore] = {}
            pg = postgres.for_tenant(spec, namespace)
            if pg is not None:
                stores["DATABASE_URL"] = pg
            rd = redis.for_tenant(spec, namespace)
            if rd is not None:
                stores["REDIS_URL"] = rd
            return stores

        secret_env: dict[str, pulumi.Input[str]] = {
            key: pulumi.Output.secret(s.secret(key) or "") for key in s.app.secret_env
        }
        for mode, key in ((s.postgres.mode, "DATABASE_URL"), (s.redis.mode, "REDIS_URL")):
            if mode == "external":
                secret_env[key] = pulumi.Output.secret(s.secret(key) or "")

        # Built once for all tenants, before any of their workloads roll.
        plain = pulumi.ResourceOptions(parent=self)
        docr = images.minted_docr_login(name, s, write=any(svc.build for svc in s.app.services.values()), opts=plain)
        docr_logins = [docr] if docr else []
        self.images = images.build_images(name, s, push=True, opts=plain, extra_logins=docr_logins)
        logins = [*images.registry_logins(s), *docr_logins]
        registry_config = images.docker_config_output(logins) if logins else None

        self.apps: dict[str, App] = {}
        first_host: pulumi.Output[str] | None = None
        accessory_secrets = {
            acc_name: {key: pulumi.Output.secret(s.secret(key) or "") for key in acc.secret_env}
            for acc_name, acc in s.accessories.items()
        }
        b = s.backups
        passphrase = (
            pulumi.Output.secret(b.encryption_key.get_secret_value())
            if b is not None and backups_enabled(s) and b.encryption_key is not None
            else None
        )

        def archive_keys(tenant: str) -> dict[str, pulumi.Input[str]]:
            """The tenant's `volume-backup-credentials`: its minted key, or the user's where none is minted.
            Settings refuse archives without a passphrase; without archives no Secret is made."""
            if passphrase is None:
                return {}
            key_id, secret_key = minted.get(tenant) or user_backup_keys(s)
            return x.backup_secret_data(key_id, secret_key, passphrase)

        if s.postgres.mode == "operator" and backups_enabled(s) and not dumps_postgres(s):
            pulumi.log.warn(
                "Postgres is backed up by Barman alone, encrypted only server-side by the store if at all: set "
                "ladder:backups.encryptionKey (a secret) for a nightly pg_dump sealed in the cluster before upload",
                resource=self,
            )
        if backs_up_archives(s) and not backups_enabled(s):
            pulumi.log.warn(
                "service volumes and accessory backups are not backed up: set ladder:backups with "
                "accessKeyId and secretAccessKey (secrets)",
                resource=self,
            )
        for spec in tenant_specs(s, self.images, stack):
            tenant_env = dict(secret_env)
            if s.buckets:
                # Each tenant its own buckets and key: tenants never see each other's files.
                buckets = Buckets(
                    f"{spec.tenant.name}-buckets",
                    BucketsArgs(s, tenant_label(s, stack, spec.tenant.name)),
                    opts=pulumi.ResourceOptions(parent=self),
                )
                tenant_env.update(buckets.secret_env)
            tenant_app = App(
                spec.tenant.name,
                AppArgs(
                    spec=spec,
                    connect=connect,
                    secret_env=tenant_env,
                    routing=[ingress.release, *certs.issuers.values()],
                    protect=s.protected,
                    registry_config=registry_config,
                    images=self.images.resources,
                    accessory_secrets=accessory_secrets,
                    backup_target=backup_target(s, stack, spec.tenant.name),
                    backup_credentials=archive_keys(spec.tenant.name),
                ),
                opts=pulumi.ResourceOptions(parent=self, providers=[handle.provider], depends_on=handle.depends_on),
            )
            self.apps[spec.tenant.name] = tenant_app
        if s.postgres.mode == "managed":
            first_host = postgres.db_cluster.private_host
        elif s.postgres.mode == "operator":
            first = tenant_specs(s, stack=stack)[0]
            first_host = pulumi.Output.from_input(f"{r.POSTGRES_CLUSTER}-rw.{first.namespace}.svc.cluster.local")
        self.database_host = first_host
        self.url = pulumi.Output.from_input(f"https://{s.domain}")
        self.register_outputs({"url": self.url, "kubeconfig": self.kubeconfig})
