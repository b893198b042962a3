"""k3s node rendering: config, installer, kubeconfig and firewall, as plain data."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import yaml

from components import versions
from components.render import k3s
from tests.conftest import check_shell_script

VERSION = "v1.34.2+k3s1"


def server(**kw: object) -> k3s.K3sNode:
    args: dict[str, object] = {
        "role": "server",
        "version": VERSION,
        "private_subnet": "10.0.1.0/24",
        "token": "tok-123",
        "tls_sans": ("203.0.113.5",),
    }
    args.update(kw)
    return k3s.K3sNode(**args)  # type: ignore[arg-type]


def test_first_server_initialises_etcd_only_when_ha() -> None:
    assert yaml.safe_load(k3s.node_config(server(ha=True)))["cluster-init"] is True
    assert "cluster-init" not in yaml.safe_load(k3s.node_config(server()))
    joining = yaml.safe_load(k3s.node_config(server(ha=True, server_url="https://10.0.1.2:6443")))
    assert "cluster-init" not in joining and joining["server"] == "https://10.0.1.2:6443"


def test_server_disables_bundled_ingress_and_uses_external_cloud_provider() -> None:
    config = yaml.safe_load(k3s.node_config(server()))
    assert config["disable"] == ["traefik", "servicelb", "local-storage"]
    assert config["disable-cloud-controller"] is True
    assert "cloud-provider=external" in config["kubelet-arg"]
    assert config["tls-san"] == ["203.0.113.5"]
    assert config["write-kubeconfig-mode"] == "0600"
    assert config["secrets-encryption"] is True


def test_agent_joins_with_token_and_no_server_options() -> None:
    agent = k3s.K3sNode("agent", VERSION, "10.0.1.0/24", "tok-123", server_url="https://10.0.1.2:6443")
    config = yaml.safe_load(k3s.node_config(agent))
    assert (config["token"], config["server"]) == ("tok-123", "https://10.0.1.2:6443")
    assert "disable" not in config and "tls-san" not in config


def test_install_script_is_pinned_idempotent_and_carries_no_token(tmp_path: Path, shellcheck_bin: str) -> None:
    script = k3s.install_script(server())
    assert "tok-123" not in script
    assert f"INSTALL_K3S_VERSION={VERSION}" in script
    assert f"k3s-io/k3s/{versions.K3S_INSTALL_SCRIPT_COMMIT}/install.sh" in script
    # the download is checked before it runs
    lines = [ln.strip() for ln in script.splitlines()]
    fetched = lines.index(f"curl -fsSL --retry 5 -o /tmp/k3s-install.sh {k3s.installer_url()}")
    assert lines[fetched + 1].startswith(
        f"echo '{versions.K3S_INSTALL_SCRIPT_SHA256}  /tmp/k3s-install.sh' | sha256sum"
    )
    assert lines.index("sh /tmp/k3s-install.sh") > fetched + 1
    assert "10\\.0\\.1\\." in script
    assert "curl -fsSL" in script and not re.search(r"\|\s*sh(\s|$)", script, re.M)  # never curl | sh
    path = tmp_path / "install.sh"
    path.write_text(script)
    check_shell_script(path, shellcheck_bin)


def test_installer_check_runs_the_script_only_when_its_sha256_matches(tmp_path: Path) -> None:
    script = tmp_path / "install.sh"
    script.write_text("echo installed\n")
    good = hashlib.sha256(script.read_bytes()).hexdigest()
    probe = f"set -e\n{k3s.installer_check(str(script), good)}\nsh {script}\n"
    ran = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=False)
    assert (ran.returncode, ran.stdout) == (0, "installed\n")
    script.write_text("echo tampered\n")
    ran = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=False)
    assert ran.returncode == 1 and "tampered" not in ran.stdout and "does not match" in ran.stderr
    assert not script.exists()


def test_kubeconfig_points_at_the_public_address() -> None:
    raw = yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "default", "cluster": {"server": "https://127.0.0.1:6443"}}],
            "users": [{"name": "default", "user": {"client-key-data": "K"}}],
            "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}],
            "current-context": "default",
        }
    )
    doc = yaml.safe_load(k3s.rewrite_kubeconfig(raw, "203.0.113.5", "shop-prod"))
    assert doc["clusters"][0]["cluster"]["server"] == "https://203.0.113.5:6443"
    assert doc["current-context"] == "shop-prod"
    assert doc["contexts"][0]["context"] == {"cluster": "shop-prod", "user": "shop-prod"}
    assert doc["users"][0]["user"] == {"client-key-data": "K"}


def test_firewall_opens_only_ssh_and_api_to_the_allowlist() -> None:
    rules = k3s.firewall_rules(["203.0.113.7/32"])
    assert {(r.port, r.protocol, r.sources) for r in rules} == {
        ("22", "tcp", ("203.0.113.7/32",)),
        ("6443", "tcp", ("203.0.113.7/32",)),
    }


def test_hetzner_storage_retains_volumes_and_lbs_use_private_network() -> None:
    from components.render import hcloud_k8s

    (storage_class,) = hcloud_k8s.csi_values()["storageClasses"]
    assert storage_class["reclaimPolicy"] == "Retain" and storage_class["defaultStorageClass"] is True
    env = hcloud_k8s.ccm_values("nbg1")["env"]
    assert env["HCLOUD_LOAD_BALANCERS_USE_PRIVATE_IP"] == {"value": "true"}
    assert env["HCLOUD_LOAD_BALANCERS_LOCATION"] == {"value": "nbg1"}
