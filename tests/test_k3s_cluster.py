"""k3s on Hetzner: the cluster rung without a managed Kubernetes bill (issue 6)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.render.sudo import AS_ROOT
from tests.cluster_helpers import HETZNER
from tests.helpers import SSH_KEY
from tools.harness import PlainMocks, ProgramResult, Registration, is_secret, run_program, unwrap

SERVER = "hcloud:index/server:Server"
COMMAND = "command:remote:Command"


def hetzner(ha: bool = False, extra: dict[str, Any] | None = None) -> ProgramResult:
    overrides = {**HETZNER, **(extra or {})}
    overrides["ladder:cluster"] = {**HETZNER["ladder:cluster"], "haControlPlane": ha}
    result = run_program("production", overrides=overrides)
    assert result.error is None, result.error
    return result


@pytest.fixture(scope="module")
def single() -> ProgramResult:
    return hetzner()


@pytest.fixture(scope="module")
def ha() -> ProgramResult:
    return hetzner(ha=True)


def servers(result: ProgramResult, role: str) -> list[Registration]:
    return [r for r in result.of_type(SERVER) if r.inputs["labels"]["role"] == role]


def test_control_planes_and_agents(single: ProgramResult, ha: ProgramResult) -> None:
    assert len(servers(single, "cp")) == 1 and len(servers(ha, "cp")) == 3
    assert len(servers(single, "agent")) == 2
    assert {s.inputs["serverType"] for s in servers(single, "agent")} == {"cx33"}
    for srv in single.of_type(SERVER):
        assert srv.inputs["image"] == "ubuntu-24.04"
        assert srv.inputs["networks"][0]["ip"].startswith("10.0.1.")
        assert srv.ignore_changes == ["sshKeys"] and srv.delete_before_replace


def written_config(script: str) -> str:
    """The node config inside the config-writing script (its one quoted heredoc)."""
    _, body = script.split("<<'", 1)
    marker, rest = body.split("'\n", 1)
    return rest.split("\n" + marker + "\n", 1)[0]


def test_ha_uses_embedded_etcd_and_joins_over_the_private_network(ha: ProgramResult) -> None:
    configs = {
        r.name: yaml.safe_load(written_config(unwrap(r.inputs["stdin"])))
        for r in ha.of_type(COMMAND)
        if r.name.endswith("-config")
    }
    first = next(c for n, c in configs.items() if "-cp-0-" in n)
    assert first["cluster-init"] is True and "server" not in first
    joiners = [c for n, c in configs.items() if "-cp-0-" not in n]
    assert len(joiners) == 4
    assert all(c["server"] == "https://10.0.1.10:6443" for c in joiners)
    assert first["disable"] == ["traefik", "servicelb", "local-storage"]


def test_control_planes_are_protected_and_agents_are_not(single: ProgramResult) -> None:
    (cp,) = servers(single, "cp")
    assert cp.protect and cp.inputs["deleteProtection"] and cp.inputs["rebuildProtection"]
    assert not any(a.protect for a in servers(single, "agent"))
    assert single.one("hcloud:index/primaryIp:PrimaryIp").protect


def test_firewall_opens_only_ssh_and_api_to_the_allowlist(single: ProgramResult) -> None:
    rules = single.one("hcloud:index/firewall:Firewall").inputs["rules"]
    assert {(r["direction"], r["protocol"], r["port"], tuple(r["sourceIps"])) for r in rules} == {
        ("in", "tcp", "22", ("203.0.113.7/32",)),
        ("in", "tcp", "6443", ("203.0.113.7/32",)),
    }
    for srv in single.of_type(SERVER):
        assert len(srv.inputs["firewallIds"]) == 1


def test_token_and_kubeconfig_stay_secret(single: ProgramResult) -> None:
    token = unwrap(single.one("random:index/randomPassword:RandomPassword", "shop-k3s-token").inputs)
    assert token  # the password resource exists; its mock result is below
    mock_token = "mock-shop-k3s-token-Zx81"
    for srv in single.of_type(SERVER):
        assert mock_token not in str(unwrap(srv.inputs["userData"]))
    for cmd in single.of_type(COMMAND):
        if mock_token in str(unwrap(cmd.inputs.get("stdin"))):
            assert is_secret(cmd.inputs["stdin"]), cmd.name
        assert mock_token not in str(cmd.inputs.get("create"))
    fetch = single.one(COMMAND, "shop-kubeconfig")
    assert fetch.inputs["create"] == AS_ROOT and fetch.inputs["stdin"] == "cat /etc/rancher/k3s/k3s.yaml\n"
    assert "kubeconfig" in single.secret_outputs
    assert mock_token not in str({k: v for k, v in single.outputs.items() if k != "kubeconfig"})
    provider = single.one("pulumi:providers:kubernetes")
    assert is_secret(provider.inputs["kubeconfig"])
    hcloud_secret = single.one("kubernetes:core/v1:Secret", "shop-hcloud-secret")
    assert is_secret(hcloud_secret.inputs["stringData"]) or is_secret(hcloud_secret.inputs["stringData"]["token"])


def test_ccm_and_csi_come_before_the_platform(single: ProgramResult) -> None:
    releases = {r.name: r for r in single.of_type("kubernetes:helm.sh/v3:Release")}
    ccm, csi = releases["shop-hcloud-ccm"], releases["shop-hcloud-csi"]
    assert (ccm.inputs["chart"], csi.inputs["chart"]) == ("hcloud-cloud-controller-manager", "hcloud-csi")
    secret = single.one("kubernetes:core/v1:Secret", "shop-hcloud-secret")
    assert secret.urn in ccm.dependencies and secret.urn in csi.dependencies
    for name, release in releases.items():
        if not name.startswith("shop-hcloud"):
            assert ccm.urn in release.dependencies and csi.urn in release.dependencies, name


def test_node_user_data_is_valid_cloud_init(single: ProgramResult, cloud_init_bin: str, tmp_path: Path) -> None:
    from tests.test_cloud_init_keys import assert_known_top_level_keys

    user_data = unwrap(servers(single, "cp")[0].inputs["userData"])
    assert user_data.startswith("#cloud-config\n")
    assert_known_top_level_keys(yaml.safe_load(user_data))
    path = tmp_path / "user-data.yaml"
    path.write_text(user_data)
    run = subprocess.run([cloud_init_bin, "schema", "--config-file", str(path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def _above_cluster(result: ProgramResult) -> dict[tuple[str, str], Any]:
    """Platform, tenant and data resources: everything not made by the cluster's creation."""
    skip = ("hcloud:", "digitalocean:", "command:", "tls:", "pulumi:providers:")
    return {
        (r.type, r.name): unwrap(r.inputs)
        for r in result.resources
        if not r.type.startswith(skip) and not r.name.startswith(("shop-hcloud", "shop-k3s", "shop-admin"))
    }


