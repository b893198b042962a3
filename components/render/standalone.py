"""Standalone Compose projects for `make eject`: the stack, runnable without Pulumi.

Pure: settings and build plans in, files out. Secret values never appear: services read
them from env files the user fills in from the written `*.example` files (names only),
and a missing value stops `docker compose` (`${NAME:?...}`) instead of starting a
service with an empty password. Every literal Ladder copies from the config into the
compose file has its `$` doubled, so Compose never interpolates a user's string.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from components import versions
from components.images import BuildPlan
from components.local.docker_common import LOG_OPTS, http_probe
from components.local.postgres import PORT as POSTGRES_PORT
from components.local.postgres import data_path
from components.local.redis import PING, server_command
from components.local.redis import PORT as VALKEY_PORT
from components.render.caddy import LOCAL_PROXY_PORT, local_caddyfile, vps_caddyfile
from components.render.compose import APP_ENV, POSTGRES_ENV, VALKEY_ENV, Role, compose_document, without_deploy
from components.settings import Service, Settings

ENV_EXAMPLE = ".env.example"
LOGGING = {"driver": "json-file", "options": LOG_OPTS}
HARDENED: dict[str, Any] = {"security_opt": ["no-new-privileges:true"], "cap_drop": ["ALL"]}


class _NoAliases(yaml.SafeDumper):
    """Repeated blocks written out in full: a reader should not have to chase YAML anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_NoAliases, sort_keys=False, width=1000)


def literal(value: Any) -> Any:
    """A config value as Compose must see it: `$` doubled so nothing is interpolated."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, list):
        return [literal(v) for v in value]
    if isinstance(value, dict):
        return {k: literal(v) for k, v in value.items()}
    return value


def required(name: str) -> str:
    """An interpolation that stops Compose when the value is missing or empty."""
    return "${" + name + ":?set " + name + " in .env}"


def _relative(path: str, project_dir: Path, out_dir: Path) -> str:
    """A project-relative path as seen from the eject directory (Compose resolves from there)."""
    rel = os.path.relpath((project_dir / path).resolve(), out_dir.resolve())
    return rel if rel.startswith(".") else f"./{rel}"


def build_section(plan: BuildPlan, project_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Compose's `build:` for a planned build; `dockerfile` is relative to the context, as in Ladder."""
    b = plan.build
    out: dict[str, Any] = {"context": _relative(b.context, project_dir, out_dir), "dockerfile": b.dockerfile}
    if b.target:
        out["target"] = b.target
    if b.args:
        out["args"] = literal(dict(sorted(b.args.items())))
    if b.platform:
        out["platforms"] = [b.platform]
    return out


def _image_fields(
    name: str, svc: Service, plans: Sequence[BuildPlan], project_dir: Path, out_dir: Path, built: set[str]
) -> dict[str, Any]:
    """`image`, plus `build` on the first service of each build (the others reuse its tag)."""
    plan = next((p for p in plans if name in p.services), None)
    if plan is None:
        return {"image": svc.pulled_image}
    if plan.key in built:
        return {"image": plan.reference}
    built.add(plan.key)
    return {"image": plan.reference, "build": build_section(plan, project_dir, out_dir)}


def secret_names(s: Settings) -> list[str]:
    """The app's secret environment: what the user must provide."""
    return list(s.app.secret_env)


def _store_urls(s: Settings) -> dict[str, str]:
    urls: dict[str, str] = {}
    db = s.app.database
    if s.postgres.mode == "container":
        urls["DATABASE_URL"] = f"postgresql://{db}:${{POSTGRES_PASSWORD}}@postgres:{POSTGRES_PORT}/{db}"
    elif s.postgres.mode == "external":
        urls["DATABASE_URL"] = required("DATABASE_URL")
    if s.redis.mode == "container":
        urls["REDIS_URL"] = f"redis://:${{VALKEY_PASSWORD}}@redis:{VALKEY_PORT}/0"
    elif s.redis.mode == "external":
        urls["REDIS_URL"] = required("REDIS_URL")
    return urls


def local_env_names(s: Settings) -> list[str]:
    names = []
    if s.postgres.mode == "container":
        names.append("POSTGRES_PASSWORD")
    elif s.postgres.mode == "external":
        names.append("DATABASE_URL")
    if s.redis.mode == "container":
        names.append("VALKEY_PASSWORD")
    elif s.redis.mode == "external":
        names.append("REDIS_URL")
    return names + secret_names(s)


