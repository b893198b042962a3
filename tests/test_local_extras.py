"""Issue 14 on the local rung: named volumes, accessories as hardened containers, MinIO for buckets."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from components import versions
from components.local.extras import bucket_script
from tests.conftest import check_shell_script
from tests.helpers import MEILI, MONGO, extras_app
from tools.harness import ProgramResult, is_secret, run_program, unwrap

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"


@pytest.fixture(scope="module")
def dev() -> ProgramResult:
    result = run_program(
        "dev",
        overrides={
            "ladder:app": extras_app(),
            "ladder:accessories": {"mongo": copy.deepcopy(MONGO), "search": copy.deepcopy(MEILI)},
            "ladder:buckets": {"media": {"public": True}, "exports": {}},
        },
        secrets={"ladder:secrets.MONGO_INITDB_ROOT_PASSWORD": "mongo-secret-value"},
    )
    assert result.error is None, result.error
    return result


def env_of(result: ProgramResult, name: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in unwrap(result.one(CONTAINER, name).inputs.get("envs") or []))


def test_service_volume_is_a_named_volume(dev: ProgramResult) -> None:
    volumes = {r.inputs["name"] for r in dev.of_type(VOLUME)}
    assert {"shop-dev-api-app-uploads", "shop-dev-mongo-data-db", "shop-dev-search-meili-data"} <= volumes
    api = dev.one(CONTAINER, "app-api").inputs
    assert api["volumes"] == [{"volumeName": "shop-dev-api-app-uploads", "containerPath": "/app/uploads"}]


def test_accessories_are_hardened_internal_containers(dev: ProgramResult) -> None:
    mongo = dev.one(CONTAINER, "accessories-mongo").inputs
    assert mongo["image"] == "mongo:8.0.4" and "ports" not in mongo
    assert mongo["securityOpts"] == ["no-new-privileges:true"]
    assert mongo["capabilities"]["drops"] == ["ALL"] and "SYS_ADMIN" not in mongo["capabilities"]["adds"]
    assert mongo["networksAdvanced"][0]["aliases"] == ["mongo"]
    assert is_secret(mongo["envs"])
    assert env_of(dev, "accessories-mongo")["MONGO_INITDB_ROOT_PASSWORD"] == "mongo-secret-value"
    assert mongo["healthcheck"]["tests"][:2] == ["CMD", "mongosh"]
    assert not is_secret(dev.one(CONTAINER, "accessories-search").inputs["envs"])  # nothing secret in it


def test_services_get_accessory_and_bucket_env(dev: ProgramResult) -> None:
    env = env_of(dev, "app-api")
    assert env["MONGO_HOST"] == "mongo" and env["MONGO_PORT"] == "27017" and env["SEARCH_HOST"] == "search"
    assert env["S3_MEDIA_ENDPOINT"] == "http://minio:9000" and env["S3_MEDIA_BUCKET"] == "media"
    assert env["S3_EXPORTS_BUCKET"] == "exports" and "S3_BUCKET" not in env  # two buckets: prefixed only
    assert env["S3_MEDIA_ACCESS_KEY_ID"] == "ladder" and env["S3_MEDIA_SECRET_ACCESS_KEY"]
    assert is_secret(dev.one(CONTAINER, "app-api").inputs["envs"])


def test_minio_serves_the_buckets(dev: ProgramResult) -> None:
    server = dev.one(CONTAINER, "minio-server").inputs
    assert server["image"] == versions.MINIO_IMAGE and "ports" not in server
    assert server["entrypoints"] == ["minio"] and server["command"][:2] == ["server", "/data"]
    assert server["healthcheck"]["tests"][-1] == "http://127.0.0.1:9000/minio/health/live"
    assert is_secret(server["envs"])
    init = dev.one(CONTAINER, "minio-buckets").inputs
    script = init["command"][0]
    assert "mc mb --ignore-existing ladder/media" in script and "mc anonymous set download ladder/media" in script
    assert "mc anonymous set none ladder/exports" in script
    assert init["mustRun"] is False and init["restart"] == "no"
    # the app starts once the buckets exist
    app_api = dev.one(CONTAINER, "app-api")
    assert dev.one(CONTAINER, "minio-buckets").urn in app_api.dependencies


def test_only_the_proxy_publishes(dev: ProgramResult) -> None:
    published = [r.name for r in dev.of_type(CONTAINER) if r.inputs.get("ports")]
    assert published == ["shop-proxy"]


def test_bucket_script_passes_shellcheck(tmp_path: Path, shellcheck_bin: str) -> None:
    path = tmp_path / "buckets.sh"
    path.write_text(bucket_script({"media": True, "exports": False}))
    check_shell_script(path, shellcheck_bin)


def test_no_minio_without_buckets() -> None:
    result = run_program("dev")
    assert not [r for r in result.of_type(CONTAINER) if "minio" in r.name]
    assert not [r for r in result.resources if r.type == "ladder:index:Buckets"]


def test_policy_pack_flags_only_unprotected_dev_volumes(dev: ProgramResult) -> None:
    from policy import ladder_policies as lp

    flagged = {
        r.type for r in dev.resources if any(lp.evaluate(r.type, unwrap(r.inputs), {"protect": r.protect}).values())
    }
    assert flagged == {VOLUME}
