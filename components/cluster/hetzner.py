"""k3s on Hetzner Cloud: the cluster rung at VPS prices (seed 000's k3s plan).

Only the cluster's creation lives here; the platform, tenants and data above it are the
same code as on DOKS. Nodes are hardened by the same cloud-init blocks as VPS servers;
the k3s token and the kubeconfig travel over SSH, never through user data.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pulumi
import pulumi_command as command
import pulumi_hcloud as hcloud
import pulumi_kubernetes as kubernetes
import pulumi_random as random
import pulumi_tls as tls

from components import access, hcloud_common, versions
from components.cluster.platform import helm_release
from components.cluster.providers import ClusterHandle
from components.render import hardening, hcloud_k8s, k3s
from components.render.sudo import AS_ROOT
from components.settings import Settings
from components.vps.hosts import host_key, keyed_user_data

NETWORK_RANGE = "10.0.0.0/16"
SUBNET_RANGE = "10.0.1.0/24"


def control_plane_ip(i: int) -> str:
    return f"10.0.1.{10 + i}"


def agent_ip(i: int) -> str:
    return f"10.0.1.{100 + i}"


def node_hardening() -> hardening.Hardening:
    """Hardened Ubuntu for a k3s node: nothing in it changes with the app, the k3s version,
    the users' keys or the allowlist (those go over SSH; the provider firewall enforces the
    allowlist from the first boot, the access step narrows ufw to it)."""
    return hardening.Hardening(
        ssh_keys=[],
        openings=[hardening.Opening(r.port, r.protocol) for r in k3s.firewall_rules([])],
        # Node-to-node, pod and service traffic (flannel, kubelet, etcd) and the load
        # balancer's health checks all arrive on the private network.
        trusted_networks=[NETWORK_RANGE, k3s.CLUSTER_CIDR, k3s.SERVICE_CIDR],
        sudo=True,
        extra_runcmd=["swapoff -a"],
    )


def ccm_token(settings: Settings) -> pulumi.Output[str]:
    """The token the CCM and CSI driver keep in kube-system: `ladder:cluster.hcloudToken`.

    Never `hcloud:token` (Pulumi's): whoever reads kube-system (a cluster admin, a leaked
    node) would otherwise hold the token that manages every server of the project.
    `settings` requires the key on k3s; `config_source` refuses a copy of Pulumi's token.
    """
    token = settings.cluster.hcloud_token
    return pulumi.Output.secret(token.get_secret_value() if token is not None else "")


def create(name: str, settings: Settings, opts: pulumi.ResourceOptions) -> ClusterHandle:
    s = settings
    cl, vps = s.cluster, s.vps
    location = cl.region or "nbg1"
    base = f"{s.app.name}-{pulumi.get_stack()}"
    labels = {"ladder": s.app.name, "stack": pulumi.get_stack()}
    child = opts
    if cl.max_nodes > cl.min_nodes:
        pulumi.log.warn(
            f"k3s on Hetzner runs ladder:cluster.minNodes ({cl.min_nodes}) agents; no cluster autoscaler is "
            f"installed, so maxNodes ({cl.max_nodes}) is not used: raise minNodes to add nodes"
        )
    stateful = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=s.protected))

    deploy_key, key_ids = hcloud_common.ssh_keys(name, base, vps.ssh_keys, child)
    wanted_keys = access.logins(vps.ssh_keys, deploy_key.public_key_openssh)

    network = hcloud.Network(f"{name}-network", name=base, ip_range=NETWORK_RANGE, labels=labels, opts=child)
    subnet = hcloud.NetworkSubnet(
        f"{name}-subnet",
        network_id=network.id.apply(int),
        type="cloud",
        network_zone=hcloud_common.NETWORK_ZONES.get(location, "eu-central"),
        ip_range=SUBNET_RANGE,
        opts=child,
    )
    firewall = hcloud_common.firewall(
        name,
        base,
        [(r.port, r.protocol, r.sources, r.description) for r in k3s.firewall_rules(vps.ssh_allow_from)],
        labels,
        child,
    )
    spread = hcloud.PlacementGroup(f"{name}-spread", name=base, type="spread", labels=labels, opts=child)
    token = random.RandomPassword(f"{name}-k3s-token", length=48, special=False, opts=child)
    # The deploy key is per stack and never rotates by itself, and each node's host key is its
    # own for life, so user data stays stable.
    host_keys: dict[str, tls.PrivateKey] = {}

    # A stable public address for the API (and the kubeconfig) that survives replacing
    # the first control plane.
    api_ip = hcloud_common.primary_ip(f"{name}-api-ip", f"{base}-api", location, labels, stateful)

    def server(
        resource: str,
        server_type: str,
        private_ip: str,
        role_label: str,
        primary_ip: hcloud.PrimaryIp | None,
        protect: bool,
    ) -> hcloud.Server:
        host_keys[resource] = host_key(resource, opts)
        return hcloud.Server(
            resource,
            name=f"{base}-{role_label}",
            server_type=server_type,
            image=vps.image or "ubuntu-24.04",
            location=location,
            ssh_keys=[k.id for k in key_ids],
            user_data=keyed_user_data(node_hardening(), deploy_key.public_key_openssh, host_keys[resource]),
            firewall_ids=[firewall.id.apply(int)],
            placement_group_id=spread.id.apply(int) if role_label.startswith("cp") else None,
            networks=[hcloud.ServerNetworkArgs(network_id=network.id.apply(int), ip=private_ip)],
            public_nets=[
                hcloud.ServerPublicNetArgs(
                    ipv4_enabled=True,
                    ipv4=primary_ip.id.apply(int) if primary_ip is not None else None,
                    ipv6_enabled=True,
                )
            ],
            labels={**labels, "role": role_label.rstrip("0123456789-")},
            delete_protection=protect,
            rebuild_protection=protect,
            opts=pulumi.ResourceOptions.merge(
                opts,
                pulumi.ResourceOptions(
                    protect=protect,
                    depends_on=[subnet],
                    # Keys roll out over SSH later; a changed key list must not replace a node
                    # (terraform-provider-hcloud#737). Named servers need delete-before-replace.
                    ignore_changes=["sshKeys"],
                    delete_before_replace=True,
                ),
            ),
        )

    def install(
        resource: str, host: pulumi.Input[str], node: k3s.K3sNode, after: list[pulumi.Resource]
    ) -> command.remote.Command:
        """Write the node's config (token inside) from stdin, then run the pinned installer."""
        connection = command.remote.ConnectionArgs(
            host=host,
            user=hardening.DEPLOY_USER,
            private_key=deploy_key.private_key_openssh,
            host_key=host_keys[resource].public_key_openssh,
            dial_error_limit=30,
        )
        keys = access.rollout(
            f"{resource}-ssh-keys",
            connection,
            wanted_keys,
            vps.ssh_allow_from,
            [r.port for r in k3s.firewall_rules([])],
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=after)),
        )
        config: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(token.result, api_ip.ip_address).apply(
                lambda a: k3s.config_write_script(
                    k3s.node_config(
                        replace(node, token=str(a[0]), tls_sans=(str(a[1]),) if node.role == "server" else ())
                    )
                )
            )
        )
        write = command.remote.Command(
            f"{resource}-config",
            connection=connection,
            create=AS_ROOT,
            stdin=config,
            triggers=[config.apply(lambda c: hashlib.sha256(c.encode()).hexdigest())],
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[*after, keys])),
        )
        script = k3s.install_script(node)
        return command.remote.Command(
            f"{resource}-install",
            connection=connection,
            create=AS_ROOT,
            stdin=script,
            triggers=[hashlib.sha256(script.encode()).hexdigest()],
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[write])),
        )

    k3s_version = versions.K3S_VERSIONS[cl.version]
    first_url = f"https://{control_plane_ip(0)}:{k3s.API_PORT}"
    installs: list[command.remote.Command] = []
    servers: list[hcloud.Server] = []
    for i in range(3 if cl.ha_control_plane else 1):
        first = i == 0
        srv = server(
            f"{name}-cp-{i}", vps.size or "cx23", control_plane_ip(i), f"cp-{i}", api_ip if first else None, s.protected
        )
        servers.append(srv)
        node = k3s.K3sNode(
            "server", k3s_version, SUBNET_RANGE, "", None if first else first_url, ha=cl.ha_control_plane
        )
        host = api_ip.ip_address if first else srv.ipv4_address
        installs.append(install(f"{name}-cp-{i}", host, node, [srv, *installs[:1]]))
    for i in range(cl.min_nodes):
        srv = server(f"{name}-agent-{i}", cl.node_size or "cx33", agent_ip(i), f"agent-{i}", None, False)
        servers.append(srv)
        node = k3s.K3sNode("agent", k3s_version, SUBNET_RANGE, "", first_url)
        installs.append(install(f"{name}-agent-{i}", srv.ipv4_address, node, [srv, installs[0]]))

    fetch = command.remote.Command(
        f"{name}-kubeconfig",
        connection=command.remote.ConnectionArgs(
            host=api_ip.ip_address,
            user=hardening.DEPLOY_USER,
            private_key=deploy_key.private_key_openssh,
            host_key=host_keys[f"{name}-cp-0"].public_key_openssh,
        ),
        create=AS_ROOT,
        stdin=k3s.KUBECONFIG_READ,
        # The admin kubeconfig must never reach the CLI's output or CI logs (pulumi-command#401).
        logging=command.remote.Logging.NONE,
        triggers=[installs[0].id],
        opts=pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(depends_on=[installs[0]], additional_secret_outputs=["stdout"])
        ),
    )
    kubeconfig: pulumi.Output[str] = pulumi.Output.secret(
        pulumi.Output.all(fetch.stdout, api_ip.ip_address).apply(
            lambda a: k3s.rewrite_kubeconfig(str(a[0] or ""), str(a[1] or ""), base)
        )
    )
    provider = kubernetes.Provider(
        f"{name}-k8s",
        kubeconfig=kubeconfig,
        # The first control plane identifies the cluster: a refreshed kubeconfig updates
        # the provider instead of replacing every object (pulumi-kubernetes#2745).
        cluster_identifier=servers[0].id,
        enable_server_side_apply=True,
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=installs)),
    )
    on_cluster = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(provider=provider, depends_on=installs))
    secret = kubernetes.core.v1.Secret(
        f"{name}-hcloud-secret",
        metadata={"name": hcloud_k8s.SECRET_NAME, "namespace": hcloud_k8s.SECRET_NAMESPACE},
        string_data={"token": ccm_token(s), "network": network.id},
        opts=on_cluster,
    )
    after_secret = pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[*installs, secret]))
    ccm = helm_release(
        f"{name}-hcloud-ccm", versions.HCLOUD_CCM_CHART, "kube-system", hcloud_k8s.ccm_values(location), after_secret
    )
    csi = helm_release(
        f"{name}-hcloud-csi", versions.HCLOUD_CSI_CHART, "kube-system", hcloud_k8s.csi_values(), after_secret
    )

    return ClusterHandle(
        provider=provider,
        kubeconfig=kubeconfig,
        depends_on=[*installs, ccm, csi],
        cluster_id=servers[0].id,
        region=location,
        server_ips=pulumi.Output.all(*[srv.ipv4_address for srv in servers]).apply(lambda ips: [str(ip) for ip in ips]),
    )
