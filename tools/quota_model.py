"""ResourceQuota admission over rendered objects, at the worst moment of a tenant's life.

The quota is computed by the renderer (`components.render.k8s.quota_totals`); this model
recomputes, from what is actually rendered, every pod the program or its operators
create in the namespace at once and checks the quota admits them:

- each Deployment at its maximum (the HPA's `maxReplicas`, else `replicas`) plus its
  `maxSurge` during a rollout; each Job once; each StatefulSet at `replicas`;
- each CloudNativePG Cluster's instances plus one Job pod (initdb/join/recovery) with
  the Cluster's resources, and the Barman Cloud plugin sidecar in each of them with the
  resources of the ObjectStore it names (LimitRange defaults when it has none);
- cert-manager's HTTP-01 solver pod (controller defaults) and its Service, whose type
  comes from the ClusterIssuer (`NodePort` when unset);
- containers without requests/limits get the LimitRange's defaults, as admission does.

Quantities are in millicores and MiB.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from components.render.resources import cpu_millis, memory_mb

BARMAN_PLUGIN = "barman-cloud.cloudnative-pg.io"
# cert-manager v1.21 controller defaults (internal/apis/config/controller/v1alpha1/defaults.go)
SOLVER = {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}}


@dataclass
class Demand:
    """What the namespace asks of its quota at peak."""

    cpu_req: int = 0
    mem_req: int = 0
    cpu_lim: int = 0
    mem_lim: int = 0
    pods: int = 0
    pvcs: int = 0
    storage_gb: int = 0
    services: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def add_container(self, resources: Mapping[str, Any], count: int) -> None:
        self.cpu_req += cpu_millis(str(resources["requests"]["cpu"])) * count
        self.mem_req += memory_mb(str(resources["requests"]["memory"])) * count
        self.cpu_lim += cpu_millis(str(resources["limits"]["cpu"])) * count
        self.mem_lim += memory_mb(str(resources["limits"]["memory"])) * count


def effective(resources: Mapping[str, Any] | None, limit_range: Mapping[str, Any] | None) -> dict[str, Any]:
    """A container's requests and limits after LimitRange defaulting (limits default to
    `default`, requests to the limit when set, else to `defaultRequest`)."""
    resources = resources or {}
    lr = limit_range or {}
    limits = {**(lr.get("default") or {}), **(resources.get("limits") or {})}
    explicit_limits = resources.get("limits") or {}
    requests = {**(lr.get("defaultRequest") or {}), **explicit_limits, **(resources.get("requests") or {})}
    return {"requests": requests, "limits": limits}


def _container_limit_range(manifests: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    for m in manifests:
        if m["kind"] == "LimitRange":
            for item in m["spec"]["limits"]:
                if item.get("type") == "Container":
                    return dict(item)
    return None


def _storage_gb(size: str) -> int:
    return max(1, -(-memory_mb(size) // 1024))


def demand(manifests: Iterable[Mapping[str, Any]], issuers: Iterable[Mapping[str, Any]] = ()) -> Demand:
    """Peak demand of one namespace's rendered objects (plus cluster-wide issuers)."""
    manifests = list(manifests)
    lr = _container_limit_range(manifests)
    d = Demand()
    hpa_max = {
        m["spec"]["scaleTargetRef"]["name"]: m["spec"]["maxReplicas"]
        for m in manifests
        if m["kind"] == "HorizontalPodAutoscaler"
    }
    stores = {m["metadata"]["name"]: m["spec"] for m in manifests if m["kind"] == "ObjectStore"}

    def pod(containers: Iterable[Mapping[str, Any]], count: int) -> None:
        d.pods += count
        for c in containers:
            res = effective(c.get("resources"), lr)
            if lr and "max" in lr:
                for key in ("cpu", "memory"):
                    parse = cpu_millis if key == "cpu" else memory_mb
                    if parse(str(res["limits"][key])) > parse(str(lr["max"][key])):
                        d.problems.append(f"{c.get('name')}: limits.{key} above the LimitRange max")
            d.add_container(res, count)

    for m in manifests:
        kind, spec = m["kind"], m.get("spec") or {}
        name = m["metadata"]["name"]
        if kind == "Deployment":
            surge = int(((spec.get("strategy") or {}).get("rollingUpdate") or {}).get("maxSurge", 1))
            replicas = hpa_max.get(name, spec.get("replicas", 1))
            pod(spec["template"]["spec"]["containers"], replicas + surge)
        elif kind == "Job":
            pod(spec["template"]["spec"]["containers"], 1)
        elif kind == "StatefulSet":
            pod(spec["template"]["spec"]["containers"], spec.get("replicas", 1))
            for claim in spec.get("volumeClaimTemplates") or []:
                d.pvcs += spec.get("replicas", 1)
                d.storage_gb += _storage_gb(claim["spec"]["resources"]["requests"]["storage"]) * spec.get("replicas", 1)
        elif kind == "Cluster" and str(m.get("apiVersion", "")).startswith("postgresql.cnpg.io/"):
            containers: list[Mapping[str, Any]] = [{"name": f"{name}/postgres", "resources": spec.get("resources")}]
            for plugin in spec.get("plugins") or []:
                if plugin.get("name") == BARMAN_PLUGIN:
                    store = stores.get(plugin.get("parameters", {}).get("barmanObjectName"), {})
                    sidecar = (store.get("instanceSidecarConfiguration") or {}).get("resources")
                    containers.append({"name": f"{name}/plugin-barman-cloud", "resources": sidecar})
            pod(containers, spec["instances"] + 1)  # + the initdb/join/recovery Job
            d.pvcs += spec["instances"]
            d.storage_gb += _storage_gb(spec["storage"]["size"]) * spec["instances"]
        elif kind == "Service":
            d.services[spec.get("type", "ClusterIP")] += 1
    if any(m["kind"] == "Ingress" for m in manifests):
        pod([{"name": "acme-solver", "resources": SOLVER}], 1)
        for issuer in issuers:
            for solver in issuer["spec"]["acme"]["solvers"]:
                d.services[(solver.get("http01") or {}).get("ingress", {}).get("serviceType") or "NodePort"] += 1
    return d


def admission_errors(d: Demand, quota: Mapping[str, Any]) -> list[str]:
    """Where the demand exceeds the ResourceQuota's `hard` (what the API server refuses)."""
    hard = quota["spec"]["hard"]
    checks: dict[str, tuple[int, Callable[[str], int]]] = {
        "requests.cpu": (d.cpu_req, cpu_millis),
        "limits.cpu": (d.cpu_lim, cpu_millis),
        "requests.memory": (d.mem_req, memory_mb),
        "limits.memory": (d.mem_lim, memory_mb),
        "pods": (d.pods, int),
        "persistentvolumeclaims": (d.pvcs, int),
        "requests.storage": (d.storage_gb * 1024, memory_mb),
        "services.loadbalancers": (d.services["LoadBalancer"], int),
        "services.nodeports": (d.services["NodePort"] + d.services["LoadBalancer"], int),
    }
    errors = list(d.problems)
    for key, (wanted, parse) in checks.items():
        if key in hard and wanted > parse(str(hard[key])):
            errors.append(f"{key}: needs {wanted}, quota allows {hard[key]}")
    return errors
