"""DigitalOcean day-2 pieces the VPS and cluster rungs share: the backup bucket and uptime checks."""

from __future__ import annotations

import pulumi
import pulumi_digitalocean as digitalocean

from components.settings import Settings


def backup_bucket(
    name: str, s: Settings, region: str, opts: pulumi.ResourceOptions
) -> digitalocean.SpacesBucket | None:
    """A private Spaces bucket whose lifecycle rule enforces `backups.retentionDays` (when `backups.create`)."""
    b = s.backups
    if b is None or not b.create:
        return None
    return digitalocean.SpacesBucket(
        f"{name}-backups",
        name=b.bucket,
        region=region,
        acl="private",
        lifecycle_rules=[
            digitalocean.SpacesBucketLifecycleRuleArgs(
                enabled=True,
                expiration=digitalocean.SpacesBucketLifecycleRuleExpirationArgs(days=b.retention_days),
                abort_incomplete_multipart_upload_days=1,
            )
        ],
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=s.protected)),
    )


def uptime_alerts(name: str, s: Settings, opts: pulumi.ResourceOptions) -> None:
    """An HTTPS uptime check on the first routed service's health path, mailing `monitoring.alertEmail`
    when it is down for 2 minutes or the certificate is about to expire."""
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
