"""Kubernetes manifests rebuilt from the Kubernetes resources' inputs, for the offline validators."""

from __future__ import annotations

from typing import Any

from tools.harness import ProgramResult

_SKIP_PREFIXES = ("kubernetes:helm.sh/", "pulumi:providers:")
# How the engine wire format marks a secret value: {SIG_KEY: SECRET_SIG, "value": ...}.
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
REDACTED = "[secret]"


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return REDACTED if isinstance(value, str) else value


def clean(value: Any) -> Any:
    """Plain YAML data: secrets unwrapped and redacted (never written to build/), 2.0 -> 2."""
    if isinstance(value, dict):
        if value.get(_SIG_KEY) == _SECRET_SIG:
            return _redact(clean(value.get("value")))
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


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
        body = {k: clean(v) for k, v in r.inputs.items() if k not in ("apiVersion", "kind")}
        meta = dict(body.get("metadata") or {})
        meta.setdefault("name", r.name)
        body["metadata"] = meta
        manifests.append({"apiVersion": api_version, "kind": kind, **body})
    return manifests
