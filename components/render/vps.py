"""What each VPS host gets, as plain data: its files, its deploy plan, its env files."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from components.render import envfile, registry_login, vps_extras
from components.render.backup import vps_backup_args
from components.render.caddy import vps_caddyfile
from components.render.compose import (
    APP_ENV,
    POSTGRES_ENV,
    PROJECT_DIR,
    VALKEY_ENV,
    Role,
    compose_document,
    render_compose,
)
from components.render.deploy import DeployPlan
from components.render.watch import WatchArgs
from components.settings import Settings


def data_services(s: Settings, role: Role) -> list[str]:
    """What step 5 starts (and waits for) before the app: the stores and the accessories."""
    if not role.data:
        return []
    stores = [name for name, mode in (("postgres", s.postgres.mode), ("valkey", s.redis.mode)) if mode == "container"]
    return stores + sorted(s.accessories)


def uses_data_volume(s: Settings, role: Role) -> bool:
    """The host mounts the block volume: it holds Postgres, an accessory or a service volume."""
    return bool(vps_extras.volume_dirs(s, role.app, role.data)) or (role.data and s.postgres.mode == "container")


def secret_file_names(s: Settings, role: Role) -> list[str]:
    names = [APP_ENV] if role.app else []
    stores = data_services(s, role)
    if "postgres" in stores:
        names.append(POSTGRES_ENV)
    if "valkey" in stores:
        names.append(VALKEY_ENV)
    if role.data:
        names += sorted(vps_extras.accessory_env_files(s))
    return names


def backs_up(s: Settings, role: Role) -> bool:
    """A host holding Postgres, a service volume or an accessory backup runs the backup timer
    when credentials are configured."""
    b = s.backups
    holds = "postgres" in data_services(s, role) or bool(vps_extras.archives(s, role.app, role.data))
    return bool(b and b.access_key_id and b.secret_access_key and holds)


def alerts(s: Settings) -> bool:
    """Failed jobs mail `monitoring.alertEmail` when the SMTP relay is configured (any provider)."""
    m = s.monitoring
    return bool(m.enabled and m.alert_email and m.smtp_host and m.smtp_from)


def watches(s: Settings, role: Role) -> bool:
    """App hosts watch their own public URL where the provider has no uptime service."""
    m = s.monitoring
    return bool(
        role.app and m.enabled and m.alert_email and m.smtp_host and m.smtp_from and s.provider_name != "digitalocean"
    )


def watch_args(s: Settings, host_label: str) -> WatchArgs:
    m = s.monitoring
    assert m.alert_email and m.smtp_host and m.smtp_from
    health = next(iter(s.app.routed_services.values())).health_path if s.app.routed_services else "/"
    return WatchArgs(f"https://{s.public_host}{health}", m.alert_email, m.smtp_host, m.smtp_from, host_label)


def host_plan(
    s: Settings,
    role: Role,
    run_release: bool,
    volume_device: str | None = None,
    stack: str = "stack",
    images: Mapping[str, str] | None = None,
) -> DeployPlan:
    """What one host's deploy does. `images`: the references of services built from source."""
    files = {"compose.yaml": render_compose(s, role, images)}
    document = compose_document(s, role, images)
    services = document["services"]
    if role.app:
        files["caddy/Caddyfile"] = vps_caddyfile(s, role.behind_load_balancer)
    routed = {n: max(1, svc.replica_count) for n, svc in s.app.services.items() if svc.routed} if role.app else {}
    workers = [n for n, svc in s.app.services.items() if not svc.routed] if role.app else []
    release = (s.app.release.service, tuple(s.app.release.command)) if (s.app.release and run_release) else None
    stores = data_services(s, role)
    return DeployPlan(
        app=s.app.name,
        files=files,
        secret_files=secret_file_names(s, role),
        data_services=stores,
        release=release,
        routed=routed,
        ports={n: svc.port for n, svc in s.app.routed_services.items() if svc.port is not None} if role.app else {},
        definitions={n: json.dumps(services[n], sort_keys=True) for n in routed},
        workers=workers,
        proxy=role.app,
        volume_device=volume_device if uses_data_volume(s, role) else None,
        backup=vps_backup_args(
            s,
            stack,
            f"{PROJECT_DIR}/compose.yaml",
            routed_and_workers(s, role),
            archives=vps_extras.archives(s, role.app, role.data),
            postgres="postgres" in stores,
        )
        if backs_up(s, role)
        else None,
        watch=watch_args(s, f"{s.app.name}-{stack}") if watches(s, role) else None,
        database_ca=role.app and s.postgres.mode == "managed",
        registries=registry_login.logins_for(s, registry_login.compose_registries(document)),
        **extras_plan(s, role, run_release, stack),
    )


def extras_plan(s: Settings, role: Role, job_host: bool, stack: str) -> dict[str, Any]:
    """The DeployPlan fields of issue 14: volume directories, data volume, and on the job host
    (the first app server, where the release runs: the deploy's lock there keeps jobs out of
    it) the job units, their alert path and the cleanup of removed jobs' timers."""
    plan: dict[str, Any] = {
        "data_volume": uses_data_volume(s, role),
        "volume_dirs": tuple(vps_extras.volume_dirs(s, role.app, role.data)),
        "lock_wait": vps_extras.deploy_lock_wait(s),
    }
    if role.app and job_host:
        alert = watch_args(s, f"{s.app.name}-{stack}") if alerts(s) and s.app.jobs else None
        plan["job_files"] = tuple(vps_extras.job_files(s, alert))
        plan["jobs_install"] = vps_extras.jobs_install_command(s)
        plan["alert"] = alert
    return plan


def routed_and_workers(s: Settings, role: Role) -> list[str]:
    return list(s.app.services) if role.app else []


def app_env(s: Settings, values: Mapping[str, str]) -> str:
    """The app's secret env file: secretEnv values and the injected connection URLs."""
    for key in s.app.secret_env:
        if key not in values:
            raise ValueError(f"no value for {key}")
    return envfile.render(values)
