"""Accessories and MinIO on the developer's Docker engine (local rung).

Each accessory is a container from its image on the local network under its own name,
with a named volume per `volumes` entry, hardened like the other data containers (no
new privileges, every capability dropped except what an official image's entrypoint
needs to hand its data directory to its own user and drop root). MinIO stands in for
`ladder:buckets`: one container, the buckets created by a one-off `mc` run in MinIO's
own image, public buckets readable anonymously.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components import versions
from components.images import RegistryLogin
from components.local.docker_common import container_args, healthcheck, registry_provider
from components.render.appenv import MINIO_HOST, MINIO_PORT
from components.render.resources import limits, memory_mb
from components.render.vps_extras import ACCESSORY_CAPS
from components.settings import Accessory, Settings, volume_slug

MINIO_USER = "ladder"


def named_volumes(
    owner: str, prefix: str, paths: Mapping[str, object], opts: pulumi.ResourceOptions
) -> list[docker.ContainerVolumeArgs]:
    """A named Docker volume per mount path (`<prefix>-<owner>-<slug>`), kept across `pulumi up`."""
    mounts = []
    for path in sorted(paths):
        name = f"{prefix}-{owner}-{volume_slug(path)}"
        volume = docker.Volume(name, name=name, opts=opts)
        mounts.append(docker.ContainerVolumeArgs(volume_name=volume.name, container_path=path))
    return mounts


def accessory_env(acc: Accessory, secrets: Mapping[str, pulumi.Input[str]]) -> pulumi.Output[list[str]]:
    names = sorted(secrets)

    def render(values: list[str]) -> list[str]:
        plain = [f"{k}={v}" for k, v in sorted(acc.env.items())]
        return plain + [f"{n}={v}" for n, v in zip(names, values, strict=True)]

    env = pulumi.Output.all(*[secrets[n] for n in names]).apply(lambda vs: render(list(vs)))
    return pulumi.Output.secret(env) if names else env


@dataclass
class AccessoriesArgs:
    settings: Settings
    network: pulumi.Input[str]
    prefix: str
    secrets: Mapping[str, Mapping[str, pulumi.Input[str]]] = field(default_factory=dict)
    # Credentials of ladder:registries: an accessory's image may be private too.
    logins: Sequence[RegistryLogin] = ()


class Accessories(pulumi.ComponentResource):
    """`ladder:accessories` as containers; `containers` is what the app waits for."""

    def __init__(self, name: str, args: AccessoriesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ladder:index:Accessories", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        kept = pulumi.ResourceOptions(parent=self, protect=s.protected)
        auth = registry_provider(f"{name}-registry-auth", args.logins, child)
        pull = pulumi.ResourceOptions(parent=self, provider=auth) if auth else child
        self.containers: list[docker.Container] = []
        for acc_name, acc in sorted(s.accessories.items()):
            image = docker.RemoteImage(f"{name}-{acc_name}-image", name=acc.image, keep_locally=True, opts=pull)
            extra: dict[str, object] = {}
            if acc.command:
                extra["command"] = list(acc.command)
            if acc.health:
                extra["healthcheck"] = healthcheck(["CMD", *acc.health])
                extra["wait"] = True
                extra["wait_timeout"] = 180
            self.containers.append(
                docker.Container(
                    f"{name}-{acc_name}",
                    **container_args(
                        f"{args.prefix}-{acc_name}",
                        image.name,
                        args.network,
                        [acc_name],
                        capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"], adds=list(ACCESSORY_CAPS)),
                        envs=accessory_env(acc, args.secrets.get(acc_name, {})),
                        memory=memory_mb(limits(acc.resources).memory),
                        volumes=named_volumes(acc_name, args.prefix, acc.volumes, kept),
                        **extra,
                    ),
                    opts=child,
                )
            )
        self.register_outputs({"accessories": sorted(s.accessories)})


def bucket_script(buckets: Mapping[str, bool]) -> str:
    """The one-off `mc` run: wait for MinIO, create each bucket, open public ones for reading."""
    lines = [
        "set -eu",
        f'until mc alias set ladder http://{MINIO_HOST}:{MINIO_PORT} "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"',
        "do sleep 1; done",
    ]
    for bucket, public in sorted(buckets.items()):
        target = shlex.quote(f"ladder/{bucket}")
        lines.append(f"mc mb --ignore-existing {target}")
        lines.append(f"mc anonymous set {'download' if public else 'none'} {target}")
    return "\n".join(lines) + "\n"


@dataclass
class MinioArgs:
    settings: Settings
    network: pulumi.Input[str]
    prefix: str


class Minio(pulumi.ComponentResource):
    """MinIO for the local rung's buckets; exposes `keys` (user, password: secrets) and `ready`."""

    def __init__(self, name: str, args: MinioArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ladder:index:Minio", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        password = random.RandomPassword(f"{name}-password", length=32, special=False, opts=child)
        image = docker.RemoteImage(f"{name}-image", name=versions.MINIO_IMAGE, keep_locally=True, opts=child)
        env = pulumi.Output.secret(
            password.result.apply(lambda pw: [f"MINIO_ROOT_USER={MINIO_USER}", f"MINIO_ROOT_PASSWORD={pw}"])
        )
        server = docker.Container(
            f"{name}-server",
            **container_args(
                f"{args.prefix}-minio",
                image.name,
                args.network,
                [MINIO_HOST],
                entrypoints=["minio"],
                command=["server", "/data", "--address", f":{MINIO_PORT}"],
                envs=env,
                # The image ships a static curl; MinIO's liveness endpoint needs no credentials.
                healthcheck=healthcheck(
                    ["CMD", "curl", "-fsS", "-o", "/dev/null", f"http://127.0.0.1:{MINIO_PORT}/minio/health/live"],
                    start_period="5s",
                ),
                wait=True,
                wait_timeout=120,
                volumes=named_volumes(
                    "minio", args.prefix, {"/data": None}, pulumi.ResourceOptions(parent=self, protect=s.protected)
                ),
            ),
            opts=child,
        )
        buckets = {b: cfg.public for b, cfg in s.buckets.items() if not cfg.external}
        init = docker.Container(
            f"{name}-buckets",
            **container_args(
                f"{args.prefix}-minio-buckets",
                image.name,
                args.network,
                [],
                restart="no",
                entrypoints=["/bin/sh", "-c"],
                command=[bucket_script(buckets)],
                envs=env,
                must_run=False,
                attach=True,
                logs=True,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[server]),
        )
        self.keys = (pulumi.Output.secret(MINIO_USER), pulumi.Output.secret(password.result))
        self.ready: list[pulumi.Resource] = [server, init]
        self.register_outputs({"endpoint": f"http://{MINIO_HOST}:{MINIO_PORT}"})
