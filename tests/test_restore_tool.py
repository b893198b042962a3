"""`python -m tools.restore`: rendered restore steps per rung, offline."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import versions
from components.render.backup import RESTORE_SCRIPT_PATH
from tests.helpers import AGE_RECIPIENT
from tools import contracts, restore

BACKUPS = {
    "ladder:backups": {
        "bucket": "shop-backups",
        "endpoint": "https://fra1.digitaloceanspaces.com",
        "ageRecipient": AGE_RECIPIENT,
    }
}


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("tools.restore must never connect or run anything")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)


def _steps(stack: str, overrides: dict[str, Any] | None = None, **kw: Any) -> list[str]:
    return restore.restore_steps(restore.load_stack_settings(stack, overrides), stack, **kw)


def _bash_ok(tmp_path: Path, lines: list[str]) -> None:
    script = tmp_path / "steps.sh"
    script.write_text("\n".join(lines) + "\n")
    # `bash -n` only parses; subprocess is patched to refuse, so spawn it directly
    assert os.spawnlp(os.P_WAIT, "bash", "bash", "-n", str(script)) == 0


def test_local(tmp_path: Path) -> None:
    steps = _steps("dev", source="backup.dump")
    assert any(
        s.startswith("docker exec -i shop-dev-postgres pg_restore --clean") and "< backup.dump" in s for s in steps
    )
    _bash_ok(tmp_path, steps)


def test_vps_latest_and_named(tmp_path: Path) -> None:
    latest = _steps("staging", BACKUPS)
    assert f"ssh admin@$HOST sudo {RESTORE_SCRIPT_PATH} --fetch latest > backup.dump.gz.age" in latest
    assert any("at most 6h" in s for s in latest)
    named = _steps("staging", BACKUPS, source="20261123T060000Z.dump.gz.age")
    fetch = f"ssh admin@$HOST sudo {RESTORE_SCRIPT_PATH} --fetch 20261123T060000Z.dump.gz.age > backup.dump.gz.age"
    assert fetch in named
    _bash_ok(tmp_path, named)


def test_vps_restore_decrypts_on_the_operators_machine() -> None:
    """The dumps are encrypted to the operator's key: the printed steps decrypt locally with
    `age -d -i` and only the plain dump goes back to the server, never the private key."""
    steps = [s for s in _steps("staging", BACKUPS) if not s.startswith("#")]
    decrypt = [s for s in steps if s.startswith("age -d -i ")]
    assert len(decrypt) == 1, steps
    local, _, remote = decrypt[0].partition(" | ")
    assert "LADDER_AGE_KEY" in local and remote == f"ssh admin@$HOST sudo {RESTORE_SCRIPT_PATH} --stdin"
    # no step sends the key file anywhere (scp, ssh with the key on stdin, a heredoc)
    assert not any("LADDER_AGE_KEY" in s and s is not decrypt[0] for s in steps)


def test_vps_without_backups_says_so() -> None:
    steps = _steps("staging")
    assert "no ladder:backups configured" in steps[1]
    assert not any("ladder-restore" in s for s in steps)


def test_cluster_cnpg(tmp_path: Path) -> None:
    steps = _steps("production", BACKUPS, at="2026-11-23T06:00:00Z")
    text = "\n".join(steps)
    start, end = steps.index("cat > postgres-restore.yaml <<'YAML'"), steps.index("YAML")
    manifest = yaml.safe_load("\n".join(steps[start + 1 : end]))
    assert manifest["kind"] == "Cluster"
    spec = manifest["spec"]
    assert spec["bootstrap"]["recovery"]["recoveryTarget"] == {"targetTime": "2026-11-23T06:00:00Z"}
    assert spec["externalClusters"][0]["plugin"]["parameters"]["serverName"] == "postgres"
    assert "kubectl --kubeconfig kubeconfig-production -n shop apply -f postgres-restore.yaml" in text
    assert "pg_restore --clean --if-exists" in text
    _bash_ok(tmp_path, steps)
    # the backup's major, not the operator's default (newest) image
    assert spec["imageName"] == versions.CNPG_POSTGRES_IMAGES["17"]
    # the live cluster's resources, not the LimitRange's 128Mi default
    assert spec["resources"]["requests"]["memory"] == "512Mi"
    # the tenant's labels; admitted by the tenant's NetworkPolicies (tests/test_cluster_models.py)
    assert manifest["metadata"]["labels"]["app.kubernetes.io/instance"] == "shop"
    # the app's role owns what is restored
    (copy,) = [s for s in steps if "pg_dump" in s and "pg_restore" in s]  # the recovery Cluster's copy
    assert "--no-owner" in copy and "--role=shop" in copy  # ladder:app.name -> database and owner
    # the same CRD contract as the program's Cluster
    index = contracts.crd_index([contracts.contract("cloudnative-pg", versions.CLOUDNATIVE_PG_CHART.version)])
    assert contracts.custom_resource_errors(index, manifest) == []


def test_cluster_cnpg_restores_the_stacks_major(tmp_path: Path) -> None:
    steps = _steps("production", {**BACKUPS, "ladder:postgres": {"mode": "operator", "version": "18", "instances": 2}})
    start, end = steps.index("cat > postgres-restore.yaml <<'YAML'"), steps.index("YAML")
    manifest = yaml.safe_load("\n".join(steps[start + 1 : end]))
    assert manifest["spec"]["imageName"] == versions.CNPG_POSTGRES_IMAGES["18"]


def test_cluster_managed() -> None:
    steps = _steps("production", {"ladder:postgres": {"mode": "managed", "version": "17", "size": "db-s-1vcpu-1gb"}})
    assert any(s.startswith("doctl databases create shop-production-restore") for s in steps)


def test_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert restore.main(["dev", "--from", "x.dump"]) == 0
    assert "pg_restore" in capsys.readouterr().out
    assert restore.main(["nope"]) == 2
