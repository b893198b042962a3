"""DigitalOcean day-2 pieces the VPS and cluster rungs share: the backup bucket and uptime checks."""

from __future__ import annotations

import pulumi
import pulumi_digitalocean as digitalocean

from components import backup_buckets
from components.buckets import Keys
from components.settings import Settings


def backup_bucket(
    name: str, s: Settings, region: str, opts: pulumi.ResourceOptions, tenant: str | None = None
) -> digitalocean.SpacesBucket | None:
    """A private Spaces bucket whose lifecycle rule enforces `backups.retentionDays` (when `backups.create`):
    `backups.bucket`, or with `tenant` that tenant's own (`backup_buckets.tenant_backup_bucket`).

    Versioned: Spaces keys have no write-only grant, so the key that uploads could delete;
    with versioning a delete or overwrite keeps the previous version for `retentionDays`
    more (docs/operations.md, who can delete backups). Versioning cannot be turned off again.
    Protected like the data: it holds the only copies of the backups.
    """
    b = s.backups
    if b is None or not b.create:
        return None
    return digitalocean.SpacesBucket(
        f"{name}-backups" if tenant is None else f"{name}-backups-{tenant}",
        name=b.bucket if tenant is None else backup_buckets.tenant_backup_bucket(s, tenant),
        region=region,
        acl="private",
        versioning=digitalocean.SpacesBucketVersioningArgs(enabled=True),
        lifecycle_rules=[
            digitalocean.SpacesBucketLifecycleRuleArgs(
                enabled=True,
                expiration=digitalocean.SpacesBucketLifecycleRuleExpirationArgs(days=b.retention_days),
                noncurrent_version_expiration=digitalocean.SpacesBucketLifecycleRuleNoncurrentVersionExpirationArgs(
                    days=b.retention_days
                ),
                abort_incomplete_multipart_upload_days=1,
            )
        ],
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=s.protected)),
    )


def tenant_backup_keys(
    name: str, s: Settings, tenants: list[str], region: str, opts: pulumi.ResourceOptions
) -> dict[str, Keys]:
    """Per tenant (`backup_buckets.bucket_per_tenant`, once backups run: the user's keys are set):
    its bucket and one Spaces key with a single `readwrite` grant on it, as (access key id,
    secret key), both Pulumi secrets.

    `backups.bucket` itself is always made (it keeps the archives written before the tenants had
    their own buckets, and is the app's own tenant's). Otherwise {}: tenants use the user's key."""
    shared = backup_bucket(name, s, region, opts)
    b = s.backups
    if not backup_buckets.bucket_per_tenant(s) or b is None or b.access_key_id is None or b.secret_access_key is None:
        return {}
    assert shared is not None  # bucket_per_tenant implies backups.create
    keys: dict[str, Keys] = {}
    for tenant in tenants:
        own = shared if backup_buckets.keeps_shared_bucket(s, tenant) else backup_bucket(name, s, region, opts, tenant)
        assert own is not None
        key = digitalocean.SpacesKey(
            f"{name}-backup-key-{tenant}",
            name=f"{s.app.name}-{pulumi.get_stack()}-{tenant}-backups",
            grants=[digitalocean.SpacesKeyGrantArgs(bucket=own.name, permission="readwrite")],
            opts=opts,
        )
        # The SDK registers secretKey as a secret output; the id is wrapped too (with it, half a credential).
        keys[tenant] = (pulumi.Output.secret(key.access_key), pulumi.Output.secret(key.secret_key))
    return keys


# Droplet alert policies: (metric, threshold %) over 10 minutes, mailed to alertEmail.
RESOURCE_ALERTS = (
    ("v1/insights/droplet/cpu", 90),
    ("v1/insights/droplet/memory_utilization_percent", 90),
    ("v1/insights/droplet/disk_utilization_percent", 85),
)


def uptime_alerts(
    name: str, s: Settings, opts: pulumi.ResourceOptions, droplet_ids: list[pulumi.Output[str]] | None = None
) -> None:
    """An HTTPS uptime check on the first routed service's health path, mailing `monitoring.alertEmail`
    when it is down for 2 minutes or the certificate is about to expire, and CPU, memory and
    disk alert policies on the droplets (their monitoring agent is on)."""
    m = s.monitoring
    if not m.enabled or not m.alert_email or not s.domain:
        return
    health = next(iter(s.app.routed_services.values())).health_path
    check = digitalocean.UptimeCheck(
        f"{name}-uptime",
        name=f"{s.app.name}-{pulumi.get_stack()}",
        target=f"https://{s.domain}{health}",
        type="https",
        regions=["eu_west", "us_east"],
        enabled=True,
        opts=opts,
    )
    mail = [digitalocean.UptimeAlertNotificationArgs(emails=[m.alert_email])]
    digitalocean.UptimeAlert(
        f"{name}-uptime-down", check_id=check.id, name="down", type="down", period="2m", notifications=mail, opts=opts
    )
    for metric, threshold in RESOURCE_ALERTS if droplet_ids else ():
        digitalocean.MonitorAlert(
            f"{name}-alert-{metric.rsplit('/', 1)[1]}",
            type=metric,
            compare="GreaterThan",
            value=threshold,
            window="10m",
            entities=droplet_ids,
            description=f"{s.app.name}-{pulumi.get_stack()}: {metric.rsplit('/', 1)[1]} above {threshold}%",
            alerts=digitalocean.MonitorAlertAlertsArgs(emails=[m.alert_email]),
            opts=opts,
        )
    digitalocean.UptimeAlert(
        f"{name}-uptime-ssl",
        check_id=check.id,
        name="certificate expiry",
        type="ssl_expiry",
        threshold=14,
        period="2m",
        notifications=mail,
        opts=opts,
    )


def managed_database(
    name: str,
    s: Settings,
    engine: str,
    region: str,
    vpc_id: pulumi.Input[str] | None,
    firewall: list[tuple[str, pulumi.Input[str]]],
    opts: pulumi.ResourceOptions,
) -> digitalocean.DatabaseCluster:
    """A managed Postgres (`pg`) or Valkey cluster in the VPC, reachable only by `firewall`
    ((type, value) rules: `droplet` ids or a `k8s` cluster id). `DatabaseCluster` has no
    delete protection of its own: `protect` is the only guard."""
    from components import versions

    postgres = engine == "pg"
    cluster = digitalocean.DatabaseCluster(
        f"{name}-managed",
        name=f"{s.app.name}-{pulumi.get_stack()}-{'pg' if postgres else 'valkey'}",
        engine=engine,
        version=s.postgres.version if postgres else versions.DO_VALKEY_VERSION,
        size=(s.postgres.size if postgres else s.redis.size) or "db-s-1vcpu-1gb",
        region=region,
        node_count=s.postgres.instances if postgres else 1,
        private_network_uuid=vpc_id,
        eviction_policy=None if postgres else "noeviction",
        maintenance_windows=[digitalocean.DatabaseClusterMaintenanceWindowArgs(day="sunday", hour="04:00:00")],
        tags=["ladder", f"ladder-{s.app.name}"],
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=s.protected)),
    )
    digitalocean.DatabaseFirewall(
        f"{name}-firewall",
        cluster_id=cluster.id,
        rules=[digitalocean.DatabaseFirewallRuleArgs(type=kind, value=value) for kind, value in firewall],
        opts=opts,
    )
    return cluster
