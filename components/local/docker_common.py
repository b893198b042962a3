"""Container settings every local container shares, so each component states only what differs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_docker as docker

from components.images import DOCKER_HUB_PULL_ADDRESS, RegistryLogin
from components.settings import DOCKER_HUB

LOG_OPTS = {"max-size": "10m", "max-file": "3"}


def http_probe(port: int, path: str) -> list[str]:
    """A healthcheck that works in images that ship either wget (busybox/alpine) or curl."""
    url = f"http://127.0.0.1:{port}{path}"
    return [
        "CMD-SHELL",
        f"wget -q -O /dev/null {url} || curl -fsS -o /dev/null {url} || exit 1",
    ]


def healthcheck(test: Sequence[str], start_period: str = "20s") -> docker.ContainerHealthcheckArgs:
    return docker.ContainerHealthcheckArgs(
        tests=list(test), interval="10s", timeout="5s", retries=5, start_period=start_period
    )


def container_args(
    name: str,
    image: pulumi.Input[str],
    network: pulumi.Input[str],
    aliases: Sequence[str],
    **extra: Any,
) -> dict[str, Any]:
    """Keyword arguments for `docker.Container` with Ladder's defaults filled in.

    No capabilities beyond what the process needs, no privilege escalation, log
    rotation, restart on failure, and one user-defined network with DNS aliases.
    """
    args: dict[str, Any] = {
        "name": name,
        "image": image,
        "restart": "unless-stopped",
        "networks_advanced": [docker.ContainerNetworksAdvancedArgs(name=network, aliases=list(aliases))],
        "security_opts": ["no-new-privileges:true"],
        "capabilities": docker.ContainerCapabilitiesArgs(drops=["ALL"]),
        "log_driver": "json-file",
        "log_opts": LOG_OPTS,
    }
    args.update(extra)
    return args


def published(host_port: int | None, container_port: int) -> dict[str, Any]:
    """`ports` for a store published for local tools: on 127.0.0.1 only, never all interfaces."""
    if host_port is None:
        return {}
    return {"ports": [docker.ContainerPortArgs(internal=container_port, external=host_port, ip="127.0.0.1")]}


def registry_provider(
    name: str, logins: Sequence[RegistryLogin], opts: pulumi.ResourceOptions
) -> docker.Provider | None:
    """A Docker provider that pulls with the configured credentials (in memory, not ~/.docker)."""
    if not logins:
        return None
    return docker.Provider(
        name,
        registry_auth=[
            docker.ProviderRegistryAuthArgs(
                address=DOCKER_HUB_PULL_ADDRESS if login.server == DOCKER_HUB else login.server,
                username=login.username,
                password=login.password,
            )
            for login in logins
        ],
        opts=opts,
    )
