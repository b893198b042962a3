"""VPS droplets on DigitalOcean: reserved IPs, a cloud firewall, a volume, and with
count > 1 a VPC and a load balancer with a Let's Encrypt certificate."""

from __future__ import annotations

import pulumi
import pulumi_digitalocean as digitalocean
import pulumi_tls as tls

from components.access import logins
from components.render.compose import Role
from components.render.drain import LB_COOKIE, LB_COOKIE_TTL_SECONDS, any_sticky
from components.settings import Settings
from components.vps import topology as t
from components.vps.hosts import Fleet, Host, host_key, server_user_data

ANYWHERE = ["0.0.0.0/0", "::/0"]


def needs_vpc(s: Settings) -> bool:
    return s.vps.server_count > 1 or "managed" in (s.postgres.mode, s.redis.mode)


def _sticky_sessions(s: Settings) -> digitalocean.LoadBalancerStickySessionsArgs | None:
    """Cookie sessions on the balancer when any routed service is sticky. The balancer picks a
    Droplet, not a service, so the setting applies to every route of the app (a non-sticky
    service's client then also stays on one Droplet, whose Caddy still round-robins it over
    that Droplet's replicas). Unset otherwise: the provider's default, `none`."""
    if not any_sticky(s.app):
        return None
    return digitalocean.LoadBalancerStickySessionsArgs(
        type="cookies", cookie_name=LB_COOKIE, cookie_ttl_seconds=LB_COOKIE_TTL_SECONDS
    )


