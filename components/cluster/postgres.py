"""`ladder:index:Postgres` on the cluster rung: CloudNativePG on the cluster, or DigitalOcean managed Postgres."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as kubernetes
import pulumi_random as random

from components import backup_buckets, versions
from components.buckets import Keys
from components.cluster.data import TenantStore
from components.cluster.platform import custom_resource, helm_release
from components.cluster.providers import ClusterHandle
from components.render import backup, helm_values
from components.render import k8s as r
from components.render.urls import postgres_url
from components.settings import Settings


def backups_enabled(s: Settings) -> bool:
    """CloudNativePG backups run when `ladder:backups` has both credentials."""
    return bool(s.backups and s.backups.access_key_id is not None and s.backups.secret_access_key is not None)


def user_backup_keys(s: Settings) -> Keys:
    """The user's `ladder:backups` keys as Pulumi secrets: every tenant's where Ladder mints none."""
    b = s.backups
    assert b is not None and b.access_key_id is not None and b.secret_access_key is not None
    return (
        pulumi.Output.secret(b.access_key_id.get_secret_value()),
        pulumi.Output.secret(b.secret_access_key.get_secret_value()),
    )


MANAGED_PORT = 25060


@dataclass
class PostgresArgs:
    settings: Settings
    cluster: ClusterHandle
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    # kube-prometheus-stack's release (its CRDs define PodMonitor), when monitoring is on.
    monitoring: pulumi.Resource | None = None
    # tenant -> (access key id, secret key) Ladder minted for that tenant's own backup bucket
    # (`do_common.tenant_backup_keys`); a tenant not in it uses the user's `ladder:backups` keys.
    backup_keys: Mapping[str, Keys] = field(default_factory=dict)


class Postgres(pulumi.ComponentResource):
    """The operator (or the managed cluster) once; then a database per tenant via `for_tenant`."""

    def __init__(self, name: str, args: PostgresArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ladder:index:Postgres", name, None, opts)
        self._name = name
        self._settings = args.settings
        self._protect = args.settings.protected
        self._monitoring = args.monitoring
        self._backup_keys = args.backup_keys
        s = args.settings
        child = pulumi.ResourceOptions(parent=self, depends_on=args.depends_on)
        self.mode = s.postgres.mode
        self.releases: list[pulumi.Resource] = []
        self._backups = backups_enabled(s)
        if self.mode == "operator":
            operator = helm_release(
                f"{name}-cnpg",
                versions.CLOUDNATIVE_PG_CHART,
                r.CNPG_NAMESPACE,
                helm_values.cloudnative_pg_values(),
                child,
            )
            self.releases.append(operator)
            if self._backups:
                # The Barman Cloud Plugin (CNPG >= 1.26) replaces the deprecated barmanObjectStore;
                # it serves its gRPC endpoint with a cert-manager certificate.
                self.releases.append(
                    helm_release(
                        f"{name}-barman-cloud",
                        versions.BARMAN_CLOUD_PLUGIN_CHART,
                        r.CNPG_NAMESPACE,
                        helm_values.barman_plugin_values(),
                        pulumi.ResourceOptions(parent=self, depends_on=[*args.depends_on, operator]),
                    )
                )
            elif s.backups is not None:
                pulumi.log.warn(
                    "ladder:backups is set without accessKeyId/secretAccessKey: CloudNativePG backups are off",
                    resource=self,
                )
        elif self.mode == "managed":
            self._managed(name, args)
        self.register_outputs({"mode": self.mode})

    def _managed(self, name: str, args: PostgresArgs) -> None:
        from components import do_common

        s = args.settings
        if args.cluster.cluster_id is None:
            raise ValueError("ladder:postgres.mode managed needs a DigitalOcean cluster (provider digitalocean)")
        # Only the Kubernetes cluster's nodes may connect.
        self.db_cluster = do_common.managed_database(
            name,
            s,
            "pg",
            args.cluster.region or "fra1",
            args.cluster.vpc_id,
            [("k8s", args.cluster.cluster_id)],
            pulumi.ResourceOptions(parent=self),
        )

    def for_tenant(self, spec: r.TenantSpec, namespace: kubernetes.core.v1.Namespace) -> TenantStore | None:
        tenant = spec.tenant.name
        db = spec.app.database
        after = pulumi.ResourceOptions(parent=self, depends_on=[namespace, *self.releases])
        if self.mode == "operator":
            password = random.RandomPassword(f"{tenant}-postgres-password", length=32, special=False, opts=after)
            owner = kubernetes.core.v1.Secret(
                f"{tenant}-postgres-owner",
                metadata=r.meta(r.POSTGRES_OWNER_SECRET, spec.namespace, spec),
                type="kubernetes.io/basic-auth",
                string_data=pulumi.Output.secret(password.result.apply(lambda pw: {"username": db, "password": pw})),
                opts=after,
            )
            backup_args = None
            ready: list[pulumi.Resource] = [owner]
            if self._backups:
                backup_args = self._backup_objects(spec, after, ready)
            body = r.cnpg_cluster(
                spec,
                versions.CNPG_POSTGRES_IMAGES[self._settings.postgres.version],
                db,
                r.POSTGRES_OWNER_SECRET,
                backup.cnpg_cluster_plugins(backup_args) if backup_args else None,
            )
            cluster = kubernetes.apiextensions.CustomResource(
                f"{tenant}-postgres-cluster",
                api_version="postgresql.cnpg.io/v1",
                kind="Cluster",
                metadata=body["metadata"],
                spec=body["spec"],
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[namespace, *self.releases, *ready], protect=self._protect
                ),
            )
            if backup_args:
                sb = backup.cnpg_scheduled_backup(backup_args)
                kubernetes.apiextensions.CustomResource(
                    f"{tenant}-postgres-backup",
                    api_version="postgresql.cnpg.io/v1",
                    kind="ScheduledBackup",
                    metadata={**sb["metadata"], "labels": r.meta("", spec.namespace, spec).get("labels", {})},
                    spec=sb["spec"],
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster]),
                )
            if self._monitoring is not None:
                custom_resource(
                    f"{tenant}-postgres-pod-monitor",
                    r.postgres_pod_monitor(spec),
                    pulumi.ResourceOptions(parent=self, depends_on=[cluster, self._monitoring]),
                )
            host = f"{r.POSTGRES_CLUSTER}-rw.{spec.namespace}.svc.cluster.local"
            return TenantStore(
                url=postgres_url(db, password.result, host, r.POSTGRES_PORT, db),
                host=pulumi.Output.from_input(host),
                ready=[cluster],
            )
        if self.mode == "managed":
            import pulumi_digitalocean as digitalocean

            managed = pulumi.ResourceOptions(parent=self, depends_on=[self.db_cluster])
            database = digitalocean.DatabaseDb(
                f"{tenant}-postgres-db",
                cluster_id=self.db_cluster.id,
                name=f"{db}_{tenant.replace('-', '_')}",
                opts=pulumi.ResourceOptions(parent=self, protect=self._protect),
            )
            user = digitalocean.DatabaseUser(
                f"{tenant}-postgres-user", cluster_id=self.db_cluster.id, name=f"{tenant}_app", opts=managed
            )
            host = self.db_cluster.private_host
            # verify-full against the cluster's own CA (DigitalOcean signs database certificates
            # with a per-project CA no system trust store holds), mounted by `r.container`.
            ca = digitalocean.get_database_ca_output(cluster_id=self.db_cluster.id)
            ca_map = kubernetes.core.v1.ConfigMap(
                f"{tenant}-database-ca",
                metadata=r.db_ca_config_map(spec, "")["metadata"],
                data=ca.apply(lambda result: r.db_ca_config_map(spec, result.certificate or "")["data"]),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.db_cluster, namespace]),
            )
            url = postgres_url(user.name, user.password, host, MANAGED_PORT, database.name, r.DB_CA_PARAMS)
            return TenantStore(url=url, host=host, ready=[database, user, ca_map])
        return None

    def _backup_objects(
        self, spec: r.TenantSpec, opts: pulumi.ResourceOptions, ready: list[pulumi.Resource]
    ) -> backup.CnpgBackupArgs:
        b = self._settings.backups
        assert b is not None
        tenant = spec.tenant.name
        key_id, secret_key = self._backup_keys.get(tenant) or user_backup_keys(self._settings)
        region = b.region
        data: pulumi.Output[dict[str, str]] = pulumi.Output.all(key_id, secret_key).apply(
            lambda v: backup.cnpg_credentials(v[0], v[1], region)
        )
        secret_data: pulumi.Output[dict[str, str]] = pulumi.Output.secret(data)
        creds = kubernetes.core.v1.Secret(
            f"{tenant}-postgres-backup-credentials",
            metadata=r.meta(backup.CNPG_CREDENTIALS_SECRET, spec.namespace, spec),
            type="Opaque",
            string_data=secret_data,
            opts=opts,
        )
        args = backup.cnpg_backup_args(
            b,
            spec.namespace,
            r.POSTGRES_CLUSTER,
            pulumi.get_stack(),
            backup_buckets.tenant_backup_bucket(self._settings, tenant),
        )
        body = backup.cnpg_object_store(args)
        store = kubernetes.apiextensions.CustomResource(
            f"{tenant}-postgres-object-store",
            api_version="barmancloud.cnpg.io/v1",
            kind="ObjectStore",
            metadata={**body["metadata"], "labels": r.meta("", spec.namespace, spec).get("labels", {})},
            spec=body["spec"],
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[creds])),
        )
        ready += [creds, store]
        return args
