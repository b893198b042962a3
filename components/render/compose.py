"""The Compose project for the VPS rung: the source of truth of what runs on each server.

Pure: settings in, a compose document out. Secrets are never in it: services read
them from env files (mode 600) that the deploy step writes over SSH.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from components import versions
from components.render.resources import limits, memory_mb
from components.settings import Service, Settings

PROJECT_DIR = "/srv/ladder"
DATA_DIR = "/srv/ladder-data"  # the block volume's mount point (Postgres data)
APP_ENV = "app.env"
POSTGRES_ENV = "postgres.env"
VALKEY_ENV = "valkey.env"
POSTGRES_UID = "70:70"  # the postgres user of the official alpine image
# Managed Postgres: the cluster's CA, written by the deploy (world-readable: a public
# certificate, read by the app's non-root user) and mounted read-only into app services.
DATABASE_CA = "database-ca/ca.crt"  # relative to PROJECT_DIR
DATABASE_CA_MOUNT = "/etc/ladder/database-ca"
DATABASE_CA_PARAMS = f"sslmode=verify-full&sslrootcert={DATABASE_CA_MOUNT}/ca.crt"
LOGGING = {"driver": "json-file", "options": {"max-size": "10m", "max-file": "3"}}
HARDENED: dict[str, Any] = {"security_opt": ["no-new-privileges:true"], "cap_drop": ["ALL"]}
# The label that carries a routed service's revision (a hash Ladder computes over the service's
# definition and its env file); the deploy compares it with running containers to decide
# whether a service changed. Compose's own `config --hash` never matches its label for a
# service with `env_file`, so Ladder keeps its own.
REVISION_LABEL = "dev.ladder.revision"
# Memory caps of the containers Ladder chooses (the app's come from `resources`).
PROXY_MEMORY = "256m"
# Caddy's user on the VPS rung: the official image defines none, so a fixed uid/gid that
# owns nothing else on the host (the Caddyfile directory is group-readable by it).
CADDY_UID = 10080
CADDY_USER = f"{CADDY_UID}:{CADDY_UID}"
CADDY_VOLUMES = ("caddy-data:/data", "caddy-config:/config")
PROXY_INIT = "proxy-init"
POSTGRES_MEMORY = "1g"
VALKEY_OVERHEAD_MB = 64


def compose_escape(value: str) -> str:
    """A literal string in a compose file: `$` would start an interpolation."""
    return value.replace("$", "$$")


def revision_variable(service: str) -> str:
    """The environment variable the deploy sets to a service's revision (Compose interpolates it)."""
    return "LADDER_REVISION_" + service.upper().replace("-", "_")


def route_network(service: str) -> str:
    """Each routed service has a network of its own, shared only with the proxy: an address a
    stopped container frees can be reused only by the same service, never by another one."""
    return f"route-{service}"


def route_network_name(app: str, service: str) -> str:
    """The Docker name of a route network. The deploy creates it and connects a container to it
    (its pool, under the service's name) only once healthy; Compose never attaches a service
    to it, so a container is not resolvable there from its start. It is Compose's own name
    for the network (`<project>_<key>`), so servers deployed before keep theirs."""
    return f"{app}_{route_network(service)}"


def route_network_definition(app: str, service: str) -> dict[str, Any]:
    return {"external": True, "name": route_network_name(app, service)}


@dataclass(frozen=True)
class Role:
    """What one server runs: the proxy and app, the data stores, or both (one server)."""

    app: bool = True
    data: bool = True
    behind_load_balancer: bool = False
    data_bind_ip: str | None = None  # publish data ports on this private IP (data server with count > 1)


def http_healthcheck(port: int, path: str) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}{path}"
    return {
        "test": ["CMD-SHELL", f"wget -q -O /dev/null {url} || curl -fsS -o /dev/null {url} || exit 1"],
        "interval": "5s",
        "timeout": "4s",
        "retries": 3,
        "start_period": "30s",
    }


