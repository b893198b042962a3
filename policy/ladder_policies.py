"""Ladder's CrossGuard rules as pure functions of (resource type, props, options).

Each check returns the list of violation messages (empty = compliant), so it is unit
tested with plain dicts shaped like the engine's inputs (camelCase, as `pulumi preview`
passes them and as tools/harness.py records them). `__main__.py` wraps them in
`pulumi_policy.ResourceValidationPolicy`. No Pulumi import here.

`options` is a mapping with at least `protect` (bool), taken from
`ResourceValidationArgs.opts.protect`, and `config`, the policy's own configuration
(`--policy-pack-config`, with the defaults of `CONFIG_SCHEMAS` filled in).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Props = Mapping[str, Any]
Check = Callable[[str, Props, Mapping[str, Any]], list[str]]

DATA_PORTS = {5432: "Postgres", 6379: "Redis", 6432: "PgBouncer", 25060: "DO managed Postgres", 25061: "DO pgbouncer"}
PUBLIC = {"0.0.0.0/0", "::/0", "0.0.0.0", "::"}
SSH = 22
KUBERNETES_API = 6443
ADMIN_PORTS = {SSH: "SSH", KUBERNETES_API: "Kubernetes API"}
DOKS = "digitalocean:index/kubernetesCluster:KubernetesCluster"

# The widest allowlist an admin port may have, per address family, as a prefix length:
# the allowed public addresses together must not outnumber one such network. /16 (65,536
# addresses) is far more than an office NAT, a VPN exit or a CI runner pool needs and
# still refuses "the internet in pieces" (0.0.0.0/1 + 128.0.0.0/1) and ISP-wide ranges; a
# /8 would admit 16.7 million hosts. IPv6 /48 is one site's allocation (RFC 6177).
# `--policy-pack-config` may narrow or widen them and add ports (an existing host's SSH port).
CONFIG_SCHEMAS: dict[str, dict[str, dict[str, Any]]] = {
    "admin-ports-from-allowlist": {
        "maxIpv4Prefix": {"type": "integer", "minimum": 0, "maximum": 32, "default": 16},
        "maxIpv6Prefix": {"type": "integer", "minimum": 0, "maximum": 128, "default": 48},
        "adminPorts": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 65535}, "default": []},
    }
}

HCLOUD_FIREWALL = "hcloud:index/firewall:Firewall"
DO_FIREWALL = "digitalocean:index/firewall:Firewall"
DO_DB_FIREWALL = "digitalocean:index/databaseFirewall:DatabaseFirewall"
DOCKER_CONTAINER = "docker:index/container:Container"
DOCKER_IMAGE = "docker:index/remoteImage:RemoteImage"
K8S_SERVICE = "kubernetes:core/v1:Service"

K8S_WORKLOADS = {
    "kubernetes:apps/v1:Deployment",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:apps/v1:DaemonSet",
    "kubernetes:batch/v1:Job",
    "kubernetes:batch/v1:CronJob",
    "kubernetes:core/v1:Pod",
}

# Resources whose deletion loses data: they must carry `protect=True`.
STATEFUL = {
    "hcloud:index/volume:Volume",
    "digitalocean:index/volume:Volume",
    "digitalocean:index/databaseCluster:DatabaseCluster",
    "digitalocean:index/spacesBucket:SpacesBucket",
    "docker:index/volume:Volume",
    "kubernetes:core/v1:PersistentVolumeClaim",
    "kubernetes:core/v1:PersistentVolume",
    "kubernetes:postgresql.cnpg.io/v1:Cluster",
}


# --- helpers ---------------------------------------------------------------------------


def _ports_in(spec: Any) -> tuple[int, int] | None:
    """A firewall port spec ('22', '5000-6000', 'any', 'all', 22) as an inclusive range."""
    if spec is None or spec == "" or str(spec).lower() in ("any", "all"):
        return (1, 65535)
    text = str(spec)
    try:
        if "-" in text:
            a, _, b = text.partition("-")
            return (int(a), int(b))
        value = int(float(text))
    except ValueError:
        return None
    return (value, value)


def _covers(spec: Any, port: int) -> bool:
    rng = _ports_in(spec)
    return rng is not None and rng[0] <= port <= rng[1]


def _public(sources: Iterable[Any] | None) -> list[str]:
    return [str(s) for s in (sources or []) if str(s).strip() in PUBLIC]


def _inbound_rules(resource_type: str, props: Props) -> list[tuple[Any, str, list[Any]]]:
    """(port spec, protocol, sources) of every inbound rule of an hcloud or DO firewall."""
    out: list[tuple[Any, str, list[Any]]] = []
    if resource_type == HCLOUD_FIREWALL:
        for rule in props.get("rules") or []:
            if str(rule.get("direction", "in")) == "in":
                out.append((rule.get("port"), str(rule.get("protocol", "")), list(rule.get("sourceIps") or [])))
    elif resource_type == DO_FIREWALL:
        for rule in props.get("inboundRules") or []:
            out.append((rule.get("portRange"), str(rule.get("protocol", "")), list(rule.get("sourceAddresses") or [])))
    return out


def _pod_spec(resource_type: str, props: Props) -> Mapping[str, Any] | None:
    spec = props.get("spec") or {}
    if resource_type == "kubernetes:core/v1:Pod":
        return spec
    if resource_type == "kubernetes:batch/v1:CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    template = spec.get("template") or {}
    return template.get("spec")


def _containers(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(pod.get("initContainers") or []) + list(pod.get("containers") or [])


def image_uses_latest(image: Any) -> bool:
    """True for `repo`, `repo:latest`; False for a pinned tag or a digest; unknowns pass."""
    if not isinstance(image, str) or not image:
        return False
    if "@sha256:" in image:
        return False
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return True
    return last.rsplit(":", 1)[1] == "latest"


# --- the checks ------------------------------------------------------------------------


def no_public_data_ports(resource_type: str, props: Props, options: Mapping[str, Any]) -> list[str]:
    """Postgres/Redis ports never reachable from the internet."""
    found: list[str] = []
    for spec, _protocol, sources in _inbound_rules(resource_type, props):
        public = _public(sources)
        for port, what in DATA_PORTS.items():
            if public and _covers(spec, port):
                found.append(f"firewall opens {what} port {port} to {', '.join(public)}")
    if resource_type == DOCKER_CONTAINER:
        for p in props.get("ports") or []:
            internal = int(float(p.get("internal", 0)))
            external = int(float(p.get("external", internal) or internal))
            ip = str(p.get("ip") or "0.0.0.0")
            if (internal in DATA_PORTS or external in DATA_PORTS) and not ip.startswith("127."):
                found.append(f"container publishes {DATA_PORTS.get(internal, 'a data')} port on {ip}:{external}")
    if resource_type == K8S_SERVICE:
        spec = props.get("spec") or {}
        if spec.get("type") in ("LoadBalancer", "NodePort"):
            for p in spec.get("ports") or []:
                for key in ("port", "targetPort"):
                    value = p.get(key)
                    if isinstance(value, (int, float)) and int(value) in DATA_PORTS:
                        found.append(f"{spec.get('type')} Service exposes {DATA_PORTS[int(value)]} port {int(value)}")
                        break
    if resource_type == DO_DB_FIREWALL:
        for rule in props.get("rules") or []:
            if rule.get("type") == "ip_addr" and str(rule.get("value", "")).strip() in PUBLIC:
                found.append(f"database firewall trusts {rule.get('value')}")
    return found


def _config(options: Mapping[str, Any], policy: str) -> dict[str, Any]:
    defaults = {key: schema["default"] for key, schema in CONFIG_SCHEMAS[policy].items()}
    return {**defaults, **dict(options.get("config") or {})}


def too_wide(sources: Iterable[Any], max_v4: int, max_v6: int) -> list[str]:
    """The families whose public sources, merged, cover more addresses than one /max network.

    Summing the merged networks catches an allowlist split into pieces (two /1s are the
    whole internet); private and other non-global networks do not count, and an entry
    that is not an address at all is reported as unchecked rather than trusted.
    """
    v4: list[ipaddress.IPv4Network] = []
    v6: list[ipaddress.IPv6Network] = []
    found: list[str] = []
    for source in sources:
        text = str(source).strip()
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            found.append(f"{text!r} is not a CIDR")
            continue
        if net.is_private or net.is_loopback or net.is_link_local:
            continue
        if isinstance(net, ipaddress.IPv4Network):
            v4.append(net)
        else:
            v6.append(net)
    merged_v4: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = list(ipaddress.collapse_addresses(v4))
    merged_v6: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = list(ipaddress.collapse_addresses(v6))
    for merged, bits, limit in ((merged_v4, 32, max_v4), (merged_v6, 128, max_v6)):
        total = sum(n.num_addresses for n in merged)
        if total > 2 ** (bits - limit):
            shown = ", ".join(str(n) for n in merged[:4]) + (" ..." if len(merged) > 4 else "")
            found.append(f"{shown} (wider than one /{limit})")
    return found


def admin_ports_from_allowlist(resource_type: str, props: Props, options: Mapping[str, Any]) -> list[str]:
    """SSH (22), the Kubernetes API (6443) and configured admin ports open only to an allowlist
    no wider than one /16 (IPv4) or /48 (IPv6) in total; DOKS control planes behind their firewall."""
    config = _config(options, "admin-ports-from-allowlist")
    limits = (int(config["maxIpv4Prefix"]), int(config["maxIpv6Prefix"]))
    ports = {**ADMIN_PORTS, **{int(p): "admin" for p in config["adminPorts"]}}
    found: list[str] = []
    for spec, protocol, sources in _inbound_rules(resource_type, props):
        if protocol.lower() not in ("tcp", ""):
            continue
        for port, what in ports.items():
            if _covers(spec, port):
                for wide in too_wide(sources, *limits):
                    found.append(f"{what} ({port}) open to {wide}; use ladder:vps.sshAllowFrom")
    if resource_type == DOKS:
        firewall = props.get("controlPlaneFirewall") or {}
        if not firewall.get("enabled"):
            found.append(
                "Kubernetes API open to the internet: set ladder:cluster.apiAllowFrom (control plane firewall)"
            )
        else:
            for wide in too_wide(firewall.get("allowedAddresses") or [], *limits):
                found.append(f"Kubernetes API open to {wide}; narrow ladder:cluster.apiAllowFrom")
    if resource_type == DOCKER_CONTAINER:
        for p in props.get("ports") or []:
            if int(float(p.get("internal", 0))) == SSH and not str(p.get("ip") or "0.0.0.0").startswith("127."):
                found.append("container publishes SSH (22) on a public address")
    return found


def stateful_protected(resource_type: str, props: Props, options: Mapping[str, Any]) -> list[str]:
    """Volumes, databases, buckets and PVC-backed workloads carry `protect`."""
    stateful = resource_type in STATEFUL
    if resource_type == "kubernetes:apps/v1:StatefulSet":
        stateful = bool((props.get("spec") or {}).get("volumeClaimTemplates"))
    if stateful and not options.get("protect"):
        return [f"{resource_type} holds data but is not protected (set ladder:protect true)"]
    return []


def nonroot_with_limits(resource_type: str, props: Props, options: Mapping[str, Any]) -> list[str]:
    """Kubernetes: runAsNonRoot and CPU/memory requests + memory limit on every container.

    Docker (local rung): never an explicit root user, never privileged. An unset `user`
    means the image's own USER, which the policy cannot see, so it passes; memory limits
    are not required there yet (the local data and proxy containers have none).
    """
    found: list[str] = []
    if resource_type in K8S_WORKLOADS:
        pod = _pod_spec(resource_type, props) or {}
        pod_nonroot = bool((pod.get("securityContext") or {}).get("runAsNonRoot"))
        for c in _containers(pod):
            name = c.get("name", "?")
            sc = c.get("securityContext") or {}
            if not (pod_nonroot or sc.get("runAsNonRoot")) or sc.get("runAsUser") == 0:
                found.append(f"container {name} may run as root (set runAsNonRoot)")
            if sc.get("privileged") or sc.get("allowPrivilegeEscalation", True) is not False:
                found.append(f"container {name} allows privilege escalation")
            resources = c.get("resources") or {}
            requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
            if "memory" not in limits:
                found.append(f"container {name} has no memory limit")
            if not {"cpu", "memory"} <= set(requests):
                found.append(f"container {name} has no cpu/memory requests")
    if resource_type == DOCKER_CONTAINER:
        user = str(props.get("user") or "")
        if user.split(":")[0] in ("root", "0"):
            found.append(f"container runs as {user}")
        if props.get("privileged"):
            found.append("container is privileged")
    return found


def no_latest_images(resource_type: str, props: Props, options: Mapping[str, Any]) -> list[str]:
    """Every image pinned to a version tag or a digest."""
    images: list[Any] = []
    if resource_type == DOCKER_CONTAINER:
        images.append(props.get("image"))
    elif resource_type == DOCKER_IMAGE:
        images.append(props.get("name"))
    elif resource_type in K8S_WORKLOADS:
        images += [c.get("image") for c in _containers(_pod_spec(resource_type, props) or {})]
    elif resource_type == "kubernetes:postgresql.cnpg.io/v1:Cluster":
        images.append((props.get("spec") or {}).get("imageName"))
    return [f"image {image} is not pinned (uses latest)" for image in images if image_uses_latest(image)]


POLICIES: dict[str, tuple[str, Check]] = {
    "no-public-data-ports": ("No Postgres or Redis port reachable from the internet.", no_public_data_ports),
    "admin-ports-from-allowlist": (
        "SSH, the Kubernetes API and other admin ports only from a narrow allowlist.",
        admin_ports_from_allowlist,
    ),
    "stateful-resources-protected": ("Stateful resources carry protect.", stateful_protected),
    "containers-nonroot-with-limits": ("Containers run as non-root with resource limits.", nonroot_with_limits),
    "no-latest-image-tags": ("Images are pinned; never `latest`.", no_latest_images),
}


def evaluate(resource_type: str, props: Props, options: Mapping[str, Any]) -> dict[str, list[str]]:
    """Every policy's findings for one resource (only those with findings)."""
    out = {}
    for name, (_description, check) in POLICIES.items():
        found = check(resource_type, props, options)
        if found:
            out[name] = found
    return out
