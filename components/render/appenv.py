"""What a service's environment gets from accessories and buckets, on every rung (pure).

One function per concern so local, VPS and cluster inject the same names with only the
host names differing: accessory `mongo` -> `MONGO_HOST`, `MONGO_PORT`; bucket `media` ->
`S3_MEDIA_ENDPOINT`, `S3_MEDIA_REGION`, `S3_MEDIA_BUCKET` (plain) and
`S3_MEDIA_ACCESS_KEY_ID`, `S3_MEDIA_SECRET_ACCESS_KEY` (secret), plus the same without
`MEDIA_` when the stack has exactly one bucket. The names themselves come from
`components.settings` (which also refuses user env that would shadow them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from components.settings import S3_SECRET_FIELDS, Settings, accessory_env_names, bucket_env_names

T = TypeVar("T")

# The MinIO container of the local rung, as services reach it on the local network.
MINIO_HOST = "minio"
MINIO_PORT = 9000
MINIO_REGION = "us-east-1"


@dataclass(frozen=True)
class BucketAccess:
    """Where one bucket lives, as the app sees it (credentials are separate: secrets)."""

    name: str  # the key under ladder:buckets
    endpoint: str
    region: str
    bucket: str  # the real bucket name


def bucket_name(app: str, stack: str, name: str) -> str:
    """`<app>-<stack>-<name>`: Spaces bucket names are global, so the stack is part of it.

    Longer than S3's 63 characters: cut, with a hash of the whole keeping it unique.
    """
    full = f"{app}-{stack}-{name}".lower()
    if len(full) <= 63:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return f"{full[:54].rstrip('-.')}-{digest}"


def spaces_endpoint(region: str) -> str:
    return f"https://{region}.digitaloceanspaces.com"


def bucket_region(s: Settings) -> str:
    """Where Ladder creates Spaces buckets: the stack's own region."""
    return (s.cluster.region if s.phase == "cluster" else s.vps.region) or "fra1"


def bucket_access(s: Settings, stack: str) -> list[BucketAccess]:
    """Every bucket of the stack: an existing one (endpoint given), MinIO on local, Spaces on DigitalOcean."""
    out: list[BucketAccess] = []
    for name, b in sorted(s.buckets.items()):
        if b.endpoint is not None:
            assert b.bucket is not None  # enforced by settings
            out.append(BucketAccess(name, b.endpoint, b.region, b.bucket))
        elif s.phase == "local":
            out.append(BucketAccess(name, f"http://{MINIO_HOST}:{MINIO_PORT}", MINIO_REGION, name))
        else:  # digitalocean (settings refuses created buckets elsewhere)
            region = bucket_region(s)
            out.append(BucketAccess(name, spaces_endpoint(region), region, bucket_name(s.app.name, stack, name)))
    return out


def accessory_env(s: Settings, host_of: Callable[[str], str]) -> dict[str, str]:
    """`<NAME>_HOST` / `<NAME>_PORT` of every accessory; `host_of` is the rung's name for it."""
    env: dict[str, str] = {}
    for name, acc in sorted(s.accessories.items()):
        names = accessory_env_names(name)
        env[names["HOST"]] = host_of(name)
        env[names["PORT"]] = str(acc.port)
    return env


def bucket_env(s: Settings, access: list[BucketAccess]) -> dict[str, str]:
    """The plain S3 settings of every bucket (endpoint, region, bucket name)."""
    only = len(access) == 1
    env: dict[str, str] = {}
    for a in access:
        names = bucket_env_names(a.name, only)
        for field, value in (("ENDPOINT", a.endpoint), ("REGION", a.region), ("BUCKET", a.bucket)):
            env.update(dict.fromkeys(names[field], value))
    return env


def bucket_secret_env(s: Settings, keys: Mapping[str, tuple[T, T]]) -> dict[str, T]:
    """Env name -> credential for every bucket; `keys` maps a bucket to its (key id, secret key)
    as the rung holds them (Pulumi secrets), so this stays free of Pulumi."""
    only = len(s.buckets) == 1
    env: dict[str, T] = {}
    for name in sorted(s.buckets):
        key_id, secret = keys[name]
        names = bucket_env_names(name, only)
        for field, value in zip(S3_SECRET_FIELDS, (key_id, secret), strict=True):
            env.update(dict.fromkeys(names[field], value))
    return env


def extra_env(s: Settings, stack: str, host_of: Callable[[str], str]) -> dict[str, str]:
    """All plain env Ladder adds for accessories and buckets (the rungs merge it into the app's env)."""
    return {**accessory_env(s, host_of), **bucket_env(s, bucket_access(s, stack))}