def test_platform_and_apps_are_identical_to_doks() -> None:
    tenants = [{"name": f"t{i}", "domain": f"t{i}.example.com"} for i in range(3)]
    doks = run_program("production", overrides={"ladder:tenants": tenants})
    k3s_run = hetzner(extra={"ladder:tenants": tenants})
    assert doks.error is None, doks.error
    a, b = _above_cluster(doks), _above_cluster(k3s_run)
    # DOKS ships no metrics-server, so the rung installs one there; k3s bundles its own.
    assert set(a) - set(b) == {("kubernetes:helm.sh/v3:Release", "metrics-server")}
    assert set(b) <= set(a)
    differing = sorted(key for key in b if a[key] != b[key])
    # Only the ingress release's values may differ: DOKS names its load balancer via a
    # Service annotation, Hetzner's CCM takes the location from its own settings.
    assert differing in ([], [("kubernetes:helm.sh/v3:Release", "ingress-traefik")]), differing


def test_plainest_mock(single: ProgramResult) -> None:
    result = run_program("production", overrides=HETZNER, mocks=PlainMocks())
    assert result.error is None, result.error
    assert result.outputs["provider"] == "hetzner"


def test_cost_covers_servers_ips_and_load_balancer(single: ProgramResult, ha: ProgramResult) -> None:
    cost = single.outputs["monthlyCost"]
    names = " ".join(i["name"] for i in cost["items"])
    assert cost["currency"] == "EUR"
    assert "control plane" in names and "agent" in names and "load balancer" in names and "IPv4" in names
    assert ha.outputs["monthlyCost"]["total"] > cost["total"]


def test_later_ssh_keys_roll_out_to_every_node_before_k3s_installs(single: ProgramResult) -> None:
    rollouts = [c for c in single.of_type(COMMAND) if c.name.endswith("-ssh-keys")]
    assert len(rollouts) == 3  # one control plane, two agents
    # every root script (rollout, config, install, kubeconfig) goes on stdin to ladder-apply
    assert all(c.inputs["create"] == AS_ROOT for c in single.of_type(COMMAND))
    for rollout in rollouts:
        keys = unwrap(rollout.inputs["stdin"])
        assert SSH_KEY in keys and "ladder" in keys  # the users' keys and the deploy key
        config = single.one(COMMAND, rollout.name.replace("-ssh-keys", "-config"))
        assert rollout.urn in config.dependencies


def test_node_user_data_holds_neither_user_keys_nor_the_allowlist(single: ProgramResult) -> None:
    for srv in single.of_type(SERVER):
        data = str(unwrap(srv.inputs["userData"]))
        assert SSH_KEY not in data and "203.0.113.7" not in data
    access = unwrap(single.one(COMMAND, "shop-cp-0-ssh-keys").inputs["stdin"])
    assert SSH_KEY in access and "203.0.113.7" in access and "22 6443" in access
