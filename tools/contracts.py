"""The upstream contracts of the pinned charts and CRDs (`tests/contracts/`), and the checks
Helm and the API server would make with them.

No Helm binary or cluster exists offline, so this does what they would do with exactly
the pinned artefacts:

- Helm merges the values a release passes over the chart's `values.yaml` (maps merge
  key by key, lists and scalars replace, `null` deletes) and validates the result against
  the chart's `values.schema.json`, and each subchart's part against the subchart's
  schema. `helm_errors` does the same.
- Helm silently ignores keys a chart never reads; `unknown_keys` flags every key that
  is not in the chart's `values.yaml` (or its schema), except inside free-form maps: a
  map whose default is `{}` or `null`, or a path the chart documents as free-form
  (`FREE_FORM`, each with its reason).
- The API server validates a custom resource against its CRD's openAPIV3Schema and, with
  strict field validation, refuses unknown fields; `custom_resource_errors` does that.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = ROOT / "tests" / "contracts"

# Paths (dotted, below the chart's root) whose content the chart passes through as-is,
# so no values.yaml can list their keys.
FREE_FORM: dict[str, dict[str, str]] = {
    "kube-prometheus-stack": {
        # The Alertmanager configuration file, passed to Alertmanager verbatim; its loader's
        # rules are checked by `components.render.monitoring.alertmanager_config_errors`.
        "alertmanager.config": "Alertmanager configuration file",
    },
    "hcloud-cloud-controller-manager": {
        # Environment variables of the CCM container (`range $key, $value := $.Values.env`);
        # the names Ladder sets are read by internal/config of the CCM at the same tag.
        "env": "container environment",
    },
}

# Keys a chart reads whose values.yaml only shows them in a comment (or not at all).
DOCUMENTED: dict[str, set[str]] = {
    # grafana values.yaml: `# adminPassword: strongpassword`; templates/_config.tpl reads it.
    "grafana": {"adminPassword"},
    # kube-prometheus-stack-88.5.3 charts/crds/templates/upgrade/job.yaml renders busybox's
    # `@sha256:{{ busybox.sha }}` only `if .Values.upgradeJob.image.sha`: the condition reads
    # this key (absent from values.yaml), the digest comes from `busybox.sha` (present).
    "kube-prometheus-stack": {"crds.upgradeJob.image.sha"},
}


@dataclass(frozen=True)
class Contract:
    """One chart version's contract as stored beside the tests."""

    chart: str
    version: str
    directory: Path
    manifest: dict[str, Any]

    @property
    def defaults(self) -> dict[str, Any]:
        return _load(self.directory / "values.json") or {}

    @property
    def schema(self) -> dict[str, Any] | None:
        path = self.directory / "values.schema.json"
        return _load(path) if path.exists() else None

    def subcharts(self) -> dict[str, Contract]:
        return {name: contract(name, version) for name, version in (self.manifest.get("subcharts") or {}).items()}

    def crds(self) -> list[dict[str, Any]]:
        return [_load(p) for p in sorted((self.directory / "crds").glob("*.json"))]


@cache
def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def contract(chart: str, version: str) -> Contract:
    """The stored contract of `chart` at exactly `version`; FileNotFoundError when there is none."""
    directory = CONTRACTS / chart / version
    manifest_path = directory / "contract.json"
    if not manifest_path.exists():
        raise FileNotFoundError(
            f"no upstream contract for chart {chart} {version}: run `python -m tools.refresh_contracts {chart}`"
        )
    return Contract(chart, version, directory, _load(manifest_path))


# ---------------------------------------------------------------------------------------
# Helm values


