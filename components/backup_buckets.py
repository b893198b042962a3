"""Which bucket each tenant's cluster backups go to, and whether Ladder mints its key (pure).

A DigitalOcean Spaces key is granted per bucket, not per prefix, so tenants can only be
kept out of each other's backups with a bucket each. Where Ladder creates the backup bucket
on a DigitalOcean cluster, every tenant but the app's own gets `<backups.bucket>-<tenant>`
and its own key limited to it; the app's own tenant keeps `backups.bucket`, so its existing
CloudNativePG archive does not move. Elsewhere (Hetzner's project-wide keys, a bucket the
user made) every tenant shares `backups.bucket` and the user's key: prefixes only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from components import grammar

if TYPE_CHECKING:
    from components.settings import Settings

NAMESPACE = "ladder"  # settings.NAMESPACE; settings imports this module, so not imported from there


def bucket_per_tenant(s: Settings) -> bool:
    """True when each tenant's backups go to a bucket of its own (and, once backups run, a
    Spaces key limited to it): the cluster rung on DigitalOcean, for a bucket Ladder creates
    (`backups.create`). Settled by config alone, not by the keys being set, so the restore
    plan, which never holds the secrets, names the same buckets the rung writes to."""
    b = s.backups
    return s.phase == "cluster" and s.provider == "digitalocean" and b is not None and b.create


def keeps_shared_bucket(s: Settings, tenant: str) -> bool:
    """The app's own tenant (named after the app; the only one of a stack without `ladder:tenants`)."""
    return tenant == s.app.name


def tenant_backup_bucket(s: Settings, tenant: str) -> str:
    """The bucket a tenant's CloudNativePG and volume backups go to (`ladder:backups.bucket`
    for the app's own tenant and wherever keys are not minted per tenant)."""
    assert s.backups is not None
    if not bucket_per_tenant(s) or keeps_shared_bucket(s, tenant):
        return s.backups.bucket
    return f"{s.backups.bucket}-{tenant}"


def tenant_bucket_problems(s: Settings) -> Iterator[tuple[str, str]]:
    """(key path, what is wrong) for every derived bucket name the S3/Spaces grammar refuses
    (3-63 characters among others), checked before any resource exists."""
    if not bucket_per_tenant(s):
        return
    for i, tenant in enumerate(s.tenants):
        name = tenant_backup_bucket(s, tenant.name)
        try:
            grammar.s3_bucket(name)
        except ValueError as exc:
            yield (
                f"{NAMESPACE}:backups.bucket",
                f"tenant {tenant.name!r} (ladder:tenants[{i}]) would back up to bucket {name!r} "
                f"({len(name)} characters), which is not a bucket name: {exc}; "
                "choose a shorter ladder:backups.bucket or tenant name",
            )
