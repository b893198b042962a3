"""VPS servers on Hetzner Cloud: primary IPs, firewall, volume, and with count > 1 a
private network, a data server and a load balancer with a managed certificate."""

from __future__ import annotations

import pulumi
import pulumi_hcloud as hcloud
import pulumi_tls as tls

from components import hcloud_common
from components.access import logins
from components.hcloud_common import as_id
from components.render.compose import Role
from components.render.drain import LB_COOKIE, LB_COOKIE_TTL_SECONDS, any_sticky
from components.settings import Settings
from components.vps import topology as t
from components.vps.hosts import Fleet, Host, host_key, server_user_data


def provision(name: str, s: Settings, opts: pulumi.ResourceOptions) -> Fleet:
    topo = t.topology(s)
    vps = s.vps
    location = vps.region or "nbg1"
    base = f"{s.app.name}-{pulumi.get_stack()}"
    labels = {"ladder": s.app.name, "stack": pulumi.get_stack()}
    stateful = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=s.protected))
    deploy_key, keys = hcloud_common.ssh_keys(name, base, vps.ssh_keys, opts)
    private_key = pulumi.Output.secret(deploy_key.private_key_openssh)
    keys_now = logins(vps.ssh_keys, deploy_key.public_key_openssh)

    allow = list(vps.ssh_allow_from)
    rules: list[tuple[str, str, list[str], str]] = [("22", "tcp", allow, "SSH from the allowlist")]
    if not topo.load_balancer:
        anywhere = ["0.0.0.0/0", "::/0"]
        rules += [("80", "tcp", anywhere, "HTTP (ACME, redirect)"), ("443", "tcp", anywhere, "HTTPS")]
    fw = hcloud_common.firewall(name, base, rules, labels, opts)

    network = subnet = None
    if topo.private_network:
        network = hcloud.Network(f"{name}-network", name=base, ip_range=t.PRIVATE_RANGE, labels=labels, opts=opts)
        subnet = hcloud.NetworkSubnet(
            f"{name}-subnet",
            network_id=as_id(network.id),
            type="cloud",
            network_zone=hcloud_common.NETWORK_ZONES.get(location, "eu-central"),
            ip_range=t.PRIVATE_SUBNET,
            opts=opts,
        )

    def server(
        key: str, role_name: str, private_ip: str | None, web: bool, holds_data: bool
    ) -> tuple[hcloud.Server, tls.PrivateKey]:
        ip = hcloud_common.primary_ip(f"{name}-{key}-ip", f"{base}-{key}", location, labels, stateful)
        host = host_key(f"{name}-{key}", opts)
        srv = hcloud.Server(
            f"{name}-{key}",
            name=f"{base}-{key}",
            server_type=vps.size or "cx23",
            image=vps.image or "ubuntu-24.04",
            location=location,
            ssh_keys=[k.id for k in keys],
            user_data=server_user_data(s, topo, deploy_key.public_key_openssh, web, host),
            firewall_ids=[as_id(fw.id)],
            public_nets=[hcloud.ServerPublicNetArgs(ipv4_enabled=True, ipv4=as_id(ip.id), ipv6_enabled=True)],
            networks=[hcloud.ServerNetworkArgs(network_id=as_id(network.id), ip=private_ip)] if network else None,
            backups=vps.server_backups,
            delete_protection=s.protected and holds_data,
            rebuild_protection=s.protected and holds_data,
            labels={**labels, "role": role_name},
            opts=pulumi.ResourceOptions.merge(
                opts,
                pulumi.ResourceOptions(
                    protect=s.protected and holds_data,
                    depends_on=[subnet] if subnet else [],
                    # Later keys roll out over SSH (terraform-provider-hcloud#737); named
                    # servers must be deleted before their replacement takes the name.
                    ignore_changes=["sshKeys"],
                    delete_before_replace=True,
                ),
            ),
        )
        return srv, host

    def volume(server_: hcloud.Server) -> tuple[hcloud.VolumeAttachment, pulumi.Output[str]]:
        vol = hcloud.Volume(
            f"{name}-data",
            name=f"{base}-data",
            size=vps.volume_gb,
            location=location,
            format="ext4",
            delete_protection=s.protected,
            labels=labels,
            opts=stateful,
        )
        attachment = hcloud.VolumeAttachment(
            f"{name}-data-attachment",
            volume_id=as_id(vol.id),
            server_id=as_id(server_.id),
            automount=False,
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(delete_before_replace=True)),
        )
        return attachment, vol.linux_device

    hosts: list[Host] = []
    ips: list[pulumi.Output[str]] = []
    app_servers: list[hcloud.Server] = []
    if topo.data_server:
        srv, data_key = server("data", "data", t.DATA_SERVER_IP, web=False, holds_data=True)
        attachment, data_device = volume(srv)
        ips.append(srv.ipv4_address)
        hosts.append(
            Host.provisioned(
                "data",
                srv.ipv4_address,
                private_key,
                keys_now,
                Role(app=False, data=True, data_bind_ip=t.DATA_SERVER_IP),
                [srv, attachment],
                data_key,
                data_device,
            )
        )
    for i in range(topo.app_servers):
        holds_data = topo.data_on_app_server and i == 0
        private = t.app_server_ip(i) if topo.private_network else None
        srv, app_key = server(f"app-{i}", "app", private, web=not topo.load_balancer, holds_data=holds_data)
        app_servers.append(srv)
        ips.append(srv.ipv4_address)
        ready: list[pulumi.Resource] = [srv]
        device: pulumi.Output[str] | None = None
        if holds_data and t.needs_data_volume(s):
            attachment, device = volume(srv)
            ready.append(attachment)
        hosts.append(
            Host.provisioned(
                f"app-{i}",
                srv.ipv4_address,
                private_key,
                keys_now,
                Role(app=True, data=holds_data, behind_load_balancer=topo.load_balancer),
                ready,
                app_key,
                device,
            )
        )

    public_ip = (
        ips[-1]
        if not topo.load_balancer
        else _load_balancer(name, s, base, labels, location, network, app_servers, opts)
    )
    return Fleet(
        hosts=hosts, server_ips=pulumi.Output.all(*ips).apply(lambda a: [str(x) for x in a]), public_ip=public_ip
    )


