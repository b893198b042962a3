"""The cluster rung against the upstream contracts of exactly the pinned charts and CRDs.

Every Helm release's values (merged over the chart's defaults, as Helm does) must pass the
chart's values.schema.json and its subcharts' schemas and use only keys the chart knows;
every custom resource must pass its CRD's openAPIV3Schema with strict field validation;
every pinned chart must have its contract in tests/contracts/. On every stack variant.
"""

from __future__ import annotations

from typing import Any

import pytest

from components.render import helm_values
from tests.cluster_helpers import VARIANTS, production
from tools import contracts
from tools.harness import ProgramResult, unwrap
from tools.manifests import clean, manifests_from
from tools.refresh_contracts import SOURCES, pinned_charts

RELEASE = "kubernetes:helm.sh/v3:Release"


def releases(result: ProgramResult) -> list[tuple[str, str, dict[str, Any]]]:
    """(chart, version, values) of every Helm release the program registers."""
    return [
        (r.inputs["chart"], r.inputs["version"], clean(unwrap(r.inputs.get("values") or {})))
        for r in result.of_type(RELEASE)
    ]


def crd_objects(result: ProgramResult) -> list[dict[str, Any]]:
    """Manifests whose API group is not a built-in one (those are kubernetes-validate's job)."""
    builtin = {
        "v1",
        "apps/v1",
        "batch/v1",
        "networking.k8s.io/v1",
        "policy/v1",
        "autoscaling/v2",
        "rbac.authorization.k8s.io/v1",
    }
    return [m for m in manifests_from(result) if m["apiVersion"] not in builtin]


def test_every_pinned_chart_has_its_contract() -> None:
    for chart in pinned_charts():
        c = contracts.contract(chart.name, chart.version)  # raises when missing
        assert c.manifest["version"] == chart.version
        assert c.manifest["commit"] and c.manifest["license"] and c.manifest["source"].startswith("https://github.com/")
        assert (c.directory / "values.json").exists()
        assert chart.name in SOURCES
        for name, sub in c.subcharts().items():
            assert sub.manifest["subchartOf"] == f"{chart.name}@{chart.version}", name


def test_a_pin_without_contract_fails() -> None:
    with pytest.raises(FileNotFoundError, match="refresh_contracts"):
        contracts.contract("traefik", "0.0.1")


@pytest.mark.parametrize("variant", VARIANTS)
def test_helm_values_pass_the_chart_contracts(variant: str) -> None:
    result = production(variant)
    rendered = releases(result)
    assert rendered, "no Helm release"
    errors = [e for chart, version, values in rendered for e in contracts.values_errors(chart, version, values)]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("variant", VARIANTS)
def test_custom_resources_pass_their_crds(variant: str) -> None:
    result = production(variant)
    installed = [contracts.contract(chart, version) for chart, version, _ in releases(result)]
    index = contracts.crd_index(installed)
    objects = crd_objects(result)
    assert any(o["kind"] == "ClusterIssuer" for o in objects)
    errors = [e for obj in objects for e in contracts.custom_resource_errors(index, obj)]
    assert not errors, "\n".join(errors)


# --- the checks can fail: what the issue found is refused --------------------------------


def test_traefik_contract_refuses_pre_39_entrypoint_keys() -> None:
    old = {
        "ports": {
            "web": {"redirections": {"entryPoint": {"to": "websecure", "scheme": "https", "permanent": True}}},
            "websecure": {"tls": {"enabled": True}},
        }
    }
    errors = contracts.values_errors("traefik", "41.3.0", old)
    assert any("ports.web" in e and "redirections" in e for e in errors), errors
    assert any("ports.websecure" in e and "tls" in e for e in errors), errors


def test_unknown_keys_are_errors_without_a_schema() -> None:
    # kube-prometheus-stack has no values.schema.json: only the key check sees a typo.
    assert contracts.contract("kube-prometheus-stack", "88.5.3").schema is None
    errors = contracts.values_errors("kube-prometheus-stack", "88.5.3", {"prometheus": {"prometheusSpc": {}}})
    assert errors == ["kube-prometheus-stack 88.5.3: unknown key prometheus.prometheusSpc"]
    errors = contracts.values_errors("traefik", "41.3.0", {"service": {"type": "LoadBalancer"}})
    assert errors, "service.type is not a key of the traefik chart (service.spec.type is)"


def test_free_form_maps_take_any_key() -> None:
    values = {"service": {"annotations": {"service.beta.kubernetes.io/do-loadbalancer-name": "x"}}}
    assert contracts.values_errors("traefik", "41.3.0", values) == []


def test_subchart_values_are_checked_against_the_subchart() -> None:
    errors = contracts.values_errors("kube-prometheus-stack", "88.5.3", {"grafana": {"adminPasword": "x"}})
    assert errors == ["kube-prometheus-stack 88.5.3: unknown key grafana.adminPasword"]


def test_crd_contract_refuses_unknown_and_mistyped_fields() -> None:
    index = contracts.crd_index([contracts.contract("plugin-barman-cloud", "0.7.0")])
    store: dict[str, Any] = {
        "apiVersion": "barmancloud.cnpg.io/v1",
        "kind": "ObjectStore",
        "metadata": {"name": "s"},
        "spec": {"configuration": {"destinationPath": "s3://b/p"}, "retentionPolicy": "30d", "sidecar": {}},
    }
    assert any("sidecar" in e for e in contracts.custom_resource_errors(index, store))
    store["spec"].pop("sidecar")
    assert contracts.custom_resource_errors(index, store) == []
    store["spec"]["instanceSidecarConfiguration"] = {"resources": {"requests": {"memory": 5}}}
    assert contracts.custom_resource_errors(index, store) == []  # int-or-string quantity
    store["spec"]["instanceSidecarConfiguration"] = {"resources": "lots"}
    assert contracts.custom_resource_errors(index, store)


def test_cluster_issuer_kind_needs_a_contract() -> None:
    errors = contracts.custom_resource_errors({}, {"apiVersion": "x.io/v1", "kind": "Thing", "metadata": {"name": "a"}})
    assert errors and "no CRD contract" in errors[0]


def test_helm_merge_is_helms() -> None:
    merged = contracts.coalesce({"a": {"b": 1, "c": [1]}, "d": 2}, {"a": {"c": [2]}, "d": None})
    assert merged == {"a": {"b": 1, "c": [2]}}


def test_plain_renderers_pass_without_the_program() -> None:
    # The renderers alone, with a load balancer name: what the DOKS variant passes.
    assert contracts.values_errors("traefik", "41.3.0", helm_values.traefik_values("shop-prod")) == []
