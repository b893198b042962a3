"""Every pinned version in one place: images, Helm charts, Kubernetes and k3s.

Bumping a version is a one-line change here, reviewed in a PR whose `pulumi preview`
shows exactly what it touches. Tags are immutable upstream tags (never `latest`).
"""

from __future__ import annotations

from typing import NamedTuple

# --- images (official images only) -----------------------------------------------------

# `ladder:postgres.version` (the major) -> the official image tag.
POSTGRES_IMAGES: dict[str, str] = {
    "16": "postgres:16.10-alpine",
    "17": "postgres:17.6-alpine",
    "18": "postgres:18.0-alpine",
}
DEFAULT_POSTGRES_VERSION = "17"

# `ladder:redis.version` -> Valkey's official image (BSD-licensed Redis fork, same protocol).
VALKEY_IMAGES: dict[str, str] = {
    "8.0": "valkey/valkey:8.0.6-alpine",
    "8.1": "valkey/valkey:8.1.4-alpine",
}
DEFAULT_VALKEY_VERSION = "8.1"

CADDY_IMAGE = "caddy:2.10.2-alpine"

# --- Kubernetes --------------------------------------------------------------------------

DEFAULT_KUBERNETES_MINOR = "1.34"


class Chart(NamedTuple):
    """A Helm chart pinned by repository, name and exact version."""

    repo: str
    name: str
    version: str


# Helm charts of the cluster rung's platform. Chart versions checked against the chart
# repositories' published indexes (see the README's "Cluster rung" section for the date).
TRAEFIK_CHART = Chart("https://traefik.github.io/charts", "traefik", "37.3.0")
# Retired upstream (kubernetes/ingress-nginx, March 2026): opt-in only, for migrations.
INGRESS_NGINX_CHART = Chart("https://kubernetes.github.io/ingress-nginx", "ingress-nginx", "4.13.3")
CERT_MANAGER_CHART = Chart("https://charts.jetstack.io", "cert-manager", "v1.19.1")
CLOUDNATIVE_PG_CHART = Chart("https://cloudnative-pg.github.io/charts", "cloudnative-pg", "0.26.0")
# CloudNativePG's Barman Cloud Plugin (replaces the deprecated in-tree barmanObjectStore).
BARMAN_CLOUD_PLUGIN_CHART = Chart("https://cloudnative-pg.github.io/charts", "plugin-barman-cloud", "0.5.0")

# `ladder:postgres.version` -> CloudNativePG's operand image (same minors as POSTGRES_IMAGES).
CNPG_POSTGRES_IMAGES: dict[str, str] = {
    "16": "ghcr.io/cloudnative-pg/postgresql:16.10",
    "17": "ghcr.io/cloudnative-pg/postgresql:17.6",
    "18": "ghcr.io/cloudnative-pg/postgresql:18.0",
}

# DigitalOcean managed Valkey major.
DO_VALKEY_VERSION = "8"

# --- day-2 operations -------------------------------------------------------------------

# Runs the S3-compatible upload/list/prune of the VPS backup job (`docker run --rm`, no install
# on the host). Official AWS image; speaks to Spaces, Hetzner Object Storage, R2, MinIO via
# `--endpoint-url`.
AWS_CLI_IMAGE = "amazon/aws-cli:2.37.5"

# Prometheus, Grafana and Alertmanager for the cluster rung (prometheus-community).
# Verify the exact version against the chart index before the first `pulumi up` on a cluster.
KUBE_PROMETHEUS_STACK = Chart(
    repo="https://prometheus-community.github.io/helm-charts",
    name="kube-prometheus-stack",
    version="89.1.0",
)

# --- k3s on Hetzner ------------------------------------------------------------------------

# k3s release for the Hetzner cluster rung (its install script, fetched from this tag,
# verifies the binary's sha256). Keep the minor in step with DEFAULT_KUBERNETES_MINOR.
K3S_VERSION = "v1.34.1+k3s1"
# Hetzner's cloud-controller-manager (nodes, routes, load balancers) and CSI driver (volumes).
HCLOUD_CCM_CHART = Chart("https://charts.hetzner.cloud", "hcloud-cloud-controller-manager", "1.33.0")
HCLOUD_CSI_CHART = Chart("https://charts.hetzner.cloud", "hcloud-csi", "2.22.0")
