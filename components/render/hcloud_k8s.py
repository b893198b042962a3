"""Helm values for Hetzner's cloud-controller-manager and CSI driver on k3s, as plain data.

Both charts read the API token from the Secret `kube-system/hcloud` (key `token`) and the
CCM reads the private network from key `network`; Ladder creates that Secret itself.
"""

from __future__ import annotations

from typing import Any

from components.render.k3s import CLUSTER_CIDR

SECRET_NAME = "hcloud"
SECRET_NAMESPACE = "kube-system"


def ccm_values(location: str) -> dict[str, Any]:
    """Nodes on the private network (flannel carries pod traffic, so the route controller
    is off); load balancers reach nodes by private IP, so nodes need no public 80/443 opening."""
    return {
        "networking": {"enabled": True, "clusterCIDR": CLUSTER_CIDR},
        "env": {
            "HCLOUD_LOAD_BALANCERS_LOCATION": {"value": location},
            "HCLOUD_LOAD_BALANCERS_USE_PRIVATE_IP": {"value": "true"},
            "HCLOUD_LOAD_BALANCERS_DISABLE_PRIVATE_INGRESS": {"value": "true"},
            # k3s runs flannel (VXLAN over the private interface), which carries pod traffic
            # itself: Hetzner network routes for the pod range would only compete with it.
            "HCLOUD_NETWORK_ROUTES_ENABLED": {"value": "false"},
        },
    }


def csi_values() -> dict[str, Any]:
    """The default StorageClass keeps volumes when a PVC goes away: deleting a tenant or
    moving down the ladder must never delete database data silently."""
    return {
        "storageClasses": [
            {
                "name": "hcloud-volumes",
                "defaultStorageClass": True,
                "reclaimPolicy": "Retain",
            }
        ]
    }