def _app_service(s: Settings, name: str, svc: Service, image: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "image": image or svc.image,
        "restart": "unless-stopped",
        "env_file": [APP_ENV],
        "environment": {
            "LADDER_PHASE": "vps",
            "LADDER_SERVICE": name,
            **{k: compose_escape(v) for k, v in s.app.env.items()},
        },
        # A small init as PID 1 forwards SIGTERM to the app (PID 1 ignores it otherwise, and
        # every stop would wait out the grace period) and reaps zombies.
        "init": True,
        # `app`: services reach each other and the internet; `data` (internal): the stores.
        # A routed service's own network, where the proxy reaches it, is the deploy's to join.
        "networks": ["app", "data"],
        "logging": LOGGING,
        "deploy": {
            "replicas": max(1, svc.replica_count),
            "resources": {
                "limits": {"memory": f"{memory_mb(limits(svc.resources).memory)}m"},
                "reservations": {"memory": f"{memory_mb(svc.resources.memory)}m"},
            },
        },
        **HARDENED,
    }
    if svc.command:
        body["command"] = [compose_escape(c) for c in svc.command]
    if s.postgres.mode == "managed":
        # The directory, not the file (a rewritten file is a new inode a file mount never sees).
        body["volumes"] = [f"./{DATABASE_CA.rsplit('/', 1)[0]}:{DATABASE_CA_MOUNT}:ro"]
    if svc.port is not None:
        body["healthcheck"] = http_healthcheck(svc.port, svc.health_path)
        body["labels"] = {REVISION_LABEL: "${" + revision_variable(name) + ":-none}"}
        # Docker sends SIGTERM after the proxy stopped routing to the container: give
        # in-flight requests time to finish.
        body["stop_grace_period"] = "30s"
    return body


def _proxy_service(s: Settings, role: Role) -> dict[str, Any]:
    """Caddy as `CADDY_USER`, with no capability at all.

    The official image's `cap_net_bind_service` file capability is ignored under
    `no-new-privileges`; instead the container's own network namespace lets unprivileged
    users bind from port 80 up (a namespaced sysctl: the host is untouched)."""
    ports = ["80:80"] if role.behind_load_balancer else ["80:80", "443:443"]
    return {
        "image": versions.CADDY_IMAGE,
        "restart": "unless-stopped",
        "user": CADDY_USER,
        "ports": ports,
        # The directory, not the file: a deploy replaces the Caddyfile atomically (new inode),
        # which a single-file bind mount would never see.
        "volumes": ["./caddy:/etc/caddy:ro", *CADDY_VOLUMES],
        "networks": ["edge", *(route_network(n) for n in s.app.routed_services)],
        "sysctls": {"net.ipv4.ip_unprivileged_port_start": 80},
        "depends_on": {PROXY_INIT: {"condition": "service_completed_successfully"}},
        "logging": LOGGING,
        "deploy": {"resources": {"limits": {"memory": PROXY_MEMORY}}},
        "read_only": True,
        "tmpfs": ["/tmp"],
        **HARDENED,
    }


def _proxy_init_service() -> dict[str, Any]:
    """Hands Caddy's volumes to `CADDY_USER` before Caddy starts.

    A new volume is a copy of the image's root-owned /data and /config, and volumes of
    servers deployed before Caddy ran unprivileged hold root-owned certificates and ACME
    account keys: without this Caddy could not write (or read) them. Root with only the
    capabilities chown needs, no network, nothing else mounted; `-h` changes a symlink
    itself, never what it points at."""
    return {
        "image": versions.CADDY_IMAGE,
        "user": "0:0",
        "command": ["chown", "-R", "-h", CADDY_USER, "/data", "/config"],
        "volumes": list(CADDY_VOLUMES),
        "network_mode": "none",
        "restart": "no",
        "logging": LOGGING,
        "read_only": True,
        "security_opt": ["no-new-privileges:true"],
        "cap_drop": ["ALL"],
        "cap_add": ["CHOWN", "DAC_READ_SEARCH"],
    }


