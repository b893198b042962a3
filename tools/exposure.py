"""What a stack exposes to the network, read from the resources it registers.

One extractor per resource type that opens something; the plan prints the union.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tools.harness import ProgramResult, Registration


@dataclass(frozen=True)
class Exposure:
    what: str
    port: str
    source: str


def port_text(value: Any) -> str:
    """Ports come back from the engine as floats (JSON numbers): print 8080, not 8080.0."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _docker_container(r: Registration) -> Iterable[Exposure]:
    for port in r.inputs.get("ports") or []:
        yield Exposure(
            r.inputs.get("name", r.name),
            f"{port_text(port.get('external'))}->{port_text(port.get('internal'))}/{port.get('protocol', 'tcp')}",
            port.get("ip", "0.0.0.0"),
        )


def _k8s_service(r: Registration) -> Iterable[Exposure]:
    spec = r.inputs.get("spec") or {}
    if spec.get("type") != "LoadBalancer":
        return
    name = (r.inputs.get("metadata") or {}).get("name", r.name)
    for port in spec.get("ports") or []:
        yield Exposure(f"Service {name} (load balancer)", f"{port_text(port.get('port'))}/tcp", "0.0.0.0/0")


def _helm_release(r: Registration) -> Iterable[Exposure]:
    """An ingress controller chart whose Service is a cloud load balancer: 80 and 443 from anywhere."""
    values = r.inputs.get("values") or {}
    service = values.get("service") or (values.get("controller") or {}).get("service") or {}
    # ingress-nginx: controller.service.type; Traefik: service.spec.type
    if (service.get("type") or (service.get("spec") or {}).get("type")) == "LoadBalancer":
        for port in ("80", "443"):
            yield Exposure(f"{r.inputs.get('chart', r.name)} (load balancer)", f"{port}/tcp", "0.0.0.0/0")


def _database_firewall(r: Registration) -> Iterable[Exposure]:
    for rule in r.inputs.get("rules") or []:
        yield Exposure(f"managed database ({r.name})", "25060-25061/tcp", f"{rule.get('type')} {rule.get('value')}")


def _hcloud_firewall(r: Registration) -> Iterable[Exposure]:
    for rule in r.inputs.get("rules") or []:
        if rule.get("direction") == "in":
            yield Exposure(
                f"{r.inputs.get('name', r.name)} (Hetzner firewall)",
                f"{rule.get('port')}/{rule.get('protocol')}",
                ", ".join(rule.get("sourceIps") or []),
            )


def _do_firewall(r: Registration) -> Iterable[Exposure]:
    for rule in r.inputs.get("inboundRules") or []:
        sources = list(rule.get("sourceAddresses") or [])
        if rule.get("sourceLoadBalancerUids"):
            sources.append("the load balancer")
        yield Exposure(
            f"{r.inputs.get('name', r.name)} (DigitalOcean firewall)",
            f"{rule.get('portRange')}/{rule.get('protocol')}",
            ", ".join(sources),
        )


def _hcloud_lb_service(r: Registration) -> Iterable[Exposure]:
    yield Exposure(
        "load balancer (Hetzner)", f"{port_text(r.inputs.get('listenPort'))}/{r.inputs.get('protocol')}", "0.0.0.0/0"
    )


def _do_lb(r: Registration) -> Iterable[Exposure]:
    for rule in r.inputs.get("forwardingRules") or []:
        yield Exposure(
            "load balancer (DigitalOcean)",
            f"{port_text(rule.get('entryPort'))}/{rule.get('entryProtocol')}",
            "0.0.0.0/0",
        )


EXTRACTORS: dict[str, Callable[[Registration], Iterable[Exposure]]] = {
    "hcloud:index/firewall:Firewall": _hcloud_firewall,
    "digitalocean:index/firewall:Firewall": _do_firewall,
    "hcloud:index/loadBalancerService:LoadBalancerService": _hcloud_lb_service,
    "digitalocean:index/loadBalancer:LoadBalancer": _do_lb,
    "docker:index/container:Container": _docker_container,
    "kubernetes:core/v1:Service": _k8s_service,
    "kubernetes:helm.sh/v3:Release": _helm_release,
    "digitalocean:index/databaseFirewall:DatabaseFirewall": _database_firewall,
}


def exposures(result: ProgramResult) -> list[Exposure]:
    found: list[Exposure] = []
    for r in result.resources:
        extractor = EXTRACTORS.get(r.type)
        if extractor:
            found.extend(extractor(r))
    return found


def as_rows(items: Iterable[Exposure]) -> list[dict[str, Any]]:
    return [{"what": e.what, "port": e.port, "from": e.source} for e in items]
