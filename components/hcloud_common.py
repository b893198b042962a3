"""Hetzner Cloud pieces both the VPS rung and k3s nodes use: SSH keys and firewalls."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_hcloud as hcloud
import pulumi_tls as tls

# Hetzner network zones by location, for private subnets.
NETWORK_ZONES = {
    "nbg1": "eu-central",
    "fsn1": "eu-central",
    "hel1": "eu-central",
    "ash": "us-east",
    "hil": "us-west",
    "sin": "ap-southeast",
}


def ssh_keys(
    name: str, base: str, user_keys: Sequence[str], opts: pulumi.ResourceOptions
) -> tuple[tls.PrivateKey, list[hcloud.SshKey]]:
    """A per-stack deploy key (Pulumi connects with it over SSH) and the users' keys."""
    deploy_key = tls.PrivateKey(f"{name}-deploy-key", algorithm="ED25519", opts=opts)
    keys = [
        hcloud.SshKey(f"{name}-deploy-key", name=f"{base}-deploy", public_key=deploy_key.public_key_openssh, opts=opts)
    ]
    for i, key in enumerate(user_keys):
        keys.append(hcloud.SshKey(f"{name}-user-key-{i}", name=f"{base}-user-{i}", public_key=key, opts=opts))
    return deploy_key, keys


def firewall(
    name: str,
    base: str,
    rules: Sequence[tuple[str, str, Sequence[str], str]],
    labels: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> hcloud.Firewall:
    """Inbound (port, protocol, sources, description) rules; everything else is dropped."""
    return hcloud.Firewall(
        f"{name}-firewall",
        name=base,
        labels=labels,
        rules=[
            hcloud.FirewallRuleArgs(
                direction="in", protocol=protocol, port=port, source_ips=list(sources), description=description
            )
            for port, protocol, sources, description in rules
        ],
        opts=opts,
    )


def as_id(output: pulumi.Output[str]) -> pulumi.Output[int]:
    """hcloud ids are integers in arguments but strings as resource ids."""
    return output.apply(int)


def primary_ip(
    resource: str, name: str, location: str, labels: dict[str, str], opts: pulumi.ResourceOptions
) -> hcloud.PrimaryIp:
    """A public IPv4 that outlives its server, so DNS stays valid when a server is replaced."""
    return hcloud.PrimaryIp(
        resource,
        name=name,
        type="ipv4",
        assignee_type="server",
        auto_delete=False,
        location=location,
        labels=labels,
        opts=opts,
    )
