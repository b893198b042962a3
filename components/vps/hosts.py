"""What the deploy needs to know about a server, however it came to exist."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pulumi
import pulumi_tls as tls

from components.render import hardening
from components.render.compose import Role
from components.settings import Settings
from components.vps.topology import PRIVATE_RANGE, Topology

SWAP_MB = 2048  # small VPS (2-4 GB RAM) survive image pulls and migrations with swap


@dataclass
class Host:
    name: str
    address: pulumi.Output[str]
    user: str
    port: int
    private_key: pulumi.Output[str]  # secret
    role: Role
    ready: list[pulumi.Resource] = field(default_factory=list)
    volume_device: pulumi.Input[str] | None = None
    # Provisioned servers: who should log in now (people as `admin`, the deploy key as
    # `deploy`). A server's own `ssh_keys` only seed it (changing them would replace it), so
    # logins roll out over SSH.
    logins: pulumi.Output[hardening.Logins] | None = None
    # The server's SSH host key (OpenSSH public): every connection checks it.
    host_key: pulumi.Input[str] | None = None

    @classmethod
    def provisioned(
        cls,
        name: str,
        address: pulumi.Output[str],
        deploy_key: pulumi.Output[str],
        logins: pulumi.Output[hardening.Logins],
        role: Role,
        ready: list[pulumi.Resource],
        host_key: tls.PrivateKey,
        volume_device: pulumi.Input[str] | None = None,
    ) -> Host:
        """A server Ladder created: reached as `deploy` with the stack's deploy key (people log
        in as `admin`, see `components/access.py`)."""
        return cls(
            name,
            address,
            hardening.DEPLOY_USER,
            22,
            deploy_key,
            role,
            ready,
            volume_device,
            logins=logins,
            host_key=host_key.public_key_openssh,
        )


@dataclass
class Fleet:
    """The servers of a VPS stack, plus what the stack exports about them."""

    hosts: list[Host]
    server_ips: pulumi.Output[list[str]]
    public_ip: pulumi.Output[str]  # where ladder:domain must point (server or load balancer)
    vpc_id: pulumi.Output[str] | None = None
    firewall_targets: list[pulumi.Output[str]] = field(default_factory=list)  # DO droplet ids for DB firewalls


def server_hardening(
    s: Settings, topo: Topology, web: bool, bootstrap: bool = False, ssh_port: int = 22
) -> hardening.Hardening:
    """Hardening of a Docker host; `web` opens 80/443 (a single server; behind a load
    balancer the balancer reaches servers on the private network).

    `bootstrap` is the user-data form: no user keys and SSH open in ufw, so nothing in it
    changes with the keys or the allowlist (the provider firewall enforces the allowlist
    from the first second; the first deploy narrows ufw and installs the keys over SSH)."""
    openings = [hardening.Opening(str(ssh_port), "tcp", () if bootstrap else tuple(s.vps.ssh_allow_from))]
    if web:
        openings += [hardening.Opening("80"), hardening.Opening("443")]
    return hardening.Hardening(
        ssh_keys=[] if bootstrap else list(s.vps.ssh_keys),
        openings=openings,
        trusted_networks=[PRIVATE_RANGE] if topo.private_network else [],
        packages=["docker.io", hardening.COMPOSE_PACKAGE],
        groups=["docker"],
        sudo=True,
        swap_mb=SWAP_MB,
    )


def host_key(resource: str, opts: pulumi.ResourceOptions) -> tls.PrivateKey:
    """A server's SSH host key, made before the server exists so the first connection can check it."""
    return tls.PrivateKey(f"{resource}-host-key", algorithm="ED25519", opts=opts)


def keyed_user_data(
    hard: hardening.Hardening, deploy_public_key: pulumi.Output[str], key: tls.PrivateKey
) -> pulumi.Output[str]:
    """User data with the deploy key and the server's own host key: a secret, since it holds
    the host's private key (state stays encrypted; nothing else in it is sensitive)."""
    rendered = pulumi.Output.all(deploy_public_key, key.private_key_openssh, key.public_key_openssh).apply(
        lambda a: hardening.render(
            hardening.cloud_config(
                replace(hard, ssh_keys=[*hard.ssh_keys, str(a[0]).strip()]), host_key=(str(a[1]), str(a[2]))
            )
        )
    )
    return pulumi.Output.secret(rendered)


def server_user_data(
    s: Settings, topo: Topology, deploy_public_key: pulumi.Output[str], web: bool, key: tls.PrivateKey
) -> pulumi.Output[str]:
    """User data for a provisioned server: fixed policy, the stack's deploy key and the server's
    host key only. Nothing in it changes with the app, the users' keys or the allowlist, so none
    of those ever replaces a server."""
    return keyed_user_data(server_hardening(s, topo, web, bootstrap=True), deploy_public_key, key)
