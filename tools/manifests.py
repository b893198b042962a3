"""Kubernetes manifests rebuilt from the Kubernetes resources' inputs, for the offline validators."""

from __future__ import annotations

from typing import Any

from tools.harness import ProgramResult

_SKIP_PREFIXES = ("kubernetes:helm.sh/", "pulumi:providers:")


def _api_version(token: str) -> tuple[str, str]:
    # kubernetes:apps/v1:Deployment -> ("apps/v1", "Deployment"); core/v1 -> "v1"
    _, group_version, kind = token.split(":")
    group, _, version = group_version.rpartition("/")
    return (version if group == "core" else group_version), kind


def manifests_from(result: ProgramResult) -> list[dict[str, Any]]:
    """One manifest per registered Kubernetes object (Helm releases and providers excluded)."""
    manifests = []
    for r in result.resources:
        if not r.type.startswith("kubernetes:") or r.type.startswith(_SKIP_PREFIXES):
            continue
        api_version, kind = _api_version(r.type)
        body = {k: v for k, v in r.inputs.items() if k not in ("apiVersion", "kind")}
        meta = dict(body.get("metadata") or {})
        meta.setdefault("name", r.name)
        body["metadata"] = meta
        manifests.append({"apiVersion": api_version, "kind": kind, **body})
    return manifests
