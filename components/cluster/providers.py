"""Where the cluster comes from: the only part of the cluster rung that differs by provider.

`create_cluster` returns a `ClusterHandle`; everything after it (platform releases,
tenants, data) is provider-agnostic. A new provider (k3s on Hetzner) adds a module with
a `create(name, settings, opts) -> ClusterHandle` function and a line in `_CREATORS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as kubernetes

from components.settings import Settings


@dataclass
class ClusterHandle:
    """What the rest of the rung needs from a cluster, however it was made."""

    provider: kubernetes.Provider
    kubeconfig: pulumi.Output[str]  # secret
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    cluster_id: pulumi.Output[str] | None = None  # for database firewalls (DOKS)
    vpc_id: pulumi.Output[str] | None = None  # managed databases join it
    region: str | None = None
    server_ips: pulumi.Output[list[str]] | None = None  # nodes Ladder provisions (k3s)
    # False where the provider installs no metrics-server (DOKS): the rung installs one,
    # or the HPAs never scale. k3s bundles it; an existing cluster is the user's business.
    ships_metrics_server: bool = True


Creator = Callable[[str, Settings, pulumi.ResourceOptions], ClusterHandle]


def _doks(name: str, settings: Settings, opts: pulumi.ResourceOptions) -> ClusterHandle:
    from components.cluster import doks

    return doks.create(name, settings, opts)


def _existing(name: str, settings: Settings, opts: pulumi.ResourceOptions) -> ClusterHandle:
    from components.cluster import existing

    return existing.create(name, settings, opts)


def _hetzner(name: str, settings: Settings, opts: pulumi.ResourceOptions) -> ClusterHandle:
    from components.cluster import hetzner

    return hetzner.create(name, settings, opts)


# Imported lazily: a stack on one provider never loads another provider's SDK.
_CREATORS: dict[str, Creator] = {
    "digitalocean": _doks,
    "existing": _existing,
    "hetzner": _hetzner,
}


def create_cluster(name: str, settings: Settings, opts: pulumi.ResourceOptions) -> ClusterHandle:
    try:
        creator = _CREATORS[settings.provider_name]
    except KeyError:
        raise NotImplementedError(
            f"ladder:provider {settings.provider_name!r} has no cluster rung yet "
            f"(available: {', '.join(sorted(_CREATORS))})"
        ) from None
    return creator(name, settings, opts)
