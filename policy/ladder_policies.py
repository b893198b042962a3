"""Ladder's CrossGuard rules as pure functions of (resource type, props, options).

Each check returns the list of violation messages (empty = compliant), so it is unit
tested with plain dicts shaped like the engine's inputs (camelCase, as `pulumi preview`
passes them and as tools/harness.py records them). `__main__.py` wraps them in
`pulumi_policy.ResourceValidationPolicy`. No Pulumi import here.

`options` is a mapping with at least `protect` (bool), taken from
`ResourceValidationArgs.opts.protect`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

Props = Mapping[str, Any]
Check = Callable[[str, Props, Mapping[str, Any]], list[str]]

DATA_PORTS = {5432: "Postgres", 6379: "Redis", 6432: "PgBouncer", 25060: "DO managed Postgres", 25061: "DO pgbouncer"}
PUBLIC = {"0.0.0.0/0", "::/0", "0.0.0.0", "::"}
SSH = 22

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


def ssh_from_allowlist(resource_type: str, props: Props, options: Mapping[str, Any]) -> list[str]:
    """Port 22 open only to listed CIDRs, never to 0.0.0.0/0 or ::/0."""
    found: list[str] = []
    for spec, protocol, sources in _inbound_rules(resource_type, props):
        if protocol.lower() not in ("tcp", "") or not _covers(spec, SSH):
            continue
        public = _public(sources)
        if public:
            found.append(f"SSH (22) open to {', '.join(public)}; use ladder:vps.sshAllowFrom")
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
    "ssh-from-allowlist": ("SSH only from the ladder:vps.sshAllowFrom allowlist.", ssh_from_allowlist),
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
