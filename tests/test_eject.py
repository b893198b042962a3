"""`make eject`: standalone files that the real tools accept, with no secret in them."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import versions
from tests.conftest import check_shell_script
from tests.test_images import BUILD, FIXTURE, SECRET_REGISTRIES, TOKEN
from tools.eject import eject
from tools.harness import PLACEHOLDER

BUILT = {
    "ladder:app.defaultRepo": "ghcr.io/acme",
    "ladder:app.services.web": {
        "build": BUILD,
        "port": 8080,
        "path": "/",
        "dev": {"mounts": [{"source": f"{FIXTURE}/src", "target": "/app", "readOnly": True}]},
    },
    "ladder:app.services.worker": {"build": BUILD, "command": ["python", "-c", "print('$HOME')"]},
    "ladder:app.secretEnv": ["STRIPE_KEY"],
    "ladder:secrets.STRIPE_KEY": "sk_live_should_never_appear",
    # The app above is the whole app of every stack: drop the stack's own patch (production's).
    "ladder:appOverrides": None,
}


def _write(files: dict[str, str], out: Path) -> None:
    for rel, content in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def _no_secrets(files: dict[str, str]) -> None:
    for rel, content in files.items():
        for secret in (TOKEN, PLACEHOLDER, "sk_live_should_never_appear", "mock-"):
            assert secret not in content, (rel, secret)


def _compose_config(compose_bin: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([compose_bin, "config", "-q"], cwd=out, capture_output=True, text=True, check=False)


def _fill_examples(out: Path, files: dict[str, str]) -> None:
    for name in files:
        if name.endswith(".example"):
            lines = [line + ("x1" if line.endswith("=") else "") for line in files[name].splitlines()]
            (out / name.removesuffix(".example")).write_text("\n".join(lines) + "\n")


def test_local_eject_runs_with_compose_once_env_is_filled(tmp_path: Path, compose_bin: str) -> None:
    out = tmp_path / "eject"
    files = eject("dev", out, overrides=BUILT, secrets=SECRET_REGISTRIES)
    _no_secrets(files)
    _write(files, out)
    # Without the values Compose refuses to start (no empty passwords).
    refused = _compose_config(compose_bin, out)
    # (Compose names whichever missing value it meets first.)
    assert refused.returncode != 0
    assert any(
        f"set {name} in .env" in refused.stderr for name in ("POSTGRES_PASSWORD", "VALKEY_PASSWORD", "STRIPE_KEY")
    )
    _fill_examples(out, files)
    proc = _compose_config(compose_bin, out)
    assert proc.returncode == 0, proc.stderr
    assert files[".env.example"].splitlines()[-3:] == ["POSTGRES_PASSWORD=", "VALKEY_PASSWORD=", "STRIPE_KEY="]

    doc: dict[str, Any] = yaml.safe_load(files["compose.yaml"])
    web, worker = doc["services"]["web"], doc["services"]["worker"]
    # One build, shared by the worker under the same tag.
    build = web["build"]
    assert (build["dockerfile"], build["target"], build["args"]) == ("Dockerfile", "app", BUILD["args"])
    assert (out / build["context"]).resolve() == (Path(__file__).parent.parent / FIXTURE).resolve()
    assert "build" not in worker and worker["image"] == web["image"]
    assert worker["command"] == ["python", "-c", "print('$$HOME')"]
    (mount,) = web["volumes"]
    assert (
        mount["read_only"] is True
        and (out / mount["source"]).resolve() == (Path(__file__).parent.parent / FIXTURE / "src").resolve()
    )
    assert doc["services"]["proxy"]["ports"] == ["127.0.0.1:8080:8080"]
    assert doc["services"]["web"]["environment"]["STRIPE_KEY"].startswith("${STRIPE_KEY:?")


def test_local_eject_publishes_stores_on_loopback_only(tmp_path: Path) -> None:
    files = eject("dev", tmp_path, overrides={"ladder:postgres.publishPort": 15432, "ladder:redis.publishPort": 16379})
    doc = yaml.safe_load(files["compose.yaml"])
    assert doc["services"]["postgres"]["ports"] == ["127.0.0.1:15432:5432"]
    assert doc["services"]["redis"]["ports"] == ["127.0.0.1:16379:6379"]
    published = [name for name, svc in doc["services"].items() if "ports" in svc]
    assert sorted(published) == ["postgres", "proxy", "redis"]


def test_vps_eject_is_the_rungs_compose_made_standalone(tmp_path: Path, compose_bin: str) -> None:
    out = tmp_path / "eject"
    # `build` is refused on the vps rung until it deploys by digest there: eject its prebuilt images.
    files = eject("staging", out)
    _no_secrets(files)
    _write(files, out)
    _fill_examples(out, files)
    proc = _compose_config(compose_bin, out)
    assert proc.returncode == 0, proc.stderr
    doc = yaml.safe_load(files["compose.yaml"])
    assert doc["services"]["proxy"]["image"] == versions.CADDY_IMAGE
    assert "SESSION_SECRET=" in files["app.env.example"] and "caddy/Caddyfile" in files


def test_cluster_eject_manifests_validate_and_install_script_passes_shellcheck(
    tmp_path: Path, kubernetes_validate_bin: str, shellcheck_bin: str
) -> None:
    out = tmp_path / "eject"
    files = eject("production", out, overrides=BUILT, secrets=SECRET_REGISTRIES)
    _no_secrets(files)
    _write(files, out)
    check_shell_script(out / "install.sh", shellcheck_bin)
    manifests = sorted(str(p) for p in (out / "manifests").glob("*.yaml"))
    examples = sorted(out.glob("secrets/*.example"))
    for example in examples:
        (example.parent / example.name.removesuffix(".example")).write_text(example.read_text())
    secrets = sorted(str(p) for p in (out / "secrets").glob("*.yaml"))
    proc = subprocess.run(
        [
            kubernetes_validate_bin,
            "--strict",
            "-k",
            f"{versions.DEFAULT_KUBERNETES_MINOR}.0",
            "--quiet",
            *manifests,
            *secrets,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("ERROR")]
    assert not errors, "\n".join(errors)
    # The pull secret is there, as an example with an empty payload.
    pull = [yaml.safe_load(p.read_text()) for p in examples if "registry-credentials" in p.name]
    assert pull and pull[0]["type"] == "kubernetes.io/dockerconfigjson"
    assert pull[0]["stringData"] == {".dockerconfigjson": ""}
    # Every pod template in the manifests pulls with it.
    for path in manifests:
        body = yaml.safe_load(Path(path).read_text())
        template = (body.get("spec") or {}).get("template")
        if isinstance(template, dict):
            assert template["spec"]["imagePullSecrets"] == [{"name": "registry-credentials"}], path
    (build,) = [line for line in files["install.sh"].splitlines() if line.startswith("docker buildx build")]
    assert "--push --tag ghcr.io/acme/shop-web:production-" in build and "--target app" in build
    helm_lines = [line for line in files["install.sh"].splitlines() if line.startswith("helm upgrade --install")]
    assert len(helm_lines) == len([f for f in files if f.startswith("helm/")])


@pytest.mark.parametrize("stack", ["dev", "staging", "production"])
def test_every_stack_ejects(stack: str, tmp_path: Path) -> None:
    files = eject(stack, tmp_path)
    _no_secrets(files)
    assert "compose.yaml" in files or "install.sh" in files


def test_local_eject_refuses_what_its_compose_file_leaves_out(tmp_path: Path) -> None:
    from tests.helpers import MEILI

    extras = {"ladder:accessories": {"search": MEILI}, "ladder:buckets": {"media": {}}}
    with pytest.raises(SystemExit) as err:
        eject("dev", tmp_path, overrides=extras)
    assert "ladder:accessories, ladder:buckets" in str(err.value)
    assert eject("dev", tmp_path)  # and without them it ejects


def test_vps_eject_refuses_the_extras_it_leaves_out(tmp_path: Path) -> None:
    """The vps rung deploys them; its standalone files do not carry their env files, timers and backups."""
    from tests.helpers import MEILI

    jobs = {"nightly": {"service": "api", "command": ["node", "x.js"], "schedule": "0 3 * * *"}}
    extras = {"ladder:accessories": {"search": MEILI}, "ladder:app.jobs": jobs}
    with pytest.raises(SystemExit) as err:
        eject("staging", tmp_path, overrides=extras)
    assert "ladder:accessories, ladder:app.jobs" in str(err.value)