def provision(name: str, s: Settings, opts: pulumi.ResourceOptions) -> Fleet:
    topo = t.topology(s)
    vps = s.vps
    region = vps.region or "fra1"
    base = f"{s.app.name}-{pulumi.get_stack()}"
    tags = ["ladder", f"ladder-{s.app.name}", f"ladder-{pulumi.get_stack()}"]
    stateful = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=s.protected))

    deploy_key = tls.PrivateKey(f"{name}-deploy-key", algorithm="ED25519", opts=opts)
    keys = [
        digitalocean.SshKey(
            f"{name}-deploy-key", name=f"{base}-deploy", public_key=deploy_key.public_key_openssh, opts=opts
        )
    ]
    keys += [
        digitalocean.SshKey(f"{name}-user-key-{i}", name=f"{base}-user-{i}", public_key=k, opts=opts)
        for i, k in enumerate(vps.ssh_keys)
    ]
    private_key = pulumi.Output.secret(deploy_key.private_key_openssh)
    keys_now = logins(vps.ssh_keys, deploy_key.public_key_openssh)
    vpc = (
        digitalocean.Vpc(f"{name}-vpc", name=f"{base}-vpc", region=region, description=f"Ladder {base}", opts=opts)
        if needs_vpc(s)
        else None
    )

    hosts: list[Host] = []
    droplets: list[digitalocean.Droplet] = []
    ips: list[pulumi.Output[str]] = []
    for i in range(topo.app_servers):
        holds_data = topo.data_on_app_server and i == 0
        app_key = host_key(f"{name}-app-{i}", opts)
        droplet = digitalocean.Droplet(
            f"{name}-app-{i}",
            name=f"{base}-app-{i}",
            image=vps.image or "ubuntu-24-04-x64",
            size=vps.size or "s-1vcpu-2gb",
            region=region,
            ssh_keys=[k.fingerprint for k in keys],
            user_data=server_user_data(s, topo, deploy_key.public_key_openssh, not topo.load_balancer, app_key),
            vpc_uuid=vpc.id if vpc else None,
            ipv6=True,
            monitoring=True,
            backups=vps.server_backups,
            tags=tags,
            opts=pulumi.ResourceOptions.merge(
                opts,
                pulumi.ResourceOptions(
                    protect=s.protected and holds_data,
                    ignore_changes=["sshKeys"],
                    delete_before_replace=True,
                ),
            ),
        )
        droplets.append(droplet)
        # A reserved IP stays when a droplet is replaced, so DNS keeps pointing right.
        reserved = digitalocean.ReservedIp(f"{name}-app-{i}-ip", region=region, opts=stateful)
        assignment = digitalocean.ReservedIpAssignment(
            f"{name}-app-{i}-ip-assignment", ip_address=reserved.ip_address, droplet_id=droplet.id.apply(int), opts=opts
        )
        ips.append(reserved.ip_address)
        ready: list[pulumi.Resource] = [droplet, assignment]
        device = None
        if holds_data and t.needs_data_volume(s):
            volume = digitalocean.Volume(
                f"{name}-data",
                name=f"{base}-data",
                region=region,
                size=vps.volume_gb,
                initial_filesystem_type="ext4",
                description=f"Ladder {base}: Postgres data",
                opts=stateful,
            )
            attachment = digitalocean.VolumeAttachment(
                f"{name}-data-attachment",
                droplet_id=droplet.id.apply(int),
                volume_id=volume.id,
                opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(delete_before_replace=True)),
            )
            ready.append(attachment)
            device = volume.name.apply(lambda n: f"/dev/disk/by-id/scsi-0DO_Volume_{n}")
        hosts.append(
            Host.provisioned(
                f"app-{i}",
                droplet.ipv4_address,
                private_key,
                keys_now,
                Role(app=True, data=holds_data, behind_load_balancer=topo.load_balancer),
                ready,
                app_key,
                device,
            )
        )

    lb = None
    if topo.load_balancer:
        assert vpc is not None and s.domain is not None
        cert = digitalocean.Certificate(
            f"{name}-certificate", name=base, type="lets_encrypt", domains=[s.domain], opts=opts
        )
        health = next(iter(s.app.routed_services.values())).health_path
        lb = digitalocean.LoadBalancer(
            f"{name}-lb",
            name=base,
            region=region,
            vpc_uuid=vpc.id,
            droplet_ids=[d.id.apply(int) for d in droplets],
            redirect_http_to_https=True,
            forwarding_rules=[
                digitalocean.LoadBalancerForwardingRuleArgs(
                    entry_protocol="https",
                    entry_port=443,
                    target_protocol="http",
                    target_port=80,
                    certificate_name=cert.name,
                ),
            ],
            healthcheck=digitalocean.LoadBalancerHealthcheckArgs(protocol="http", port=80, path=health),
            sticky_sessions=_sticky_sessions(s),
            opts=opts,
        )

    inbound = [
        digitalocean.FirewallInboundRuleArgs(protocol="tcp", port_range="22", source_addresses=list(vps.ssh_allow_from))
    ]
    for port in ("80", "443"):
        if lb is None:
            inbound.append(
                digitalocean.FirewallInboundRuleArgs(protocol="tcp", port_range=port, source_addresses=ANYWHERE)
            )
        elif port == "80":
            inbound.append(
                digitalocean.FirewallInboundRuleArgs(protocol="tcp", port_range=port, source_load_balancer_uids=[lb.id])
            )
    digitalocean.Firewall(
        f"{name}-firewall",
        name=base,
        droplet_ids=[d.id.apply(int) for d in droplets],
        inbound_rules=inbound,
        outbound_rules=[
            digitalocean.FirewallOutboundRuleArgs(protocol=p, port_range="1-65535", destination_addresses=ANYWHERE)
            for p in ("tcp", "udp")
        ]
        + [digitalocean.FirewallOutboundRuleArgs(protocol="icmp", destination_addresses=ANYWHERE)],
        opts=opts,
    )
    return Fleet(
        hosts=hosts,
        server_ips=pulumi.Output.all(*ips).apply(lambda a: [str(x) for x in a if x]),
        public_ip=lb.ip if lb is not None else ips[0],
        vpc_id=vpc.id if vpc else None,
        firewall_targets=[d.id for d in droplets],
    )
