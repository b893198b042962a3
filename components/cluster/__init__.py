"""The cluster rung: DOKS or an existing cluster, Helm platform releases, one hardened App per tenant."""

from components.cluster.stack import ClusterStack, ClusterStackArgs

__all__ = ["ClusterStack", "ClusterStackArgs"]
