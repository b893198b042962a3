"""`ladder:index:LocalStack`: the whole app on the developer's Docker engine behind Caddy on localhost."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components import images, versions
from components.buckets import Buckets, BucketsArgs
from components.local.app import App, AppArgs
from components.local.docker_common import container_args, healthcheck, http_probe
from components.local.extras import Accessories, AccessoriesArgs, Minio, MinioArgs
from components.local.postgres import Postgres, PostgresArgs
from components.local.redis import Redis, RedisArgs
from components.render.appenv import accessory_env
from components.render.caddy import LOCAL_PROXY_PORT as PROXY_PORT
from components.render.caddy import local_caddyfile
from components.settings import Settings


@dataclass
class LocalStackArgs:
    settings: Settings


class LocalStack(pulumi.ComponentResource):
    """Network, data containers, app containers and a Caddy proxy on 127.0.0.1."""

    def __init__(self, name: str, args: LocalStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ladder:index:LocalStack", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.settings
        prefix = f"{s.app.name}-{pulumi.get_stack()}"

        network = docker.Network(f"{name}-network", name=prefix, driver="bridge", opts=child)
        secret_env: dict[str, pulumi.Input[str]] = {
            key: pulumi.Output.secret(s.secret(key) or "") for key in s.app.secret_env
        }
        data: list[pulumi.Resource] = []
        self.database_host: pulumi.Output[str] | None = None
        if s.postgres.mode == "container":
            pg = Postgres(
                "postgres",
                PostgresArgs(s.postgres, network.name, prefix, database=s.app.database, protect=s.protected),
                opts=child,
            )
            secret_env["DATABASE_URL"] = pg.url
            self.database_host = pg.host
            data.append(pg)
        elif s.postgres.mode == "external":
            secret_env["DATABASE_URL"] = pulumi.Output.secret(s.secret("DATABASE_URL") or "")
        if s.redis.mode == "container":
            redis = Redis("redis", RedisArgs(s.redis, network.name, prefix, protect=s.protected), opts=child)
            secret_env["REDIS_URL"] = redis.url
            data.append(redis)
        elif s.redis.mode == "external":
            secret_env["REDIS_URL"] = pulumi.Output.secret(s.secret("REDIS_URL") or "")

        # Built into the local engine (no push) under a tag derived from the source.
        self.images = images.build_images(name, s, push=False, opts=child)
        built = {svc: self.images.references[svc] for plan in self.images.plans for svc in plan.services}
        if s.accessories:
            accessories = Accessories(
                "accessories",
                AccessoriesArgs(
                    s,
                    network.name,
                    prefix,
                    {
                        name: {key: pulumi.Output.secret(s.secret(key) or "") for key in acc.secret_env}
                        for name, acc in s.accessories.items()
                    },
                    logins=images.registry_logins(s),
                ),
                opts=child,
            )
            data += accessories.containers
        extra_env = accessory_env(s, lambda name: name)
        if s.buckets:
            minio = Minio("minio", MinioArgs(s, network.name, prefix), opts=child) if self._local_buckets(s) else None
            buckets = Buckets(
                "buckets",
                BucketsArgs(s, pulumi.get_stack(), local_keys=minio.keys if minio else None),
                opts=child,
            )
            extra_env.update(buckets.plain_env)
            secret_env.update(buckets.secret_env)
            data += minio.ready if minio else []

        app = App(
            "app",
            AppArgs(
                s.app,
                network.name,
                prefix,
                secret_env,
                depends_on=data,
                built=built,
                logins=images.registry_logins(s),
                extra_env=extra_env,
                protect=s.protected,
            ),
            opts=child,
        )

        self.caddyfile = local_caddyfile(s.app)
        caddy_image = docker.RemoteImage(
            f"{name}-proxy-image", name=versions.CADDY_IMAGE, keep_locally=True, opts=child
        )
        docker.Container(
            f"{name}-proxy",
            **container_args(
                f"{prefix}-proxy",
                caddy_image.name,
                network.name,
                ["proxy"],
                user="65534:65534",
                capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"], adds=["NET_BIND_SERVICE"]),
                envs=["XDG_CONFIG_HOME=/tmp/config", "XDG_DATA_HOME=/tmp/data"],
                ports=[docker.ContainerPortArgs(internal=PROXY_PORT, external=PROXY_PORT, ip="127.0.0.1")],
                uploads=[docker.ContainerUploadArgs(file="/etc/caddy/Caddyfile", content=self.caddyfile)],
                healthcheck=healthcheck(http_probe(PROXY_PORT, "/"), start_period="5s"),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[app]),
        )
        self.url = pulumi.Output.from_input(f"http://localhost:{PROXY_PORT}")
        self.register_outputs({"url": self.url})

    @staticmethod
    def _local_buckets(s: Settings) -> bool:
        """MinIO runs when some bucket is not an existing one (those need no local server)."""
        return any(not b.external for b in s.buckets.values())
