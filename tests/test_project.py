"""Project files: Pulumi.yaml's config schema, the stack files, the offline plan."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.settings import TOP_LEVEL_KEYS
from tools.harness import ROOT, STACKS, PlainMocks, run_program
from tools.plan import main as plan_main

# What Pulumi's project schema (sdk/go/common/workspace/project.json) allows for a config type.
SIMPLE_TYPES = {"string", "integer", "boolean", "array"}


def test_pulumi_yaml_declares_valid_config_types() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "ladder"
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == "venv"
    for key, decl in project["config"].items():
        assert key in TOP_LEVEL_KEYS, key
        # Typed keys; the structured app is untyped and carries its `value` instead.
        assert decl["description"] and (decl.get("type") in SIMPLE_TYPES or "value" in decl), key


def test_stack_files_use_only_known_keys() -> None:
    for stack in STACKS:
        config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        for key in config:
            namespace, _, name = key.partition(":")
            assert namespace in ("ladder", "hcloud", "digitalocean", "kubernetes"), key
            if namespace == "ladder":
                assert name in TOP_LEVEL_KEYS, key


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_evaluates(stack: str) -> None:
    result = run_program(stack)
    assert result.error is None, result.error
    assert {"url", "phase", "provider", "monthlyCost"} <= set(result.outputs)
    assert result.outputs["url"].startswith(("http://localhost", "https://"))


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_evaluates_under_the_plainest_mock(stack: str) -> None:
    result = run_program(stack, mocks=PlainMocks())
    assert result.error is None, result.error


def test_plan_writes_build_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert plan_main(["dev", "--out", str(tmp_path / "dev")]) == 0
    out = capsys.readouterr().out
    assert "LocalStack" in out and "127.0.0.1" in out and "total" in out
    assert (tmp_path / "dev" / "Caddyfile").read_text().startswith("{")
    assert (tmp_path / "dev" / "plan.json").exists()


def test_plan_rejects_bad_config_with_the_key_path(tmp_path: Path) -> None:
    stack = "broken"
    stack_file = ROOT / f"Pulumi.{stack}.yaml"
    stack_file.write_text(
        "config:\n  ladder:phase: vps\n"
        "  ladder:app: {name: shop, services: {web: {image: 'ghcr.io/acme/web:1.0.0', port: 3000}}}\n"
    )
    try:
        run = subprocess.run(
            [sys.executable, "-m", "tools.plan", stack, "--out", str(tmp_path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    finally:
        stack_file.unlink()
    assert run.returncode == 1
    assert "ladder:provider: required for phase vps" in run.stdout and "Traceback" not in run.stdout + run.stderr


@pytest.mark.parametrize(
    ("stack", "overrides", "expected"),
    [
        ("dev", {}, ["pulumi_docker", "pulumi_random"]),
        ("staging", {}, ["pulumi_command", "pulumi_hcloud", "pulumi_random", "pulumi_tls"]),
        ("production", {}, ["pulumi_digitalocean", "pulumi_kubernetes", "pulumi_random"]),
    ],
)
def test_a_rung_imports_only_the_sdks_it_uses(stack: str, overrides: dict[str, object], expected: list[str]) -> None:
    code = (
        "import json, sys; from tools.harness import run_program; "
        f"r = run_program({stack!r}, overrides={overrides!r}); assert r.error is None, r.error; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules if m.startswith('pulumi_')})))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == expected
