"""Postgres and Redis for the VPS rung (`ladder:index:Postgres`, `ladder:index:Redis`).

Each owns its credentials and exposes `url` (a secret). Container mode: a password and
the env file the container reads; managed mode (DigitalOcean): a database cluster in the
VPC behind a firewall admitting only the droplets.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random

from components.render import envfile
from components.render.compose import DATABASE_CA_PARAMS
from components.render.urls import postgres_url, redis_url
from components.settings import Settings
from components.vps.hosts import Fleet


@dataclass
class DataArgs:
    settings: Settings
    fleet: Fleet
    host: str  # where the container runs, as the app sees it: the service name or the data server's IP


def _droplets(args: DataArgs) -> list[tuple[str, pulumi.Input[str]]]:
    """Managed databases admit only the stack's droplets."""
    return [("droplet", d) for d in args.fleet.firewall_targets]


class Postgres(pulumi.ComponentResource):
    def __init__(self, name: str, args: DataArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ladder:index:Postgres", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        db = s.app.database
        self.env_file: pulumi.Output[str] | None = None
        self.ca: pulumi.Output[str] | None = None  # managed: the cluster's CA, for verify-full
        self.host: pulumi.Output[str] = pulumi.Output.from_input(args.host)
        if s.postgres.mode == "container":
            password = random.RandomPassword(f"{name}-password", length=32, special=False, opts=child)
            self.url = postgres_url(db, password.result, args.host, 5432, db)
            self.env_file = pulumi.Output.secret(
                password.result.apply(
                    lambda pw: envfile.render({"POSTGRES_USER": db, "POSTGRES_DB": db, "POSTGRES_PASSWORD": pw})
                )
            )
        elif s.postgres.mode == "managed":
            import pulumi_digitalocean as digitalocean

            from components import do_common

            assert args.fleet.vpc_id is not None
            cluster = do_common.managed_database(
                name, s, "pg", s.vps.region or "fra1", args.fleet.vpc_id, _droplets(args), child
            )
            database = digitalocean.DatabaseDb(
                f"{name}-db",
                cluster_id=cluster.id,
                name=db,
                opts=pulumi.ResourceOptions(parent=self, protect=s.protected),
            )
            user = digitalocean.DatabaseUser(f"{name}-user", cluster_id=cluster.id, name=f"{db}_app", opts=child)
            self.host = cluster.private_host
            # verify-full against the cluster's own CA (DigitalOcean signs database certificates
            # with a per-project CA no system trust store holds); the deploy writes it beside
            # the compose file and the app services mount it (components.render.compose).
            self.ca = digitalocean.get_database_ca_output(cluster_id=cluster.id).apply(
                lambda result: result.certificate or ""
            )
            self.url = postgres_url(
                user.name, user.password, cluster.private_host, cluster.port, database.name, DATABASE_CA_PARAMS
            )
        else:
            self.url = pulumi.Output.secret(s.secret("DATABASE_URL") or "")
        self.register_outputs({"url": self.url, "host": self.host})


class Redis(pulumi.ComponentResource):
    def __init__(self, name: str, args: DataArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ladder:index:Redis", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        self.env_file: pulumi.Output[str] | None = None
        if s.redis.mode == "container":
            password = random.RandomPassword(f"{name}-password", length=32, special=False, opts=child)
            self.url = redis_url(password.result, args.host, 6379)
            self.env_file = pulumi.Output.secret(
                password.result.apply(lambda pw: envfile.render({"VALKEY_PASSWORD": pw}))
            )
        elif s.redis.mode == "managed":
            from components import do_common

            assert args.fleet.vpc_id is not None
            cluster = do_common.managed_database(
                name, s, "valkey", s.vps.region or "fra1", args.fleet.vpc_id, _droplets(args), child
            )
            self.url = redis_url(cluster.password, cluster.private_host, cluster.port, tls=True)
        else:
            self.url = pulumi.Output.secret(s.secret("REDIS_URL") or "")
        self.register_outputs({"url": self.url})
