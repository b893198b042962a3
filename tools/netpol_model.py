"""NetworkPolicy reachability over rendered objects: who may open a connection to whom.

No schema sees whether the policies let the right traffic through; a cluster decides it
from namespaces, pod labels, ports and the policies. This model applies the
`networking.k8s.io/v1` semantics to the same data:

- a pod selected by a policy of its namespace with `Ingress` (`Egress`) in `policyTypes`
  is isolated for that direction; an isolated pod admits only what some selecting
  policy's rules allow, a non-isolated pod admits everything;
- a connection happens when the source's egress AND the destination's ingress allow it;
- peers: `podSelector` (the policy's namespace), `namespaceSelector` (with an optional
  `podSelector`), `ipBlock` (addresses outside the pod network only, as Ladder uses it);
  no `from`/`to` means any peer, no `ports` means any port.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class Pod:
    """A pod as the policies see it."""

    name: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class External:
    """An address outside the pod network (object store, API server, the internet)."""

    name: str
    ip: str


Endpoint = Pod | External


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector semantics; an empty selector selects everything."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


class Network:
    """Namespaces (with labels) and NetworkPolicies; answers `allowed(src, dst, port)`."""

    def __init__(self, namespaces: Mapping[str, Mapping[str, str]], policies: Iterable[Obj]) -> None:
        self.namespaces = {
            name: {"kubernetes.io/metadata.name": name, **dict(labels)} for name, labels in namespaces.items()
        }
        self.policies = [p for p in policies]

    @classmethod
    def from_manifests(cls, manifests: Iterable[Mapping[str, Any]], extra_namespaces: Iterable[str] = ()) -> Network:
        manifests = list(manifests)
        namespaces: dict[str, Mapping[str, str]] = {name: {} for name in extra_namespaces}
        for m in manifests:
            if m["kind"] == "Namespace":
                namespaces[m["metadata"]["name"]] = m["metadata"].get("labels") or {}
        policies = [dict(m) for m in manifests if m["kind"] == "NetworkPolicy"]
        for p in policies:
            namespaces.setdefault(p["metadata"]["namespace"], {})
        return cls(namespaces, policies)

    def _selecting(self, pod: Pod, direction: str) -> list[Obj]:
        return [
            p
            for p in self.policies
            if p["metadata"]["namespace"] == pod.namespace
            and direction in (p["spec"].get("policyTypes") or ["Ingress"])
            and selects(p["spec"].get("podSelector"), pod.labels)
        ]

    def _peer_matches(self, peer: Obj, policy_ns: str, other: Endpoint) -> bool:
        if "ipBlock" in peer:
            if not isinstance(other, External):
                return False
            ip = ipaddress.ip_address(other.ip)
            block = peer["ipBlock"]
            if ip not in ipaddress.ip_network(block["cidr"]):
                return False
            return not any(ip in ipaddress.ip_network(e) for e in block.get("except") or [])
        if not isinstance(other, Pod):
            return False
        if "namespaceSelector" in peer:
            ns_labels = self.namespaces.get(other.namespace, {"kubernetes.io/metadata.name": other.namespace})
            if not selects(peer["namespaceSelector"], ns_labels):
                return False
        elif other.namespace != policy_ns:
            return False
        return selects(peer.get("podSelector"), other.labels)

    @staticmethod
    def _port_matches(rule: Obj, port: int, protocol: str) -> bool:
        ports = rule.get("ports")
        if not ports:
            return True
        return any(p.get("port") in (None, port) and p.get("protocol", "TCP") == protocol for p in ports)

    def _direction_allows(self, pod: Pod, other: Endpoint, port: int, protocol: str, direction: str) -> bool:
        selecting = self._selecting(pod, direction)
        if not selecting:
            return True
        key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        for policy in selecting:
            for rule in policy["spec"].get(key) or []:
                peers = rule.get(peers_key)
                if not self._port_matches(rule, port, protocol):
                    continue
                if not peers or any(self._peer_matches(p, pod.namespace, other) for p in peers):
                    return True
        return False

    def allowed(self, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
        """Whether `src` may open a connection to `dst` on `port`."""
        out = not isinstance(src, Pod) or self._direction_allows(src, dst, port, protocol, "Egress")
        into = not isinstance(dst, Pod) or self._direction_allows(dst, src, port, protocol, "Ingress")
        return out and into


# ---------------------------------------------------------------------------------------
# the pods a tenant namespace runs, from the rendered objects


def workload_pods(manifests: Iterable[Mapping[str, Any]]) -> list[Pod]:
    """Pods of Deployments, StatefulSets, Jobs and CronJobs (template labels), and of CloudNativePG
    Clusters (instances and their Jobs, labelled as CloudNativePG 1.30 labels them)."""
    pods: list[Pod] = []
    for m in manifests:
        meta = m.get("metadata") or {}
        ns = meta.get("namespace", "default")
        if m["kind"] in ("Deployment", "StatefulSet", "Job"):
            labels = ((m["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
            pods.append(Pod(f"{m['kind']}/{meta['name']}", ns, labels))
        elif m["kind"] == "CronJob":
            template = m["spec"]["jobTemplate"]["spec"]["template"]
            pods.append(Pod(f"CronJob/{meta['name']}", ns, (template.get("metadata") or {}).get("labels") or {}))
        elif m["kind"] == "Cluster" and str(m.get("apiVersion", "")).startswith("postgresql.cnpg.io/"):
            pods += cnpg_pods(meta["name"], ns)
    return pods


def cnpg_pods(cluster: str, namespace: str) -> list[Pod]:
    """An instance and a Job pod of a CloudNativePG Cluster (pkg/specs: pods.go, jobs.go)."""
    common = {"cnpg.io/cluster": cluster, "app.kubernetes.io/instance": cluster, "app.kubernetes.io/name": "postgresql"}
    return [
        Pod(
            f"{cluster}-1", namespace, {**common, "cnpg.io/podRole": "instance", "cnpg.io/instanceName": f"{cluster}-1"}
        ),
        Pod(f"{cluster}-1-job", namespace, {**common, "cnpg.io/jobRole": "full-recovery"}),
    ]
