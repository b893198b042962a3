"""`ladder:index:App` on the VPS rung: the Compose project on each host, deployed over SSH.

The deploy command's trigger is a hash of everything it deploys (files, env, images), so
an image bump re-runs the deploy and touches nothing else: servers and volumes keep
their inputs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial

import pulumi
import pulumi_command as command

from components import access
from components.render import envfile, registry_login, vps_extras
from components.render import vps as render
from components.render.backup import backup_env_file
from components.render.compose import APP_ENV, DATABASE_CA, POSTGRES_ENV, VALKEY_ENV
from components.render.deploy import BACKUP_ENV, WATCH_ENV, DeployPlan, deploy_script
from components.render.sudo import AS_ROOT
from components.render.watch import watch_env_file
from components.settings import Settings
from components.vps.hosts import Fleet, Host


@dataclass
class AppArgs:
    settings: Settings
    fleet: Fleet
    urls: dict[str, pulumi.Output[str]]  # DATABASE_URL / REDIS_URL, secrets
    postgres_env: pulumi.Output[str] | None = None
    valkey_env: pulumi.Output[str] | None = None
    database_ca: pulumi.Output[str] | None = None  # managed Postgres: its CA certificate (PEM)
    hardening: dict[str, pulumi.Output[str]] = field(default_factory=dict)  # host name -> script (existing hosts)
    # Services built from source: the reference each runs (`repo@sha256:…` once pushed), and
    # the one known at plan time (`repo:<stack>-<source hash>`).
    images: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)
    planned_images: Mapping[str, str] = field(default_factory=dict)
    # Accessory hosts and ports, bucket settings (plain) and bucket keys (secrets): into app.env.
    extra_env: dict[str, pulumi.Input[str]] = field(default_factory=dict)


def connection(host: Host) -> command.remote.ConnectionArgs:
    return command.remote.ConnectionArgs(
        host=host.address,
        user=host.user,
        port=host.port,
        private_key=host.private_key,
        host_key=host.host_key,
        dial_error_limit=30,
    )


def _script(
    plan_for: Callable[[Mapping[str, str]], DeployPlan], built: list[str], keys: list[str], resolved: list[object]
) -> str:
    """The deploy script once the volume device, built images and secrets are known (inside `apply`).

    A built image enters the compose file by digest: a push that changed it changes the
    script (and so re-runs the deploy); an unchanged build leaves the script as it was.
    """
    images = dict(zip(built, [str(v) for v in resolved[1 : 1 + len(built)]], strict=True))
    plan = plan_for(images)
    device = str(resolved[0]) if resolved[0] and plan.data_volume else None
    secrets = dict(zip(keys, [str(v) for v in resolved[1 + len(built) :]], strict=True))
    return deploy_script(replace(plan, volume_device=device), secrets)


class App(pulumi.ComponentResource):
    def __init__(self, name: str, args: AppArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ladder:index:App", name, None, opts)
        s = args.settings
        values: dict[str, pulumi.Input[str]] = {k: pulumi.Output.secret(s.secret(k) or "") for k in s.app.secret_env}
        values.update(args.urls)
        values.update(args.extra_env)
        names = sorted(values)
        app_env: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(*[values[n] for n in names]).apply(
                lambda vs: render.app_env(s, dict(zip(names, [str(v) for v in vs], strict=True)))
            )
        )
        self.deploys: dict[str, command.remote.Command] = {}
        data_first = sorted(args.fleet.hosts, key=lambda h: h.role.app)
        previous: list[pulumi.Resource] = []
        release_done = False
        for host in data_first:
            after: list[pulumi.Resource] = [*host.ready, *previous]
            hardening = args.hardening.get(host.name)
            if hardening is not None:  # a host you run: hardened over SSH first
                after.append(
                    command.remote.Command(
                        f"{name}-{host.name}-harden",
                        connection=connection(host),
                        create=AS_ROOT,
                        stdin=hardening,
                        triggers=[hardening.apply(lambda t: hashlib.sha256(t.encode()).hexdigest())],
                        logging=command.remote.Logging.STDERR,
                        opts=pulumi.ResourceOptions(parent=self, depends_on=after),
                    )
                )
            after.append(
                access.rollout(
                    f"{name}-{host.name}-ssh-keys",
                    connection(host),
                    host.logins,
                    s.vps.ssh_allow_from,
                    [str(host.port)],
                    pulumi.ResourceOptions(parent=self, depends_on=list(after)),
                )
            )
            run_release = host.role.app and not release_done
            release_done = release_done or run_release
            plan_for = partial(render.host_plan, s, host.role, run_release, None, pulumi.get_stack())
            plan = plan_for(args.planned_images)
            env_inputs: dict[str, pulumi.Input[str]] = {}
            if APP_ENV in plan.secret_files:
                env_inputs[APP_ENV] = app_env
            if POSTGRES_ENV in plan.secret_files and args.postgres_env is not None:
                env_inputs[POSTGRES_ENV] = args.postgres_env
            if VALKEY_ENV in plan.secret_files and args.valkey_env is not None:
                env_inputs[VALKEY_ENV] = args.valkey_env
            if plan.backup and s.backups and s.backups.access_key_id and s.backups.secret_access_key:
                env_inputs[BACKUP_ENV] = pulumi.Output.secret(
                    backup_env_file(
                        s.backups.access_key_id.get_secret_value(),
                        s.backups.secret_access_key.get_secret_value(),
                        s.backups.region,
                    )
                )
            if plan.database_ca and args.database_ca is not None:
                env_inputs[DATABASE_CA] = args.database_ca
            for file_name, env in vps_extras.accessory_env_files(s).items():
                if file_name in plan.secret_files:
                    env_inputs[file_name] = pulumi.Output.secret(envfile.render(env))
            if plan.watch or plan.alert:
                m = s.monitoring
                password = m.smtp_password.get_secret_value() if m.smtp_password else None
                env_inputs[WATCH_ENV] = pulumi.Output.secret(watch_env_file(m.smtp_user, password))
            for server, _ in plan.registries:
                entry = s.registry_for(server)
                assert entry is not None and entry.password is not None  # logins_for picked it for these
                env_inputs[registry_login.secret_key(server)] = pulumi.Output.secret(entry.password.get_secret_value())
            keys = sorted(env_inputs)
            built = sorted(args.images)
            script: pulumi.Output[str] = pulumi.Output.secret(
                pulumi.Output.all(
                    host.volume_device, *[args.images[n] for n in built], *[env_inputs[k] for k in keys]
                ).apply(partial(_script, plan_for, built, keys))
            )
            deploy = command.remote.Command(
                f"{name}-{host.name}-deploy",
                connection=connection(host),
                create=AS_ROOT,
                stdin=script,
                triggers=[script.apply(lambda t: hashlib.sha256(t.encode()).hexdigest())],
                # The script carries env files: nothing it or Compose prints may reach the CLI's
                # output or CI logs (pulumi-command#401 streams output whatever is secret).
                logging=command.remote.Logging.NONE,
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=after, additional_secret_outputs=["stdout", "stderr"]
                ),
            )
            self.deploys[host.name] = deploy
            if not host.role.app:
                previous = [deploy]
        self.register_outputs({"hosts": list(self.deploys)})
