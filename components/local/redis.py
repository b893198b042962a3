"""Valkey (the BSD-licensed Redis) as a container on the developer's Docker engine."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components import versions
from components.local.docker_common import container_args, healthcheck, published
from components.render.urls import redis_url
from components.settings import RedisConfig

PORT = 6379


def server_command(max_memory_mb: int) -> list[str]:
    """valkey-server reading its password from the environment, not from `ps`-visible argv.

    `noeviction` because queues (BullMQ, Sidekiq, Celery) lose jobs under LRU eviction;
    a cache that fills up fails loudly instead of silently dropping work.
    """
    return [
        "sh",
        "-c",
        'exec valkey-server --requirepass "$VALKEY_PASSWORD" --appendonly yes '
        f"--maxmemory {max_memory_mb}mb --maxmemory-policy noeviction",
    ]


PING = ["CMD-SHELL", 'valkey-cli --no-auth-warning -a "$VALKEY_PASSWORD" ping | grep -q PONG']


@dataclass
class RedisArgs:
    config: RedisConfig
    network: pulumi.Input[str]
    prefix: str
    protect: bool


class Redis(pulumi.ComponentResource):
    """Valkey for the local rung; owns its password and exposes `url` (secret)."""

    def __init__(self, name: str, args: RedisArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ladder:index:Redis", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        password = random.RandomPassword(f"{name}-password", length=32, special=False, opts=child)
        image = docker.RemoteImage(
            f"{name}-image", name=versions.VALKEY_IMAGES[args.config.version], keep_locally=True, opts=child
        )
        volume = docker.Volume(
            f"{name}-data",
            name=f"{args.prefix}-valkey-data",
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        self.container = docker.Container(
            f"{name}-container",
            **container_args(
                f"{args.prefix}-valkey",
                image.name,
                args.network,
                ["redis", "valkey"],
                user="valkey",
                command=server_command(args.config.max_memory_mb),
                envs=pulumi.Output.secret(password.result.apply(lambda pw: [f"VALKEY_PASSWORD={pw}"])),
                volumes=[docker.ContainerVolumeArgs(volume_name=volume.name, container_path="/data")],
                healthcheck=healthcheck(PING, start_period="5s"),
                **published(args.config.publish_port, PORT),
                wait=True,
                wait_timeout=60,
            ),
            opts=child,
        )
        self.host = pulumi.Output.from_input("redis")
        self.url = redis_url(password.result, "redis", PORT)
        self.register_outputs({"host": self.host, "url": self.url})