def coalesce(defaults: Any, values: Any) -> Any:
    """Helm's merge of user values over chart defaults."""
    if not isinstance(defaults, dict) or not isinstance(values, dict):
        return copy.deepcopy(values)
    out = copy.deepcopy(defaults)
    for key, value in values.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = coalesce(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _schema_errors(schema: Mapping[str, Any], instance: Any, where: str) -> list[str]:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    validator = cls(schema)
    return [
        f"{where}{'.'.join(str(p) for p in err.absolute_path) or '<root>'}: {err.message}"
        for err in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    ]


def helm_errors(c: Contract, values: Mapping[str, Any]) -> list[str]:
    """What `helm install` would refuse: the merged values against the chart's and subcharts' schemas."""
    merged = coalesce(c.defaults, dict(values))
    errors: list[str] = []
    if c.schema is not None:
        errors += _schema_errors(c.schema, merged, f"{c.chart} {c.version}: ")
    for name, sub in c.subcharts().items():
        if sub.schema is not None:
            part = coalesce(sub.defaults, merged.get(name) or {})
            errors += _schema_errors(sub.schema, part, f"{name} {sub.version} (subchart): ")
    return errors


def _schema_has(schema: Mapping[str, Any] | None, path: tuple[str, ...]) -> bool:
    node: Any = schema
    for part in path:
        if not isinstance(node, dict):
            return False
        props = node.get("properties") or {}
        if part not in props:
            return False
        node = props[part]
    return True


def _walk_unknown(
    values: Mapping[str, Any],
    defaults: Any,
    schema: Mapping[str, Any] | None,
    path: tuple[str, ...],
    free: Mapping[str, str],
    documented: set[str],
) -> Iterator[str]:
    for key, value in values.items():
        here = (*path, key)
        dotted = ".".join(here)
        if dotted in free:
            continue
        known = isinstance(defaults, dict) and key in defaults
        if not known and not _schema_has(schema, here) and dotted not in documented:
            yield dotted
            continue
        default = defaults.get(key) if isinstance(defaults, dict) else None
        # A map whose default is empty or null is free-form (annotations, labels, resources ...).
        if isinstance(value, dict) and isinstance(default, dict) and default:
            yield from _walk_unknown(value, default, schema, here, free, documented)


def unknown_keys(c: Contract, values: Mapping[str, Any]) -> list[str]:
    """Keys of `values` the chart does not know (Helm would ignore them without a word)."""
    free = FREE_FORM.get(c.chart, {})
    subs = c.subcharts()
    found: list[str] = []
    for key, value in values.items():
        if key in subs and isinstance(value, dict):
            sub = subs[key]
            # The parent may set subchart defaults of its own; both are the subchart's keys.
            defaults = coalesce(sub.defaults, c.defaults.get(key) or {})
            sub_free = {k.partition(".")[2]: r for k, r in free.items() if k.startswith(f"{key}.")}
            docs = DOCUMENTED.get(key, set())
            found += [f"{key}.{k}" for k in _walk_unknown(value, defaults, sub.schema, (), sub_free, docs)]
        else:
            found += list(_walk_unknown({key: value}, c.defaults, c.schema, (), free, DOCUMENTED.get(c.chart, set())))
    return [f"{c.chart} {c.version}: unknown key {k}" for k in found]


def values_errors(chart: str, version: str, values: Mapping[str, Any]) -> list[str]:
    c = contract(chart, version)
    return helm_errors(c, values) + unknown_keys(c, values)


# ---------------------------------------------------------------------------------------
# custom resources


def structural(schema: Any) -> Any:
    """An openAPIV3Schema as JSON Schema with strict field validation: objects with
    `properties` refuse other fields unless they preserve unknown fields; `nullable`
    admits null."""
    if isinstance(schema, list):
        return [structural(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: structural(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def crd_index(contracts: list[Contract]) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> JSON Schema, over the CRDs of the given charts."""
    index: dict[tuple[str, str], dict[str, Any]] = {}
    for c in contracts:
        for crd in c.crds():
            for version, schema in crd["versions"].items():
                index[(f"{crd['group']}/{version}", crd["kind"])] = structural(schema)
    return index


def custom_resource_errors(index: Mapping[tuple[str, str], Any], obj: Mapping[str, Any]) -> list[str]:
    """What the API server would refuse about `obj` (a full manifest) under its CRD."""
    key = (str(obj.get("apiVersion")), str(obj.get("kind")))
    where = f"{key[1]} {(obj.get('metadata') or {}).get('name')}: "
    schema = index.get(key)
    if schema is None:
        return [f"{where}no CRD contract for {key[0]} {key[1]} among the installed charts"]
    # metadata is the API server's ObjectMeta (kubernetes-validate checks it), not the CRD's.
    schema = {**schema, "properties": {**(schema.get("properties") or {}), "metadata": {"type": "object"}}}
    return _schema_errors(schema, dict(obj), where)
