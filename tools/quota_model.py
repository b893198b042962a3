"""ResourceQuota admission over rendered objects, at the worst moment of a tenant's life.

The quota is computed by the renderer (`components.render.k8s.quota_totals`); this model
recomputes, from what is actually rendered, every pod the program or its operators
create in the namespace at once and checks the quota admits them:

- each Deployment at its maximum (the HPA's `maxReplicas`, else `replicas`) plus its
  `maxSurge` during a rollout (none with `strategy: Recreate`); each Job once; each
  StatefulSet at `replicas`; each CronJob once (it must say `concurrencyPolicy: Forbid`,
  else its runs may pile up without bound); each PersistentVolumeClaim;
- a pod with init containers asks, per resource, the larger of its largest init
  container and the sum of its containers (as admission computes it);
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

    def checked(c: Mapping[str, Any]) -> dict[str, Any]:
        res = effective(c.get("resources"), lr)
        if lr and "max" in lr:
            for key in ("cpu", "memory"):
                parse = cpu_millis if key == "cpu" else memory_mb
                if parse(str(res["limits"][key])) > parse(str(lr["max"][key])):
                    d.problems.append(f"{c.get('name')}: limits.{key} above the LimitRange max")
        return res

    def pod(containers: Iterable[Mapping[str, Any]], count: int, init: Iterable[Mapping[str, Any]] = ()) -> None:
        d.pods += count
        main = [checked(c) for c in containers]
        inits = [checked(c) for c in init]
        total: dict[str, Any] = {"requests": {}, "limits": {}}
        for side in ("requests", "limits"):
            for key, parse, unit in (("cpu", cpu_millis, "m"), ("memory", memory_mb, "Mi")):
                summed = sum(parse(str(res[side][key])) for res in main)
                largest_init = max((parse(str(res[side][key])) for res in inits), default=0)
                total[side][key] = f"{max(summed, largest_init)}{unit}"
        d.add_container(total, count)

    def template(spec: Mapping[str, Any], count: int) -> None:
        pod_spec = spec["template"]["spec"]
        pod(pod_spec["containers"], count, pod_spec.get("initContainers") or ())

    for m in manifests:
        kind, spec = m["kind"], m.get("spec") or {}
        name = m["metadata"]["name"]
        if kind == "Deployment":
            strategy = spec.get("strategy") or {}
            surge = (
                0
                if strategy.get("type") == "Recreate"
                else int((strategy.get("rollingUpdate") or {}).get("maxSurge", 1))
            )
            replicas = hpa_max.get(name, spec.get("replicas", 1))
            template(spec, replicas + surge)
        elif kind == "Job":
            template(spec, 1)
        elif kind == "CronJob":
            if spec.get("concurrencyPolicy") != "Forbid":
                d.problems.append(f"CronJob {name}: concurrencyPolicy is not Forbid (runs may pile up)")
            template(spec["jobTemplate"]["spec"], 1)
        elif kind == "PersistentVolumeClaim":
            d.pvcs += 1
            d.storage_gb += _storage_gb(spec["resources"]["requests"]["storage"])
        elif kind == "StatefulSet":
            template(spec, spec.get("replicas", 1))
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