def _https(s: Settings, certificate: pulumi.Input[int]) -> hcloud.LoadBalancerServiceHttpArgs:
    """TLS with the managed certificate, HTTP redirected; sticky sessions when any routed
    service is sticky. The balancer picks a server, not a service, so the setting applies to
    every route of the app (a non-sticky service's client then also stays on one server, whose
    Caddy still round-robins it over that server's replicas)."""
    if not any_sticky(s.app):
        return hcloud.LoadBalancerServiceHttpArgs(certificates=[certificate], redirect_http=True)
    return hcloud.LoadBalancerServiceHttpArgs(
        certificates=[certificate],
        redirect_http=True,
        sticky_sessions=True,
        cookie_name=LB_COOKIE,
        cookie_lifetime=LB_COOKIE_TTL_SECONDS,
    )


def _load_balancer(
    name: str,
    s: Settings,
    base: str,
    labels: dict[str, str],
    location: str,
    network: hcloud.Network | None,
    servers: list[hcloud.Server],
    opts: pulumi.ResourceOptions,
) -> pulumi.Output[str]:
    """TLS ends at the load balancer with a certificate Hetzner issues and renews (the
    domain's zone must be in Hetzner DNS); servers get plain HTTP on the private network."""
    assert network is not None and s.domain is not None
    lb = hcloud.LoadBalancer(
        f"{name}-lb", name=base, load_balancer_type="lb11", location=location, labels=labels, opts=opts
    )
    attached = hcloud.LoadBalancerNetwork(
        f"{name}-lb-network",
        load_balancer_id=as_id(lb.id),
        network_id=as_id(network.id),
        ip=t.LOAD_BALANCER_IP,
        opts=opts,
    )
    for i, srv in enumerate(servers):
        hcloud.LoadBalancerTarget(
            f"{name}-lb-target-{i}",
            load_balancer_id=as_id(lb.id),
            type="server",
            server_id=as_id(srv.id),
            use_private_ip=True,
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[attached])),
        )
    cert = hcloud.ManagedCertificate(
        f"{name}-certificate", name=base, domain_names=[s.domain], labels=labels, opts=opts
    )
    health = next(iter(s.app.routed_services.values())).health_path
    hcloud.LoadBalancerService(
        f"{name}-lb-https",
        load_balancer_id=lb.id,
        protocol="https",
        listen_port=443,
        destination_port=80,
        http=_https(s, as_id(cert.id)),
        health_check=hcloud.LoadBalancerServiceHealthCheckArgs(
            protocol="http",
            port=80,
            interval=10,
            timeout=5,
            retries=3,
            http=hcloud.LoadBalancerServiceHealthCheckHttpArgs(
                domain=s.domain, path=health, status_codes=["2??", "3??"]
            ),
        ),
        opts=opts,
    )
    ipv4: pulumi.Output[str] = lb.ipv4
    return ipv4
