"""`ladder:index:Buckets`: the app's object storage and the `S3_*` env that reaches it.

- DigitalOcean: a Spaces bucket per `ladder:buckets` entry (`public` -> ACL
  `public-read`, `expireDays` -> a lifecycle rule, `corsOrigins` -> a
  `SpacesBucketCorsConfiguration`) and one Spaces access key limited to those buckets
  (`readwrite` grants). The key is created by Ladder, so its secret is a Pulumi secret
  from the start.
- A bucket with `endpoint` (Hetzner Object Storage, whose buckets pulumi-hcloud 1.43
  cannot create; R2; S3) is used as it is, with the keys from the config (secrets).
- local: the MinIO container of the local rung; its credentials are passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from components.render import appenv
from components.settings import Settings

Keys = tuple[pulumi.Output[str], pulumi.Output[str]]
CORS_METHODS = ["GET", "HEAD", "PUT", "POST"]


@dataclass
class BucketsArgs:
    settings: Settings
    # Part of created bucket names: the stack, plus the tenant for a tenant's own buckets.
    label: str
    local_keys: Keys | None = None  # MinIO's credentials on the local rung


class Buckets(pulumi.ComponentResource):
    """Creates what Ladder can create; exposes `plain_env` (str) and `secret_env` (secrets)."""

    def __init__(self, name: str, args: BucketsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ladder:index:Buckets", name, None, opts)
        s = args.settings
        access = appenv.bucket_access(s, args.label)
        keys: dict[str, Keys] = {}
        created: dict[str, pulumi.Output[str]] = {}
        for a in access:
            b = s.buckets[a.name]
            if b.external:
                assert b.access_key_id is not None and b.secret_access_key is not None  # settings
                keys[a.name] = (
                    pulumi.Output.secret(b.access_key_id.get_secret_value()),
                    pulumi.Output.secret(b.secret_access_key.get_secret_value()),
                )
            elif s.phase == "local":
                assert args.local_keys is not None
                keys[a.name] = args.local_keys
            else:
                created[a.name] = self._spaces_bucket(name, s, a)
        if created:
            import pulumi_digitalocean as digitalocean

            key = digitalocean.SpacesKey(
                f"{name}-key",
                name=f"{s.app.name}-{args.label}-app",
                grants=[
                    digitalocean.SpacesKeyGrantArgs(bucket=bucket, permission="readwrite")
                    for bucket in created.values()
                ],
                opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["secret_key"]),
            )
            for bucket_key in created:
                keys[bucket_key] = (pulumi.Output.secret(key.access_key), pulumi.Output.secret(key.secret_key))
        self.plain_env: dict[str, str] = appenv.bucket_env(s, access)
        self.secret_env: Mapping[str, pulumi.Output[str]] = appenv.bucket_secret_env(s, keys)
        self.register_outputs({"buckets": [a.bucket for a in access]})

    def _spaces_bucket(self, name: str, s: Settings, a: appenv.BucketAccess) -> pulumi.Output[str]:
        import pulumi_digitalocean as digitalocean

        b = s.buckets[a.name]
        lifecycle = (
            [
                digitalocean.SpacesBucketLifecycleRuleArgs(
                    enabled=True,
                    expiration=digitalocean.SpacesBucketLifecycleRuleExpirationArgs(days=b.expire_days),
                    abort_incomplete_multipart_upload_days=1,
                )
            ]
            if b.expire_days
            else None
        )
        bucket = digitalocean.SpacesBucket(
            f"{name}-{a.name}",
            name=a.bucket,
            region=a.region,
            acl="public-read" if b.public else "private",
            lifecycle_rules=lifecycle,
            force_destroy=False,
            # Uploads are the users' data: deleting the stack must not delete them.
            opts=pulumi.ResourceOptions(parent=self, protect=s.protected),
        )
        if b.cors_origins:
            digitalocean.SpacesBucketCorsConfiguration(
                f"{name}-{a.name}-cors",
                bucket=bucket.name,
                region=a.region,
                cors_rules=[
                    digitalocean.SpacesBucketCorsConfigurationCorsRuleArgs(
                        allowed_methods=CORS_METHODS,
                        allowed_origins=list(b.cors_origins),
                        allowed_headers=["*"],
                        max_age_seconds=3000,
                    )
                ],
                opts=pulumi.ResourceOptions(parent=self),
            )
        name_out: pulumi.Output[str] = bucket.name
        return name_out
