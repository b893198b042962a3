"""Hosts you already run (seed 004's staging server): nothing provisioned, the same
hardening and deploy over SSH with the key you give as `vps.sshPrivateKey`."""

from __future__ import annotations

import pulumi

from components.render.compose import Role
from components.settings import Settings
from components.vps.hosts import Fleet, Host


def provision(name: str, s: Settings, opts: pulumi.ResourceOptions) -> Fleet:
    assert s.vps.ssh_private_key is not None  # enforced by settings
    key = pulumi.Output.secret(s.vps.ssh_private_key.get_secret_value())
    hosts = [
        Host(
            f"host-{i}",
            pulumi.Output.from_input(h.address),
            h.user,
            h.port,
            key,
            # Each host runs the whole app; the data stores live on the first one only.
            Role(app=True, data=i == 0, behind_load_balancer=len(s.vps.hosts) > 1),
            host_key=h.host_key,
        )
        for i, h in enumerate(s.vps.hosts)
    ]
    return Fleet(
        hosts=hosts,
        server_ips=pulumi.Output.from_input([h.address for h in s.vps.hosts]),
        public_ip=pulumi.Output.from_input(s.vps.hosts[0].address),
    )