def env_example(names: Sequence[str], header: str) -> str:
    """Names only, empty values: the file the user copies and fills in."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    return "\n".join([*lines, *(f"{n}=" for n in names)]) + "\n"


def _published(port: int | None, internal: int) -> dict[str, Any]:
    return {"ports": [f"127.0.0.1:{port}:{internal}"]} if port else {}


def local_compose(
    s: Settings, plans: Sequence[BuildPlan], project_dir: Path, out_dir: Path, stack: str
) -> dict[str, Any]:
    """The local rung as one Compose project: stores, release, services, Caddy on 127.0.0.1."""
    services: dict[str, Any] = {}
    stores: list[str] = []
    if s.postgres.mode == "container":
        db = s.app.database
        services["postgres"] = {
            "image": versions.POSTGRES_IMAGES[s.postgres.version],
            "restart": "unless-stopped",
            "user": "postgres",
            "environment": {"POSTGRES_USER": db, "POSTGRES_DB": db, "POSTGRES_PASSWORD": required("POSTGRES_PASSWORD")},
            "volumes": [f"postgres-data:{data_path(s.postgres.version)}"],
            "healthcheck": {"test": ["CMD-SHELL", f"pg_isready -U {db} -d {db}"], "interval": "10s", "retries": 5},
            "logging": LOGGING,
            **_published(s.postgres.publish_port, POSTGRES_PORT),
        }
        stores.append("postgres")
    if s.redis.mode == "container":
        services["redis"] = {
            "image": versions.VALKEY_IMAGES[s.redis.version],
            "restart": "unless-stopped",
            "user": "valkey",
            "command": literal(server_command(s.redis.max_memory_mb)),
            "environment": {"VALKEY_PASSWORD": required("VALKEY_PASSWORD")},
            "volumes": ["valkey-data:/data"],
            "healthcheck": {"test": literal(PING), "interval": "10s", "retries": 5},
            "logging": LOGGING,
            **_published(s.redis.publish_port, VALKEY_PORT),
        }
        stores.append("redis")

    environment = {
        "LADDER_PHASE": "local",
        **literal(dict(s.app.env)),
        **_store_urls(s),
        **{name: required(name) for name in secret_names(s)},
    }
    healthy = {store: {"condition": "service_healthy"} for store in stores}
    built: set[str] = set()
    app = s.app
    if app.release:
        svc = app.services[app.release.service]
        services["release"] = {
            **_image_fields(app.release.service, svc, plans, project_dir, out_dir, built),
            "restart": "no",
            "command": literal(list(app.release.command)),
            "environment": environment,
            **({"depends_on": healthy} if healthy else {}),
            "logging": LOGGING,
            **HARDENED,
        }
    for name, svc in app.services.items():
        body: dict[str, Any] = {
            **_image_fields(name, svc, plans, project_dir, out_dir, built),
            "restart": "unless-stopped",
            "environment": {**environment, "LADDER_SERVICE": name},
            "logging": LOGGING,
            **HARDENED,
        }
        command = (svc.dev.command if svc.dev and svc.dev.command else None) or svc.command
        if command:
            body["command"] = literal(list(command))
        if svc.dev and svc.dev.mounts:
            body["volumes"] = [
                {
                    "type": "bind",
                    "source": _relative(m.source, project_dir, out_dir),
                    "target": m.target,
                    "read_only": m.read_only,
                }
                for m in svc.dev.mounts
            ]
        if svc.port is not None:
            body["healthcheck"] = {"test": http_probe(svc.port, svc.health_path), "interval": "10s", "retries": 5}
        depends = dict(healthy)
        if app.release:
            depends["release"] = {"condition": "service_completed_successfully"}
        if depends:
            body["depends_on"] = depends
        services[name] = body
    services["proxy"] = {
        "image": versions.CADDY_IMAGE,
        "restart": "unless-stopped",
        "user": "65534:65534",
        "environment": {"XDG_CONFIG_HOME": "/tmp/config", "XDG_DATA_HOME": "/tmp/data"},
        "ports": [f"127.0.0.1:{LOCAL_PROXY_PORT}:{LOCAL_PROXY_PORT}"],
        "volumes": ["./Caddyfile:/etc/caddy/Caddyfile:ro"],
        "depends_on": list(app.routed_services),
        "logging": LOGGING,
        "security_opt": ["no-new-privileges:true"],
        "cap_drop": ["ALL"],
        "cap_add": ["NET_BIND_SERVICE"],
    }
    volumes: dict[str, Any] = {("postgres-data" if store == "postgres" else "valkey-data"): {} for store in stores}
    return {"name": f"{app.name}-{stack}", "services": services, "volumes": volumes}


def local_files(
    s: Settings, plans: Sequence[BuildPlan], project_dir: Path, out_dir: Path, stack: str
) -> dict[str, str]:
    doc = local_compose(s, plans, project_dir, out_dir, stack)
    return {
        "compose.yaml": dump(doc),
        "Caddyfile": local_caddyfile(s.app),
        ENV_EXAMPLE: env_example(
            local_env_names(s),
            "Copy to .env and fill in every value (docker compose refuses to start without them).\n"
            "Passwords: letters and digits (they are part of connection URLs).",
        ),
    }


def vps_files(s: Settings, role: Role, plans: Sequence[BuildPlan], project_dir: Path, out_dir: Path) -> dict[str, str]:
    """The VPS rung's own Compose document (components/render/compose.py), made standalone.

    Built services get their planned tag and a `build:` section; the env files the deploy
    writes from Pulumi secrets become `*.example` files with names only.
    """
    doc = without_deploy(compose_document(s, role), s)
    built: set[str] = set()
    for name, svc in s.app.services.items():
        if name in doc["services"]:
            doc["services"][name].update(_image_fields(name, svc, plans, project_dir, out_dir, built))
    files = {"compose.yaml": dump(doc)}
    if role.app:
        files["caddy/Caddyfile"] = vps_caddyfile(s, role.behind_load_balancer)
        app_names = [*secret_names(s)]
        if s.postgres.mode != "none":
            app_names.append("DATABASE_URL")
        if s.redis.mode != "none":
            app_names.append("REDIS_URL")
        files[f"{APP_ENV}.example"] = env_example(app_names, f"Copy to {APP_ENV} (mode 600) and fill in.")
    if s.postgres.mode == "container":
        files[f"{POSTGRES_ENV}.example"] = env_example(
            ["POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD"],
            f"Copy to {POSTGRES_ENV} (mode 600); POSTGRES_USER and POSTGRES_DB: {s.app.database}.",
        )
    if s.redis.mode == "container":
        files[f"{VALKEY_ENV}.example"] = env_example(["VALKEY_PASSWORD"], f"Copy to {VALKEY_ENV} (mode 600).")
    return files


def env_files_of(files: Mapping[str, str]) -> list[str]:
    """The example files of an eject, by name (what a user, or a test, turns into real env files)."""
    return sorted(name for name in files if name.endswith(".example"))
