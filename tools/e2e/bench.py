"""Shared set-up of a bench run: the world, the images, the stacks' config, the servers."""

from __future__ import annotations

import copy
import os
import re
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.e2e import digests, images, rootfs, servers
from tools.e2e import world as w
from tools.e2e.load import get
from tools.e2e.proc import BenchError, wait_for
from tools.e2e.program import BenchMocks, Stack, keypair
from tools.harness import ROOT, unwrap


def domain(case: str) -> str:
    """Each case has a domain of its own: the ACME server's DNS may remember earlier answers."""
    return f"{case}.shop.bench.test"


# A secret that breaks naive env files: `$`, both quotes, `#`, spaces, a backslash and a PEM's
# newlines must reach the container byte for byte.
SESSION_SECRET = "p@ss$word 'single' \"double\" #hash \\back\n-----BEGIN KEY-----\nAbC=\n-----END KEY-----"
DEMO_VERSIONS = [
    ("1.0.0", "ok"),
    ("1.0.1", "ok"),
    ("1.0.2", "ok"),
    ("1.0.3", "ok"),
    ("2.0.0", "500"),
    ("2.0.0", "deaf"),
]
VENV_BIN = ROOT / "venv/bin"
# The registry build_and_push pushes to (its `localhost:5000`), as the bench host reaches it.
STAND_IN_REGISTRY = f"127.0.0.1:{w.REGISTRY_PORT}"
E2E_VENV_BIN = ROOT / ".venv-e2e/bin"


def app(version: str = "1.0.0", mode: str = "ok") -> dict[str, Any]:
    image = images.demo(version, mode)
    return {
        "name": "shop",
        "env": {"LOG_LEVEL": "info", "DEMO_DIGEST_VARS": "SESSION_SECRET,DATABASE_URL,REDIS_URL"},
        "secretEnv": ["SESSION_SECRET"],
        "release": {"service": "api", "command": ["release"]},
        "services": {
            "web": {
                "image": image,
                "port": 8080,
                "path": "/",
                "replicas": 2,
                "health": "/healthz",
                "resources": {"cpu": "100m", "memory": "64Mi"},
            },
            "api": {
                "image": image,
                "port": 8080,
                "path": "/api",
                "replicas": 2,
                "health": "/api/health",
                "resources": {"cpu": "100m", "memory": "64Mi"},
            },
            "worker": {"image": image, "command": ["worker"], "resources": {"cpu": "100m", "memory": "64Mi"}},
        },
    }


ROUTES = {"/": "web", "/api/orders": "api"}
PRIVATE_VERSIONS = ["1.0.0", "1.0.1"]  # the demo versions the private registry holds


def private_app(version: str) -> dict[str, Any]:
    """The demo app with its api image on the bench's private registry (a login is needed to pull it)."""
    out = app(version)
    out["services"]["api"]["image"] = images.private_demo(w.PRIVATE_REGISTRY, version)
    return out


def registries(password: str) -> list[dict[str, str]]:
    """`ladder:registries` for the private registry, set as a secret (the password with it)."""
    return [{"server": w.PRIVATE_REGISTRY, "username": w.PRIVATE_REGISTRY_USER, "password": password}]


def vps_config(case: str, provider: str, operator_key: str, **vps: Any) -> dict[str, Any]:
    return {
        "ladder:phase": "vps",
        "ladder:provider": provider,
        "ladder:domain": domain(case),
        "ladder:acmeEmail": "ops@bench.test",
        "ladder:acmeServer": w.ACME_DIRECTORY,
        "ladder:vps": {"sshKeys": [operator_key], "sshAllowFrom": [f"{w.GATEWAY}/32"], **vps},
        "ladder:postgres": {"mode": "container", "version": "17"},
        "ladder:redis": {"mode": "container", "maxMemoryMb": 64},
        "ladder:app": app(),
    }


@dataclass
class Bench:
    world: w.World
    server_rootfs: Path
    operator: tuple[str, str]  # the operator's own SSH key (private, public): `vps.sshKeys`
    ca: Path = field(default_factory=Path)
    acme_root: Path = field(default_factory=Path)
    registry_password: str = ""  # the private registry's, new each run
    engine: str = ""  # the bench's own Docker engine (`docker -H`)
    numbers: dict[str, str] = field(default_factory=dict)

    def note(self, key: str, value: str) -> None:
        self.numbers[key] = value
        print(f"  {key}: {value}", flush=True)


