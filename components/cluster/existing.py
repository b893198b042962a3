"""A cluster you already run, reached through a kubeconfig kept as a stack secret."""

from __future__ import annotations

import hashlib
from typing import Any

import pulumi
import pulumi_kubernetes as kubernetes
import yaml

from components.cluster.providers import ClusterHandle
from components.settings import Settings


def server_of(kubeconfig: str) -> str:
    """The API server of the kubeconfig's current context ('' when it names none)."""
    try:
        doc: Any = yaml.safe_load(kubeconfig) or {}
    except yaml.YAMLError:
        return ""
    if not isinstance(doc, dict):
        return ""
    contexts = {c.get("name"): c.get("context") or {} for c in doc.get("contexts") or [] if isinstance(c, dict)}
    clusters = {c.get("name"): c.get("cluster") or {} for c in doc.get("clusters") or [] if isinstance(c, dict)}
    ctx = contexts.get(doc.get("current-context")) or {}
    return str((clusters.get(ctx.get("cluster")) or {}).get("server") or "")


def create(name: str, settings: Settings, opts: pulumi.ResourceOptions) -> ClusterHandle:
    assert settings.cluster.kubeconfig is not None  # enforced by settings
    raw = settings.cluster.kubeconfig.get_secret_value()
    config = pulumi.Output.secret(raw)
    # Identify the cluster by its API server, so rotating credentials updates the
    # provider instead of replacing every object under it (pulumi-kubernetes#2745).
    server = server_of(raw)
    identifier = f"existing-{hashlib.sha256(server.encode()).hexdigest()[:12]}" if server else None
    provider = kubernetes.Provider(
        f"{name}-k8s",
        kubeconfig=config,
        cluster_identifier=identifier,
        enable_server_side_apply=True,
        opts=opts,
    )
    return ClusterHandle(provider=provider, kubeconfig=config)
