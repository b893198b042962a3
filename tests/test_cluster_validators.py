"""The cluster rung's manifests against the real offline validators: kubernetes-validate and checkov."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from components import versions
from tests.cluster_helpers import production
from tools.harness import ProgramResult
from tools.manifests import manifests_from
from tools.plan import write_build

# checkov checks skipped for the cluster rung, each for a reason:
CHECKOV_SKIPS = {
    # Image tags are validated and pinned (never `latest`, see settings._image); a digest
    # is accepted too (`image: repo:tag@sha256:...`) but not required of every app.
    "CKV_K8S_43",
    # Twelve-factor apps read DATABASE_URL/REDIS_URL/secretEnv from the environment; the
    # Secret lives in the tenant's namespace, readable by no ServiceAccount.
    "CKV_K8S_35",
    # Liveness/readiness: every service with a `port` gets HTTP startup/readiness/liveness
    # probes on `health`, a worker the exec liveness probe its `liveness` names
    # (tests/test_cluster_tenants.py); a worker serves no traffic, so it has no readiness,
    # and the release Job none of either.
    "CKV_K8S_8",
    "CKV_K8S_9",
}

VARIANTS = ["doks", "three", "managed", "backups", "existing3", "monitoring", "k3s", "registry", "extras"]


def _write(result: ProgramResult, out: Path) -> Path:
    write_build(result, out)
    return out / "manifests"


def _minor(result: ProgramResult) -> str:
    version = (result.config.get("ladder:cluster") or {}).get("version", versions.DEFAULT_KUBERNETES_MINOR)
    return f"{version}.0"


def test_manifests_are_plain_yaml_without_secrets(tmp_path: Path) -> None:
    out = _write(production("doks"), tmp_path / "build")
    text = "\n".join(p.read_text() for p in sorted(out.glob("*.yaml")))
    assert "mock-" not in text and "plan-placeholder-secret" not in text
    assert len(manifests_from(production("doks"))) == len(list(out.glob("*.yaml")))
    for path in out.glob("*.yaml"):
        assert yaml.safe_load(path.read_text())["apiVersion"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_kubernetes_validate_strict(variant: str, tmp_path: Path, kubernetes_validate_bin: str) -> None:
    result = production(variant)
    files = sorted(str(p) for p in _write(result, tmp_path / "build").glob("*.yaml"))
    proc = subprocess.run(
        [kubernetes_validate_bin, "--strict", "-k", _minor(result), "--quiet", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("ERROR")]
    assert not errors, "\n".join(errors)
    # Only the CRDs (ClusterIssuer, CNPG Cluster, ObjectStore, ...) are left unchecked.
    warned = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("WARN")]
    assert all("Couldn't find schema" in line for line in warned), warned
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("variant", ["doks", "three", "managed", "monitoring", "extras"])
def test_checkov(variant: str, tmp_path: Path, checkov_bin: str) -> None:
    out = _write(production(variant), tmp_path / "build")
    proc = subprocess.run(
        [
            checkov_bin,
            "--framework",
            "kubernetes",
            "--skip-download",
            "-d",
            str(out),
            "--compact",
            "--quiet",
            "--skip-check",
            ",".join(sorted(CHECKOV_SKIPS)),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
