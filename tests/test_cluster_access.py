"""Issue 12 items 4 and 10 on DOKS: the exported kubeconfig opens the cluster only, and the
control plane answers the allowlist only."""

from __future__ import annotations

import base64
import json
from typing import Any

import pulumi

from tests.cluster_helpers import USER_TOKEN
from tools.harness import LadderMocks, run_program

SA_TOKEN = "eyJhbGciOiJSUzI1NiJ9.service-account-token.sig"
DO = "digitalocean:index/kubernetesCluster:KubernetesCluster"


class TokenControllerMocks(LadderMocks):
    """The cluster's token controller: fills `data.token` of a service-account-token Secret."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        rid, state = super().new_resource(args)
        if args.typ == "kubernetes:core/v1:Secret" and state.get("type") == "kubernetes.io/service-account-token":
            state["data"] = {"token": base64.b64encode(SA_TOKEN.encode()).decode()}
        return rid, state


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


def test_exported_kubeconfig_uses_a_service_account_token_not_the_do_token() -> None:
    result = run_program("production", secrets={"digitalocean:token": USER_TOKEN}, mocks=TokenControllerMocks())
    assert result.error is None, result.error
    assert "kubeconfig" in result.secret_outputs
    exported = json.loads(result.outputs["kubeconfig"])
    assert exported["users"][0]["user"] == {"token": SA_TOKEN}
    assert exported["clusters"][0]["cluster"]["server"] == "https://k8s.example.invalid"
    for name, value in result.outputs.items():
        assert all(USER_TOKEN not in s for s in _strings(value)), f"output {name} holds digitalocean:token"
    binding = result.one("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding")
    assert binding.inputs["roleRef"]["name"] == "cluster-admin"
    assert binding.inputs["subjects"] == [
        {"kind": "ServiceAccount", "name": "ladder-admin", "namespace": "kube-system"}
    ]
    secret = next(r for r in result.of_type("kubernetes:core/v1:Secret") if r.name.endswith("-admin-token"))
    assert secret.inputs["metadata"]["annotations"] == {"kubernetes.io/service-account.name": "ladder-admin"}


def test_exported_kubeconfig_evaluates_under_the_plainest_mock() -> None:
    from tools.harness import PlainMocks

    result = run_program("production", secrets={"digitalocean:token": USER_TOKEN}, mocks=PlainMocks())
    assert result.error is None, result.error
    assert USER_TOKEN not in result.outputs["kubeconfig"]


def test_control_plane_firewall_follows_the_allowlist() -> None:
    allow = ["203.0.113.7/32", "198.51.100.0/24"]
    result = run_program(
        "production", overrides={"ladder:cluster.apiAllowFrom": allow}, secrets={"digitalocean:token": USER_TOKEN}
    )
    assert result.error is None, result.error
    firewall = result.one(DO).inputs["controlPlaneFirewall"]
    assert firewall == {"enabled": True, "allowedAddresses": allow}