def _data_services(s: Settings, role: Role) -> dict[str, Any]:
    services: dict[str, Any] = {}
    publish = role.data_bind_ip
    if s.postgres.mode == "container":
        pg: dict[str, Any] = {
            "image": versions.POSTGRES_IMAGES[s.postgres.version],
            "restart": "unless-stopped",
            "user": POSTGRES_UID,
            "env_file": [POSTGRES_ENV],
            "environment": {"PGDATA": "/var/lib/postgresql/data/pgdata"},
            "volumes": [f"{DATA_DIR}/postgres:/var/lib/postgresql/data"],
            "networks": ["data"],
            "shm_size": "128m",
            "logging": LOGGING,
            "deploy": {"resources": {"limits": {"memory": POSTGRES_MEMORY}}},
            "healthcheck": {
                "test": ["CMD-SHELL", 'pg_isready -U "$$POSTGRES_USER" -d "$$POSTGRES_DB"'],
                "interval": "5s",
                "timeout": "5s",
                "retries": 10,
            },
            "stop_grace_period": "60s",
            **HARDENED,
        }
        if publish:
            pg["ports"] = [f"{publish}:5432:5432"]
        services["postgres"] = pg
    if s.redis.mode == "container":
        valkey: dict[str, Any] = {
            "image": versions.VALKEY_IMAGES[s.redis.version],
            "restart": "unless-stopped",
            "user": "valkey",
            "env_file": [VALKEY_ENV],
            # The password goes in through the config on stdin and the CLI's environment,
            # never on a command line (`ps` shows those to every user of the host).
            "command": [
                "sh",
                "-c",
                f"exec valkey-server - --appendonly yes --maxmemory {s.redis.max_memory_mb}mb "
                '--maxmemory-policy noeviction <<EOF\nrequirepass "$$VALKEY_PASSWORD"\nEOF\n',
            ],
            "volumes": ["valkey-data:/data"],
            "networks": ["data"],
            "logging": LOGGING,
            "deploy": {"resources": {"limits": {"memory": f"{s.redis.max_memory_mb + VALKEY_OVERHEAD_MB}m"}}},
            "healthcheck": {
                "test": ["CMD-SHELL", 'REDISCLI_AUTH="$$VALKEY_PASSWORD" valkey-cli ping | grep -q PONG'],
                "interval": "5s",
                "timeout": "5s",
                "retries": 10,
            },
            **HARDENED,
        }
        if publish:
            valkey["ports"] = [f"{publish}:6379:6379"]
        services["valkey"] = valkey
    return services


def compose_document(s: Settings, role: Role, images: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The compose file for one server's role, as data.

    `images`: per service built from source, the reference to run (`repo@sha256:…` once pushed).
    """
    built = images or {}
    services: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    networks: dict[str, Any] = {}
    if role.app:
        services["proxy"] = _proxy_service(s, role)
        services[PROXY_INIT] = _proxy_init_service()
        services.update({name: _app_service(s, name, svc, built.get(name)) for name, svc in s.app.services.items()})
        volumes.update({"caddy-data": {}, "caddy-config": {}})
        networks.update({"edge": {}, "app": {}})
        networks.update({route_network(n): route_network_definition(s.app.name, n) for n in s.app.routed_services})
    data = _data_services(s, role) if role.data else {}
    services.update(data)
    if "valkey" in data:
        volumes["valkey-data"] = {}
    _add_extras(s, role, services)
    # App and data talk on an internal network; only a data server publishes (on its private IP).
    networks["data"] = {} if role.data_bind_ip else {"internal": True}
    stores = {**data, **({n: services[n] for n in s.accessories} if role.data else {})}
    if role.app and role.data and stores:
        for name in s.app.services:
            services[name]["depends_on"] = {
                store: {"condition": "service_healthy" if "healthcheck" in body else "service_started"}
                for store, body in stores.items()
            }
    return {"name": s.app.name, "services": services, "volumes": volumes, "networks": networks}


def without_deploy(doc: dict[str, Any], s: Settings) -> dict[str, Any]:
    """The document for `docker compose up` without Ladder's deploy (an eject): Compose itself
    attaches each routed service to its route network, where the proxy resolves it by name
    (no health gate before the first request: that is the deploy's job)."""
    for name in s.app.routed_services:
        if name in doc["services"]:
            doc["services"][name]["networks"].append(route_network(name))
            doc["networks"][route_network(name)] = {}
    return doc


def _add_extras(s: Settings, role: Role, services: dict[str, Any]) -> None:
    """Service volumes (bind mounts on the data volume) on an app host; accessories on a data host."""
    from components.render import vps_extras  # it builds on this module's constants

    if role.app:
        for name in s.app.services:
            mounts = vps_extras.volume_mounts(s, name)
            if mounts:  # beside the managed database's CA, if any
                services[name].setdefault("volumes", []).extend(mounts)
    if role.data:
        services.update(vps_extras.accessory_services(s, role.data_bind_ip))


def render_compose(s: Settings, role: Role, images: Mapping[str, str] | None = None) -> str:
    return yaml.safe_dump(compose_document(s, role, images), sort_keys=False, width=1000)
