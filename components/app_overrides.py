"""`ladder:appOverrides`: what one stack changes in the app description.

The app is written once, in Pulumi.yaml's project-level `config:` block (`app: {value: ...}`).
The Pulumi CLI merges a project-level value under a stack only when the stack does not set
the key at all, and then as a whole value (pulumi/pulumi pkg/workspace/config.go,
`mergeConfig`): a stack that sets `ladder:app` replaces the entire description, and so does
`pulumi config set --path 'ladder:app.<...>'`, which writes into the stack file alone.
A rung that needs a different detail (a liveness command, a secret env name) therefore sets
`ladder:appOverrides`, a JSON merge patch (RFC 7386) applied here onto the merged
`ladder:app` before validation: maps merge key by key, any other value (lists included)
replaces, and `null` removes a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OVERRIDES_KEY = "appOverrides"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: `patch` applied onto `target`, neither one mutated."""
    if not isinstance(patch, Mapping):
        return patch
    merged: dict[str, Any] = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def apply_app_overrides(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The config map with `appOverrides` merged into `app` (and removed), plus any problem.

    Problems name the full key path, like every other config error; the map is returned
    unchanged apart from dropping a malformed `appOverrides`.
    """
    out = dict(raw)
    if OVERRIDES_KEY not in out:
        return out, []
    patch = out.pop(OVERRIDES_KEY)
    if not isinstance(patch, Mapping):
        return out, [(f"ladder:{OVERRIDES_KEY}", "expected a map merged into ladder:app (see README)")]
    if not isinstance(out.get("app"), Mapping):
        # Nothing to patch: the missing or malformed app is reported by validation itself.
        return out, []
    out["app"] = merge_patch(out["app"], patch)
    return out, []
