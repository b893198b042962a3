"""`ladder:index:VpsStack`: servers (or your hosts), data, and the Compose deploy over SSH."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components import images
from components.buckets import Buckets, BucketsArgs
from components.render import appenv, hardening
from components.settings import Settings
from components.vps import topology as t
from components.vps.app import App, AppArgs
from components.vps.data import DataArgs, Postgres, Redis
from components.vps.hosts import Fleet, server_hardening


@dataclass
class VpsStackArgs:
    settings: Settings


def _provision(name: str, s: Settings, opts: pulumi.ResourceOptions) -> Fleet:
    # Imported lazily: a Hetzner stack never loads the DigitalOcean SDK, and vice versa.
    if s.provider_name == "hetzner":
        from components.vps import hetzner

        return hetzner.provision(name, s, opts)
    if s.provider_name == "digitalocean":
        from components.vps import digitalocean

        return digitalocean.provision(name, s, opts)
    from components.vps import existing

    return existing.provision(name, s, opts)


class VpsStack(pulumi.ComponentResource):
    def __init__(self, name: str, args: VpsStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ladder:index:VpsStack", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        topo = t.topology(s)
        fleet = _provision(name, s, child)

        pg_host = t.DATA_SERVER_IP if topo.data_server else "postgres"
        redis_host = t.DATA_SERVER_IP if topo.data_server else "valkey"
        urls: dict[str, pulumi.Output[str]] = {}
        postgres = redis = None
        if s.postgres.mode != "none":
            postgres = Postgres("postgres", DataArgs(s, fleet, pg_host), opts=child)
            urls["DATABASE_URL"] = postgres.url
        if s.redis.mode != "none":
            redis = Redis("redis", DataArgs(s, fleet, redis_host), opts=child)
            urls["REDIS_URL"] = redis.url

        # Accessories on the data host (its private IP with several servers), buckets' S3_* env.
        extra_env: dict[str, pulumi.Input[str]] = dict(
            appenv.accessory_env(s, lambda acc: t.DATA_SERVER_IP if topo.data_server else acc)
        )
        if s.buckets:
            buckets = Buckets("buckets", BucketsArgs(s, pulumi.get_stack()), opts=child)
            extra_env.update(buckets.plain_env)
            extra_env.update(buckets.secret_env)

        if s.backups and not (s.backups.access_key_id and s.backups.secret_access_key):
            pulumi.log.warn(
                "ladder:backups has no accessKeyId/secretAccessKey: the VPS backup timer is not installed",
                resource=self,
            )
        scripts: dict[str, pulumi.Output[str]] = {}
        if s.provider_name == "existing":
            for i, host in enumerate(fleet.hosts):
                # SSH open in ufw here; the access step narrows it to the allowlist right after.
                h = server_hardening(s, topo, web=True, bootstrap=True, ssh_port=host.port)
                scripts[host.name] = pulumi.Output.from_input(hardening.shell_script(h, s.vps.hosts[i].user))

        # Built from source on the operator's machine (BuildKit), pushed to ladder:app.defaultRepo;
        # the hosts pull the pushed digest with the registry credentials.
        built = images.build_images(name, s, push=True, opts=child)
        App(
            "app",
            AppArgs(
                s,
                fleet,
                urls,
                postgres_env=postgres.env_file if postgres else None,
                valkey_env=redis.env_file if redis else None,
                hardening=scripts,
                database_ca=postgres.ca if postgres else None,
                images={svc: built.references[svc] for plan in built.plans for svc in plan.services},
                planned_images={svc: built.planned[svc] for plan in built.plans for svc in plan.services},
                extra_env=extra_env,
            ),
            opts=child,
        )
        if s.provider_name == "digitalocean":
            from components import do_common

            do_common.backup_bucket(name, s, s.vps.region or "fra1", child)
            do_common.uptime_alerts(name, s, child, fleet.firewall_targets)
        elif s.monitoring.enabled and not (s.monitoring.smtp_host and s.monitoring.smtp_from):
            pulumi.log.warn(
                "ladder:monitoring on a Hetzner/existing VPS mails through monitoring.smtpHost/smtpFrom, "
                "which are not set: no uptime watch is installed",
                resource=self,
            )
        self.url = pulumi.Output.from_input(f"https://{s.domain}")
        self.server_ips = fleet.server_ips
        self.public_ip = fleet.public_ip
        self.database_host = postgres.host if postgres else None
        self.register_outputs({"url": self.url, "serverIps": self.server_ips})
