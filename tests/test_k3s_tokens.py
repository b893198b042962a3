"""Issue 12 item 8: k3s on Hetzner hands the CCM/CSI its own token, never Pulumi's `hcloud:token`."""

from __future__ import annotations

import pulumi

from tests.cluster_helpers import HETZNER
from tools.harness import run_program, unwrap

PULUMI_TOKEN = "pulumi-hcloud-token-rw"
CCM_TOKEN = "ccm-csi-token-separate"


def _run(secrets: dict[str, str]) -> tuple[object, list[object]]:
    session = {"ladder:secrets.SESSION_SECRET": "s"}
    result = run_program("production", overrides=HETZNER, secrets={**session, **secrets}, with_placeholders=False)
    return result.error, [unwrap(r.inputs) for r in result.resources]


def test_kube_system_gets_the_separate_token_only() -> None:
    result = run_program(
        "production",
        overrides=HETZNER,
        secrets={"hcloud:token": PULUMI_TOKEN, "ladder:cluster.hcloudToken": CCM_TOKEN},
    )
    assert result.error is None, result.error
    secret = result.one("kubernetes:core/v1:Secret", "shop-hcloud-secret")
    assert unwrap(secret.inputs["stringData"])["token"] == CCM_TOKEN
    on_cluster = [r for r in result.resources if r.type.startswith("kubernetes:")]
    assert PULUMI_TOKEN not in str([unwrap(r.inputs) for r in on_cluster])


def test_missing_token_names_the_key_before_any_resource() -> None:
    error, resources = _run({"hcloud:token": PULUMI_TOKEN})
    assert isinstance(error, pulumi.RunError) and "ladder:cluster.hcloudToken" in str(error)
    assert resources == []


def test_pulumis_own_token_is_refused() -> None:
    error, resources = _run({"hcloud:token": PULUMI_TOKEN, "ladder:cluster.hcloudToken": PULUMI_TOKEN})
    assert isinstance(error, pulumi.RunError) and "ladder:cluster.hcloudToken" in str(error)
    assert PULUMI_TOKEN not in str(error) and resources == []


def test_a_plain_token_is_refused() -> None:
    overrides = {**HETZNER, "ladder:cluster": {**HETZNER["ladder:cluster"], "hcloudToken": CCM_TOKEN}}
    result = run_program("production", overrides=overrides, with_placeholders=False)
    assert isinstance(result.error, pulumi.RunError) and "--secret" in str(result.error)
    assert CCM_TOKEN not in str(result.error) and result.resources == []
