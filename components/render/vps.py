"""What each VPS host gets, as plain data: its files, its deploy plan, its env files."""

from __future__ import annotations

import json
from collections.abc import Mapping

from components.render import envfile, registry_login
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
    if not role.data:
        return []
    return [name for name, mode in (("postgres", s.postgres.mode), ("valkey", s.redis.mode)) if mode == "container"]


def secret_file_names(s: Settings, role: Role) -> list[str]:
    names = [APP_ENV] if role.app else []
    stores = data_services(s, role)
    if "postgres" in stores:
        names.append(POSTGRES_ENV)
    if "valkey" in stores:
        names.append(VALKEY_ENV)
    return names


def backs_up(s: Settings, role: Role) -> bool:
    """The host holding Postgres runs the backup timer when credentials are configured."""
    b = s.backups
    return bool(b and b.access_key_id and b.secret_access_key and "postgres" in data_services(s, role))


def watches(s: Settings, role: Role) -> bool:
    """App hosts watch their own public URL where the provider has no uptime service."""
    m = s.monitoring
    return bool(
        role.app and m.enabled and m.alert_email and m.smtp_host and m.smtp_from and s.provider_name != "digitalocean"
    )


def watch_args(s: Settings, host_label: str) -> WatchArgs:
    m = s.monitoring
    assert m.alert_email and m.smtp_host and m.smtp_from
    health = next(iter(s.app.routed_services.values())).health_path
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
        volume_device=volume_device if "postgres" in stores else None,
        backup=vps_backup_args(s, stack, f"{PROJECT_DIR}/compose.yaml", routed_and_workers(s, role))
        if backs_up(s, role)
        else None,
        watch=watch_args(s, f"{s.app.name}-{stack}") if watches(s, role) else None,
        database_ca=role.app and s.postgres.mode == "managed",
        registries=registry_login.logins_for(s, registry_login.compose_registries(document)),
    )


def routed_and_workers(s: Settings, role: Role) -> list[str]:
    return list(s.app.services) if role.app else []


def app_env(s: Settings, values: Mapping[str, str]) -> str:
    """The app's secret env file: secretEnv values and the injected connection URLs."""
    for key in s.app.secret_env:
        if key not in values:
            raise ValueError(f"no value for {key}")
    return envfile.render(values)
