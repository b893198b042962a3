"""k3s on plain servers (the Hetzner cluster rung): node config, the pinned installer, the kubeconfig.

The join token and the kubeconfig are secrets: they reach the nodes over SSH (written
with mode 600 by the install step), never through user data, which the cloud API keeps
in plain text and which would replace a server whenever it changes.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import yaml

from components import versions
from components.render.heredoc import heredoc

Role = Literal["server", "agent"]

CONFIG_PATH = "/etc/rancher/k3s/config.yaml"
KUBECONFIG_PATH = "/etc/rancher/k3s/k3s.yaml"
# The admin kubeconfig, read as root through the entry point (a script on stdin like any other).
KUBECONFIG_READ = f"cat {KUBECONFIG_PATH}\n"
API_PORT = 6443
# Pod and service ranges k3s uses by default; the Hetzner CCM routes the pod range.
CLUSTER_CIDR = "10.42.0.0/16"
SERVICE_CIDR = "10.43.0.0/16"


@dataclass(frozen=True)
class K3sNode:
    """What one node needs to know to install and join."""

    role: Role
    version: str
    private_subnet: str
    token: str
    server_url: str | None = None  # None on the first server: it initialises the cluster
    tls_sans: Sequence[str] = ()
    # Ladder installs its own ingress (Traefik by Helm) and load balancers come from the
    # Hetzner CCM; `local-storage` would keep `local-path` as a second default
    # StorageClass beside hcloud-volumes, and PVCs could land on a node's disk.
    disable: Sequence[str] = ("traefik", "servicelb", "local-storage")
    ha: bool = False
    labels: Sequence[str] = field(default_factory=tuple)


def node_config(node: K3sNode) -> str:
    """/etc/rancher/k3s/config.yaml for a node (node-ip and flannel interface are added at install time)."""
    config: dict[str, object] = {"token": node.token, "kubelet-arg": ["cloud-provider=external"]}
    if node.server_url:
        config["server"] = node.server_url
    if node.role == "server":
        config.update(
            {
                "write-kubeconfig-mode": "0600",
                "disable": list(node.disable),
                "disable-cloud-controller": True,
                "secrets-encryption": True,
                "cluster-cidr": CLUSTER_CIDR,
                "service-cidr": SERVICE_CIDR,
                "tls-san": list(node.tls_sans),
                "kube-apiserver-arg": ["anonymous-auth=false"],
            }
        )
        if node.ha and not node.server_url:
            config["cluster-init"] = True
    if node.labels:
        config["node-label"] = list(node.labels)
    return yaml.safe_dump(config, sort_keys=True)


def installer_url(commit: str = versions.K3S_INSTALL_SCRIPT_COMMIT) -> str:
    """The install script at a pinned commit of k3s-io/k3s (it verifies the binary's sha256)."""
    if not re.fullmatch(r"[0-9a-f]{40}", commit):
        raise ValueError(f"expected a full commit id, got {commit!r}")
    return f"https://raw.githubusercontent.com/k3s-io/k3s/{commit}/install.sh"


def installer_check(path: str, sha256: str = versions.K3S_INSTALL_SCRIPT_SHA256) -> str:
    """The line that refuses a downloaded install script whose sha256 is not the pinned one."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError(f"expected a sha256 in hex, got {sha256!r}")
    return (
        f"echo {shlex.quote(f'{sha256}  {path}')} | sha256sum -c --quiet - "
        f"|| {{ echo 'ladder: the k3s install script does not match its pinned sha256; not running it' >&2; "
        f"rm -f {shlex.quote(path)}; exit 1; }}"
    )


def config_write_script(config: str) -> str:
    """Write the node's config (the cluster token inside) as root, mode 0600 from its first
    byte (umask), replacing the old one in one rename. The script is a secret: it travels
    only as stdin of the entry point."""
    path = shlex.quote(CONFIG_PATH)
    return "\n".join(
        [
            "#!/usr/bin/env bash",
            "set -euo pipefail",
            "umask 077",
            "install -d -m 0700 /etc/rancher/k3s",
            heredoc(f"cat > {path}.new", config),
            f"mv -f {path}.new {path}",
            "",
        ]
    )


def install_script(node: K3sNode) -> str:
    """Idempotent install/upgrade run over SSH as root after cloud-init finished.

    Expects the token-bearing config at CONFIG_PATH (written beforehand from stdin, mode
    600); finds the private interface at run time (its name differs between server
    types), so the rendered script does not depend on a server's identity.
    """
    subnet = ipaddress.ip_network(node.private_subnet)
    octets = str(subnet.network_address).split(".")[: max(1, subnet.prefixlen // 8)]
    prefix = "\\.".join(octets)
    exec_role = "server" if node.role == "server" else "agent"
    return f"""#!/usr/bin/env bash
# Ladder: install or upgrade k3s {node.version} as a {node.role} (idempotent).
set -euo pipefail
cloud-init status --wait >/dev/null || true
private_ip=$(ip -o -4 addr show | awk '$4 ~ /^{prefix}\\./ {{split($4, a, "/"); print a[1]; exit}}')
private_if=$(ip -o -4 addr show | awk '$4 ~ /^{prefix}\\./ {{print $2; exit}}')
if [ -z "$private_ip" ]; then
  echo "ladder: no address in {node.private_subnet} on this node; is it attached to the private network?" >&2
  exit 1
fi
install -d -m 0700 /etc/rancher/k3s
chmod 0600 {CONFIG_PATH}
if [ "$(k3s --version 2>/dev/null | awk 'NR==1 {{print $3}}')" != {shlex.quote(node.version)} ]; then
  curl -fsSL --retry 5 -o /tmp/k3s-install.sh {shlex.quote(installer_url())}
  {installer_check("/tmp/k3s-install.sh")}
  INSTALL_K3S_VERSION={shlex.quote(node.version)} \\
    INSTALL_K3S_EXEC="{exec_role} --node-ip=$private_ip --flannel-iface=$private_if" \\
    sh /tmp/k3s-install.sh
  rm -f /tmp/k3s-install.sh
fi
systemctl is-active --quiet k3s{"" if node.role == "server" else "-agent"}
"""


def rewrite_kubeconfig(raw: str, server: str, name: str) -> str:
    """k3s writes a kubeconfig for https://127.0.0.1:6443 named `default`: point it at
    the stable public address and give cluster, user and context the stack's name."""
    doc = yaml.safe_load(raw) or {}
    for cluster in doc.get("clusters") or []:
        cluster["name"] = name
        cluster.setdefault("cluster", {})["server"] = f"https://{server}:{API_PORT}"
    for user in doc.get("users") or []:
        user["name"] = name
    for context in doc.get("contexts") or []:
        context["name"] = name
        context.setdefault("context", {}).update({"cluster": name, "user": name})
    doc["current-context"] = name
    return yaml.safe_dump(doc, sort_keys=False)


@dataclass(frozen=True)
class FirewallRule:
    """One inbound opening on the nodes' public interfaces."""

    port: str
    sources: tuple[str, ...]
    description: str
    protocol: str = "tcp"


def firewall_rules(allow_from: Sequence[str]) -> list[FirewallRule]:
    """SSH and the Kubernetes API from the allowlist only. Nothing else is public:
    80/443 reach the ingress through the load balancer over the private network, and
    node-to-node traffic stays on the private network (Hetzner firewalls filter public
    interfaces only)."""
    sources = tuple(allow_from)
    return [
        FirewallRule("22", sources, "SSH from the allowlist"),
        FirewallRule(str(API_PORT), sources, "Kubernetes API from the allowlist"),
    ]
