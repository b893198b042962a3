"""Helm values of the platform releases as plain data (no Helm binary exists offline: tests check them as data)."""

from __future__ import annotations

from typing import Any

from components.render.k8s import INGRESS_CONTROLLERS

Values = dict[str, Any]


def traefik_values(lb_name: str | None = None) -> Values:
    annotations = {"service.beta.kubernetes.io/do-loadbalancer-name": lb_name} if lb_name else {}
    return {
        "deployment": {"replicas": 2},
        "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
        "ingressClass": {"enabled": True, "isDefaultClass": True, "name": INGRESS_CONTROLLERS["traefik"]["class"]},
        # Serve standard Ingress objects and publish the load balancer's address in their status.
        "providers": {
            "kubernetesIngress": {"enabled": True, "publishedService": {"enabled": True}},
            "kubernetesCRD": {"enabled": True},
        },
        # Chart >= 39 nests an entry point's HTTP options under `http` and refuses the old
        # top-level `redirections`/`tls` through its values.schema.json.
        "ports": {
            "web": {
                "http": {"redirections": {"entryPoint": {"to": "websecure", "scheme": "https", "permanent": True}}}
            },
            "websecure": {"http": {"tls": {"enabled": True}}},
        },
        # The chart reads the Service type from `service.spec.type` (a top-level `type` is ignored).
        "service": {"spec": {"type": "LoadBalancer"}, "annotations": annotations},
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "1", "memory": "256Mi"},
        },
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "traefik"}},
            }
        ],
    }


def ingress_nginx_values(lb_name: str | None = None) -> Values:
    annotations = {"service.beta.kubernetes.io/do-loadbalancer-name": lb_name} if lb_name else {}
    return {
        "controller": {
            "replicaCount": 2,
            "ingressClassResource": {
                "name": INGRESS_CONTROLLERS["ingress-nginx"]["class"],
                "enabled": True,
                "default": True,
            },
            "service": {"type": "LoadBalancer", "annotations": annotations},
            "allowSnippetAnnotations": False,
            "minAvailable": 1,
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        }
    }


def cert_manager_values() -> Values:
    # CRDs installed (and kept on uninstall) by the chart, so the ClusterIssuer can follow it.
    return {"crds": {"enabled": True, "keep": True}, "replicaCount": 1}


def cloudnative_pg_values() -> Values:
    return {"crds": {"create": True}, "replicaCount": 1}


def barman_plugin_values() -> Values:
    return {}  # chart defaults: CRDs on, certificates from cert-manager


def metrics_server_values() -> Values:
    """metrics-server for providers that ship none (DOKS): two replicas and a PDB, so the
    HPAs keep their metrics while a node drains."""
    return {
        "replicas": 2,
        "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
        "resources": {"requests": {"cpu": "100m", "memory": "200Mi"}},
    }