def setup(world: w.World) -> Bench:
    started = time.monotonic()
    # The two rootfs builds are mostly waiting on the mirror: run them side by side.
    with ThreadPoolExecutor(max_workers=2) as pool:
        server_job = pool.submit(rootfs.server_rootfs, world.cache)
        image_job = pool.submit(rootfs.image_rootfs, world.cache)
        server_fs, image_fs = server_job.result(), image_job.result()
    world.network()
    world.registry()
    engine = world.engine()
    pushed = images.build_and_push(engine, image_fs, world.ca()[0], VENV_BIN / "caddy", world.run_dir, DEMO_VERSIONS)
    # The program pins upstream digests the bench registry cannot serve: from here on it
    # renders the stand-ins' own (kept for the whole run).
    digests.replace_pins(digests.stand_in_digests(STAND_IN_REGISTRY, pushed))
    registry_password = secrets.token_urlsafe(24)
    world.private_registry(registry_password)
    images.push_private(engine, PRIVATE_VERSIONS, w.PRIVATE_REGISTRY_PORT, w.PRIVATE_REGISTRY_USER, registry_password)
    world.apt_repo()
    world.acme()
    world.s3(E2E_VENV_BIN)
    world.smtp(E2E_VENV_BIN)
    bench = Bench(
        world, server_fs, keypair("operator@laptop"), world.ca()[0], world.acme_root(), registry_password, engine
    )
    bench.note("setup (rootfs, images, services)", f"{time.monotonic() - started:.1f} s")
    return bench


@contextmanager
def fleet(
    bench: Bench, stack: Stack, private: dict[str, str] | None = None, hosts: dict[str, str] | None = None
) -> Iterator[dict[str, servers.Server]]:
    """Boot one test server per server the program creates, from its own user data."""
    result = stack.evaluate()
    if result.error is not None:
        raise BenchError(f"the program failed: {result.error}")
    booted: dict[str, servers.Server] = {}
    try:
        deploys = {r.name: str(unwrap(r.inputs.get("stdin"))) for r in result.resources if r.name.endswith("-deploy")}
        for r in result.resources:
            if r.type not in ("hcloud:index/server:Server", "digitalocean:index/droplet:Droplet"):
                continue
            # The volume device the program tells the deploy to mount on this server, if any.
            script = deploys.get(f"app-{r.name.removeprefix('shop-')}-deploy", "")
            device = re.search(r"\[ -e (/dev/disk/by-id/[^ ]+) \]", script)
            s = servers.prepare(
                bench.world,
                bench.server_rootfs,
                r.name,
                stack.mocks.addresses[r.name],
                user_data=unwrap(r.inputs.get("userData")),
                private_ip=(private or {}).get(r.name),
                volume_path=device.group(1).strip("'") if device else None,
                hosts=hosts,
            )
            booted[r.name] = s
        for s in booted.values():
            servers.boot(bench.world, s)
        yield booted
    except BaseException:
        # LADDER_E2E_HOLD=<seconds>: keep a failed case's servers up that long to look inside.
        hold = float(os.environ.get("LADDER_E2E_HOLD", "0"))
        if hold > 0:
            print(f"  holding the servers for {hold:.0f} s (LADDER_E2E_HOLD)", flush=True)
            time.sleep(min(hold, 1800))
        raise
    finally:
        for s in booted.values():
            servers.destroy(s)


def serves(bench: Bench, host: str, address: str, version: str, timeout: float = 120) -> None:
    def ok() -> bool:
        for path, service in ROUTES.items():
            status, body = get(address, host, path, bench.acme_root)
            if status != 200 or body.get("service") != service or body.get("version") != version:
                raise BenchError(f"{path}: HTTP {status} {body}")
        return True

    wait_for(f"https://{host}/ and /api serve {version}", ok, timeout, interval=2)


def with_app(config: dict[str, Any], version: str, mode: str = "ok") -> dict[str, Any]:
    new = copy.deepcopy(config)
    new["ladder:app"] = app(version, mode)
    return new


def new_stack(config: dict[str, Any], addresses: dict[str, str], private: dict[str, str] | None = None) -> Stack:
    return Stack(config, {"ladder:secrets.SESSION_SECRET": SESSION_SECRET}, BenchMocks(addresses, private))
