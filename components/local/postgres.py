"""Postgres as a container on the developer's Docker engine (official image, named volume)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components import versions
from components.local.docker_common import container_args, healthcheck, published
from components.render.urls import postgres_url
from components.settings import PostgresConfig

PORT = 5432


def data_path(version: str) -> str:
    """Where the official image keeps its data: Postgres 18 moved it to /var/lib/postgresql."""
    return "/var/lib/postgresql" if int(version) >= 18 else "/var/lib/postgresql/data"


@dataclass
class PostgresArgs:
    config: PostgresConfig
    network: pulumi.Input[str]
    prefix: str
    database: str
    protect: bool


class Postgres(pulumi.ComponentResource):
    """Postgres for the local rung; owns its password and exposes `url` (secret)."""

    def __init__(self, name: str, args: PostgresArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ladder:index:Postgres", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stateful = pulumi.ResourceOptions(parent=self, protect=args.protect)

        password = random.RandomPassword(f"{name}-password", length=32, special=False, opts=child)
        image = docker.RemoteImage(
            f"{name}-image", name=versions.POSTGRES_IMAGES[args.config.version], keep_locally=True, opts=child
        )
        volume = docker.Volume(f"{name}-data", name=f"{args.prefix}-postgres-data", opts=stateful)
        user = args.database
        self.container = docker.Container(
            f"{name}-container",
            **container_args(
                f"{args.prefix}-postgres",
                image.name,
                args.network,
                ["postgres"],
                user="postgres",
                envs=pulumi.Output.secret(
                    password.result.apply(
                        lambda pw: [f"POSTGRES_USER={user}", f"POSTGRES_DB={args.database}", f"POSTGRES_PASSWORD={pw}"]
                    )
                ),
                volumes=[
                    docker.ContainerVolumeArgs(volume_name=volume.name, container_path=data_path(args.config.version))
                ],
                healthcheck=healthcheck(["CMD-SHELL", f"pg_isready -U {user} -d {args.database}"]),
                **published(args.config.publish_port, PORT),
                wait=True,
                wait_timeout=120,
            ),
            opts=child,
        )
        self.host = pulumi.Output.from_input("postgres")
        self.url = postgres_url(user, password.result, "postgres", PORT, args.database)
        self.register_outputs({"host": self.host, "url": self.url})
