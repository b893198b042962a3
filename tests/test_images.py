"""Private registries and images built from source: config, plans, and what each rung registers."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components import images
from components.settings import ConfigError, parse_settings
from tests.helpers import cluster_config, local_config, vps_config
from tools.harness import ROOT, LadderMocks, ProgramResult, is_secret, run_program, unwrap

FIXTURE = "tests/fixtures/build"
IMAGE = "docker-build:index:Image"
CONTAINER = "docker:index/container:Container"
TOKEN = "ghp_TopSecretToken123"
REGISTRIES = [{"server": "ghcr.io", "username": "acme-bot", "password": TOKEN}]
SECRET_REGISTRIES = {"ladder:registries": REGISTRIES}
BUILD = {"context": FIXTURE, "target": "app", "args": {"BASE": "docker.io/library/python:3.13-slim"}}
DIGEST = "sha256:" + "ab" * 32


def built_app(base: dict[str, Any], **services: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    out["app"]["defaultRepo"] = "ghcr.io/acme"
    out["app"]["services"] = {"web": {"build": BUILD, "port": 8000}, **services}
    return out


def problems(raw: dict[str, Any], secret: bool = True) -> dict[str, str]:
    with pytest.raises(ConfigError) as err:
        parse_settings(raw, ["ladder:registries"] if secret else [], project_dir=ROOT)
    return dict(err.value.problems)


def _repo(repo: str | None) -> dict[str, Any]:
    raw = built_app(cluster_config(registries=REGISTRIES))
    if repo is None:
        raw["app"].pop("defaultRepo")
    else:
        raw["app"]["defaultRepo"] = repo
    return raw


# ---------------------------------------------------------------------------------------
# config


def test_a_build_config_resolves() -> None:
    s = parse_settings(built_app(cluster_config(registries=REGISTRIES)), ["ladder:registries"], project_dir=ROOT)
    web = s.app.services["web"]
    assert web.image is None and web.build is not None
    assert web.build.dockerfile_path == f"{FIXTURE}/Dockerfile"
    assert s.registry_for("ghcr.io") is not None


@pytest.mark.parametrize(
    ("case", "raw", "key"),
    [
        (
            "image and build",
            built_app(local_config(), web={"build": BUILD, "image": "ghcr.io/a/b:1", "port": 1}),
            "ladder:app.services.web.image",
        ),
        ("neither image nor build", built_app(local_config(), web={"port": 1}), "ladder:app.services.web.image"),
        (
            "missing context",
            built_app(local_config(), web={"build": {"context": "no/such/dir"}, "port": 1}),
            "ladder:app.services.web.build.context",
        ),
        (
            "missing dockerfile",
            built_app(local_config(), web={"build": {"context": FIXTURE, "dockerfile": "Nope"}, "port": 1}),
            "ladder:app.services.web.build.dockerfile",
        ),
        (
            "absolute context",
            built_app(local_config(), web={"build": {"context": "/etc"}, "port": 1}),
            "ladder:app.services.web.build.context",
        ),
        (
            "bad build arg name",
            built_app(local_config(), web={"build": {"context": FIXTURE, "args": {"A-B": "x"}}, "port": 1}),
            "ladder:app.services.web.build.args",
        ),
        (
            "build arg with a newline",
            built_app(local_config(), web={"build": {"context": FIXTURE, "args": {"A": "x\ny"}}, "port": 1}),
            "ladder:app.services.web.build.args.A",
        ),
        (
            "unknown platform",
            built_app(local_config(), web={"build": {"context": FIXTURE, "platform": "linux/m68k"}, "port": 1}),
            "ladder:app.services.web.build.platform",
        ),
        (
            "bad target",
            built_app(local_config(), web={"build": {"context": FIXTURE, "target": "a b"}, "port": 1}),
            "ladder:app.services.web.build.target",
        ),
        (
            "unknown build key",
            built_app(local_config(), web={"build": {"context": FIXTURE, "file": "x"}, "port": 1}),
            "ladder:app.services.web.build.file",
        ),
        ("build on vps without a repo", _repo(None), "ladder:app.defaultRepo"),
        ("build on cluster without credentials", built_app(cluster_config()), "ladder:registries"),
        ("bad repo", _repo("https://ghcr.io/Acme"), "ladder:app.defaultRepo"),
        (
            "dev mount source missing",
            built_app(
                local_config(),
                web={"build": BUILD, "port": 1, "dev": {"mounts": [{"source": "nope", "target": "/app"}]}},
            ),
            "ladder:app.services.web.dev.mounts[0].source",
        ),
        (
            "dev mount target relative",
            built_app(
                local_config(),
                web={"build": BUILD, "port": 1, "dev": {"mounts": [{"source": FIXTURE, "target": "app"}]}},
            ),
            "ladder:app.services.web.dev.mounts[0].target",
        ),
        ("publishPort off local", vps_config(postgres={"publishPort": 5432}), "ladder:postgres.publishPort"),
        (
            "publishPort twice",
            local_config(postgres={"publishPort": 5432}, redis={"publishPort": 5432}),
            "ladder:redis.publishPort",
        ),
        ("publishPort on the proxy's port", local_config(redis={"publishPort": 8080}), "ladder:redis.publishPort"),
        (
            "registry with a scheme",
            local_config(registries=[{**REGISTRIES[0], "server": "https://ghcr.io/x"}]),
            "ladder:registries[0].server",
        ),
        ("registry twice", local_config(registries=REGISTRIES * 2), "ladder:registries[1].server"),
        (
            "registry without password",
            local_config(registries=[{"server": "ghcr.io", "username": "u"}]),
            "ladder:registries[0].password",
        ),
    ],
)
def test_bad_build_and_registry_configs_name_their_key(case: str, raw: dict[str, Any], key: str) -> None:
    found = problems(raw)
    # A bad mapping key is reported below its key (`...args.A-B.[key]`).
    assert any(path == key or path.startswith(f"{key}.") for path in found), (case, found)


def test_a_plain_password_is_refused_and_never_echoed() -> None:
    found = problems(local_config(registries=REGISTRIES), secret=False)
    assert "--secret" in found["ladder:registries[0].password"]
    bad_type = local_config(registries=[{"server": "ghcr.io", "username": "u", "password": 12345678}])
    for raw, secret in ((local_config(registries=REGISTRIES), False), (bad_type, True)):
        with pytest.raises(ConfigError) as err:
            parse_settings(raw, ["ladder:registries"] if secret else [], project_dir=ROOT)
        assert TOKEN not in str(err.value) and "12345678" not in str(err.value)


def test_docker_hub_names_are_one_registry() -> None:
    for server in ("docker.io", "index.docker.io", "https://index.docker.io/v1/", "registry-1.docker.io"):
        s = parse_settings(
            local_config(registries=[{"server": server, "username": "u", "password": "p"}]), ["ladder:registries"]
        )
        assert s.registries[0].server == "docker.io"
    assert images.config_key("docker.io") == "https://index.docker.io/v1/"


def test_a_bad_registry_ends_the_program_before_any_resource() -> None:
    result = run_program("dev", overrides={"ladder:registries": REGISTRIES}, with_placeholders=False)
    assert isinstance(result.error, pulumi.RunError)
    assert "ladder:registries[0].password" in str(result.error) and TOKEN not in str(result.error)
    assert result.resources == []


# ---------------------------------------------------------------------------------------
# plans


def test_same_build_builds_once_and_names_the_first_service() -> None:
    raw = built_app(
        local_config(),
        worker={"build": dict(reversed(list(BUILD.items())))},
        api={"build": {**BUILD, "target": "other"}, "port": 9000, "path": "/api"},
    )
    s = parse_settings(raw, project_dir=ROOT)
    plans = images.plan_builds(s, "dev", ROOT)
    assert [(p.key, p.services) for p in plans] == [("api", ("api",)), ("web", ("web", "worker"))]
    assert plans[1].repository == "ghcr.io/acme/shop-web"
    refs = images.planned_references(s, plans)
    assert refs["worker"] == refs["web"] != refs["api"]


def _copy_fixture(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / FIXTURE, tmp_path / FIXTURE)
    return tmp_path


def test_the_tag_follows_the_source_and_the_stack(tmp_path: Path) -> None:
    project = _copy_fixture(tmp_path)
    s = parse_settings(built_app(local_config()), project_dir=project)
    (first,) = images.plan_builds(s, "dev", project)
    assert first.tag.startswith("dev-") and first.reference == f"ghcr.io/acme/shop-web:{first.tag}"
    (again,) = images.plan_builds(s, "dev", project)
    assert again.tag == first.tag
    assert images.plan_builds(s, "staging", project)[0].tag.split("-", 1)[1] == first.tag.split("-", 1)[1]
    # Ignored files do not change the tag; sources and build settings do.
    (project / FIXTURE / "notes").mkdir()
    (project / FIXTURE / "notes" / "todo.txt").write_text("x")
    (project / FIXTURE / "debug.log").write_text("x")
    assert images.plan_builds(s, "dev", project)[0].tag == first.tag
    (project / FIXTURE / "src" / "index.html").write_text("changed")
    changed = images.plan_builds(s, "dev", project)[0].tag
    assert changed != first.tag
    other = parse_settings(
        built_app(local_config(), web={"build": {**BUILD, "args": {"BASE": "x"}}, "port": 1}), project_dir=project
    )
    assert images.plan_builds(other, "dev", project)[0].tag != changed


def test_docker_config_json_is_what_docker_reads() -> None:
    config = json.loads(images.docker_config_json([("ghcr.io", "bot", "tok"), ("docker.io", "me", "pw")]))
    assert config["auths"]["ghcr.io"] == {"username": "bot", "password": "tok", "auth": "Ym90OnRvaw=="}
    assert set(config["auths"]) == {"ghcr.io", "https://index.docker.io/v1/"}


def test_service_registries_for_the_vps_login() -> None:
    s = parse_settings(
        built_app(cluster_config(registries=REGISTRIES), db={"image": "postgres:17.2"}), ["ladder:registries"], ROOT
    )
    plans = images.plan_builds(s, "staging", ROOT)
    assert images.service_registries(s, plans) == {"web": "ghcr.io", "db": "docker.io"}


# ---------------------------------------------------------------------------------------
# the program under mocks


class DigestMocks(LadderMocks):
    """A registry that answers a push with a digest, as pulumi-docker-build reports it."""

    def computed(self, typ: str, name: str, state: dict[str, Any]) -> dict[str, Any]:
        if typ == IMAGE and state.get("push"):
            return {"digest": DIGEST, "ref": f"{state['tags'][0]}@{DIGEST}"}
        return super().computed(typ, name, state)


def _overrides(**extra: Any) -> dict[str, Any]:
    return {
        "ladder:app.defaultRepo": "ghcr.io/acme",
        "ladder:app.services.web": {"build": BUILD, "port": 8080, "path": "/"},
        "ladder:app.services.worker": {"build": BUILD, "command": ["python", "-c", "pass"]},
        **extra,
    }


@pytest.fixture(scope="module")
def production() -> ProgramResult:
    result = run_program("production", overrides=_overrides(), secrets=SECRET_REGISTRIES, mocks=DigestMocks())
    assert result.error is None, result.error
    return result


@pytest.fixture(scope="module")
def dev() -> ProgramResult:
    result = run_program(
        "dev",
        overrides=_overrides(
            **{
                "ladder:app.services.web.dev": {
                    "mounts": [{"source": f"{FIXTURE}/src", "target": "/app", "readOnly": True}],
                    "command": ["python", "-m", "http.server", "8080", "--directory", "/app"],
                },
                "ladder:postgres.publishPort": 15432,
                "ladder:redis.publishPort": 16379,
            }
        ),
        secrets=SECRET_REGISTRIES,
    )
    assert result.error is None, result.error
    return result


def test_cluster_builds_once_pushes_with_cache_and_deploys_by_digest(production: ProgramResult) -> None:
    (image,) = production.of_type(IMAGE)
    inputs = image.inputs
    assert inputs["push"] is True
    (tag,) = inputs["tags"]
    assert tag.startswith("ghcr.io/acme/shop-web:production-")
    assert inputs["context"] == {"location": FIXTURE}
    assert inputs["dockerfile"] == {"location": f"{FIXTURE}/Dockerfile"}
    assert inputs["target"] == "app" and inputs["buildArgs"] == BUILD["args"]
    assert inputs["cacheFrom"] == [{"registry": {"ref": "ghcr.io/acme/shop-web:buildcache"}}]
    assert inputs["cacheTo"][0]["registry"]["ref"] == "ghcr.io/acme/shop-web:buildcache"
    assert inputs["cacheTo"][0]["registry"]["mode"] == "max"
    # The token makes the whole list a secret on its way to the engine.
    assert is_secret(inputs["registries"])
    (registry,) = unwrap(inputs["registries"])
    assert registry == {"address": "ghcr.io", "username": "acme-bot", "password": TOKEN}
    for name in ("shop-web", "shop-worker"):
        deployment = production.one("kubernetes:apps/v1:Deployment", name)
        (container,) = deployment.inputs["spec"]["template"]["spec"]["containers"]
        assert container["image"] == f"ghcr.io/acme/shop-web@{DIGEST}"


def _pod_templates(result: ProgramResult) -> list[tuple[str, dict[str, Any]]]:
    pods = []
    for r in result.resources:
        spec = r.inputs.get("spec")
        if r.type.startswith("kubernetes:") and isinstance(spec, dict) and isinstance(spec.get("template"), dict):
            pods.append((f"{r.type} {r.name}", unwrap(spec["template"]["spec"])))
    return pods


def test_every_pod_template_pulls_with_the_tenant_secret(production: ProgramResult) -> None:
    pods = _pod_templates(production)
    kinds = {name.split()[0] for name, _ in pods}
    assert {"kubernetes:apps/v1:Deployment", "kubernetes:batch/v1:Job"} <= kinds
    for name, pod in pods:
        assert pod.get("imagePullSecrets") == [{"name": "registry-credentials"}], name


def test_each_tenant_namespace_has_the_pull_secret_as_secret_data() -> None:
    result = run_program(
        "production",
        overrides=_overrides(
            **{
                "ladder:tenants": [
                    {"name": "shop", "domain": "shop.example.com"},
                    {"name": "client1", "domain": "client1.example.com"},
                ]
            }
        ),
        secrets=SECRET_REGISTRIES,
    )
    assert result.error is None, result.error
    secrets = [r for r in result.of_type("kubernetes:core/v1:Secret") if r.name.endswith("-registry-credentials")]
    assert sorted(r.inputs["metadata"]["namespace"] for r in secrets) == ["shop", "shop-client1"]
    for r in secrets:
        assert r.inputs["type"] == "kubernetes.io/dockerconfigjson"
        assert is_secret(r.inputs["stringData"])
        config = json.loads(unwrap(r.inputs["stringData"])[".dockerconfigjson"])
        assert config["auths"]["ghcr.io"]["password"] == TOKEN
    # The token appears nowhere outside a secret wrapper.
    for r in result.resources:
        assert TOKEN not in json.dumps(_strip_secrets(r.inputs)), r.name


def _strip_secrets(value: Any) -> Any:
    if is_secret(value):
        return "[secret]"
    if isinstance(value, dict):
        return {k: _strip_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_secrets(v) for v in value]
    return value


def test_no_registries_no_pull_secret() -> None:
    result = run_program("production")
    assert result.error is None, result.error
    for name, pod in _pod_templates(result):
        assert "imagePullSecrets" not in pod, name
    assert not [r for r in result.of_type("kubernetes:core/v1:Secret") if "registry" in r.name]


def test_release_job_follows_the_built_source(production: ProgramResult, tmp_path: Path) -> None:
    from components.render.k8s import release_job_name

    s = parse_settings(
        built_app(cluster_config(registries=REGISTRIES), api={"build": BUILD, "port": 9000, "path": "/api"}),
        ["ladder:registries"],
        ROOT,
    ).model_copy()
    app = s.app.model_copy(update={"release": s.app.release or _release("api")})
    planned = images.planned_references(s, images.plan_builds(s, "production", ROOT))
    changed = {**planned, "api": planned["api"] + "x"}
    assert release_job_name(app, planned) != release_job_name(app, changed)


def _release(service: str) -> Any:
    from components.settings import Release

    return Release(service=service, command=["migrate"])


def test_local_builds_without_push_and_runs_the_tag(dev: ProgramResult) -> None:
    (image,) = dev.of_type(IMAGE)
    assert image.inputs["push"] is False and image.inputs["load"] is True
    assert "cacheTo" not in image.inputs
    (tag,) = image.inputs["tags"]
    for name in ("app-web", "app-worker"):
        assert dev.one(CONTAINER, name).inputs["image"] == tag
    pulled = {r.inputs["name"] for r in dev.of_type("docker:index/remoteImage:RemoteImage")}
    assert tag not in pulled and "mendhak/http-https-echo:37" in pulled


def test_local_pulls_app_images_with_the_registry_credentials(dev: ProgramResult) -> None:
    (provider,) = dev.of_type("pulumi:providers:docker")
    # Provider inputs travel JSON-encoded; the token makes them a secret.
    assert is_secret(provider.inputs["registryAuth"])
    (auth,) = json.loads(unwrap(provider.inputs["registryAuth"]))
    assert auth == {"address": "ghcr.io", "username": "acme-bot", "password": TOKEN}
    app_images = [r for r in dev.of_type("docker:index/remoteImage:RemoteImage") if r.name.startswith("app-image")]
    assert app_images and all(r.provider.startswith(provider.urn) for r in app_images)


def test_dev_mounts_command_and_published_stores(dev: ProgramResult) -> None:
    web = dev.one(CONTAINER, "app-web").inputs
    (volume,) = web["volumes"]
    assert volume["hostPath"] == str((ROOT / FIXTURE / "src").resolve())
    assert volume["containerPath"] == "/app" and volume["readOnly"] is True
    assert web["command"][:3] == ["python", "-m", "http.server"]
    for name, internal, external in (("postgres-container", 5432, 15432), ("redis-container", 6379, 16379)):
        (port,) = dev.one(CONTAINER, name).inputs["ports"]
        assert (port["ip"], port["internal"], port["external"]) == ("127.0.0.1", internal, external)


def test_dev_settings_are_ignored_off_local(production: ProgramResult) -> None:
    result = run_program(
        "production",
        overrides=_overrides(**{"ladder:app.services.web.dev": {"command": ["sleep", "1"]}}),
        secrets=SECRET_REGISTRIES,
    )
    assert result.error is None, result.error
    (container,) = result.one("kubernetes:apps/v1:Deployment", "shop-web").inputs["spec"]["template"]["spec"][
        "containers"
    ]
    assert "command" not in container and "volumes" not in container


def test_plan_shows_what_would_be_built(production: ProgramResult) -> None:
    from rich.console import Console

    from tools.plan import builds_table

    console = Console(record=True, width=250)
    console.print(builds_table(production, "production"))
    text = console.export_text()
    assert "web, worker" in text and "ghcr.io/acme/shop-web:production-" in text
    assert "push, deploy by digest" in text and "ghcr.io as acme-bot" in text
    assert TOKEN not in text


# ---------------------------------------------------------------------------------------
# DigitalOcean Container Registry with minted credentials

DOCR_IMAGE = "registry.digitalocean.com/acme/web:1.4.2"
DOCR_CREDENTIALS = json.dumps({"auths": {"registry.digitalocean.com": {"auth": "ZG8tdG9rZW46ZG8tdG9rZW4="}}})


class DocrMocks(LadderMocks):
    def computed(self, typ: str, name: str, state: dict[str, Any]) -> dict[str, Any]:
        if typ == "digitalocean:index/containerRegistryDockerCredentials:ContainerRegistryDockerCredentials":
            return {"dockerCredentials": DOCR_CREDENTIALS}
        return super().computed(typ, name, state)


def test_docr_credentials_may_be_minted_only_on_a_digitalocean_cluster() -> None:
    docr = [{"server": "registry.digitalocean.com"}]
    raw = cluster_config(registries=docr)
    raw["app"]["services"]["web"]["image"] = DOCR_IMAGE
    s = parse_settings(raw, project_dir=ROOT)
    assert s.registries[0].minted and images.registry_logins(s) == []
    assert "ladder:registries[0].password" in problems(vps_config(registries=docr))
    nameless = cluster_config(registries=docr)
    assert "ladder:registries[0]" in problems(nameless)


def test_docr_minted_credentials_feed_the_pull_secret() -> None:
    result = run_program(
        "production",
        overrides={
            "ladder:app.services.web.image": DOCR_IMAGE,
            "ladder:registries": [{"server": "registry.digitalocean.com"}],
        },
        mocks=DocrMocks(),
    )
    assert result.error is None, result.error
    creds = result.one("digitalocean:index/containerRegistryDockerCredentials:ContainerRegistryDockerCredentials")
    assert creds.inputs["registryName"] == "acme" and creds.inputs["write"] is False
    (secret,) = [r for r in result.of_type("kubernetes:core/v1:Secret") if r.name.endswith("-registry-credentials")]
    assert is_secret(secret.inputs["stringData"])
    config = json.loads(unwrap(secret.inputs["stringData"])[".dockerconfigjson"])
    assert config["auths"]["registry.digitalocean.com"]["auth"] == "ZG8tdG9rZW46ZG8tdG9rZW4="
    for name, pod in _pod_templates(result):
        assert pod.get("imagePullSecrets") == [{"name": "registry-credentials"}], name


def test_issue_14_workloads_pull_with_the_tenant_secret_and_run_built_images() -> None:
    """Issue 14 meets issue 13: CronJobs (scheduled jobs, volume and accessory backups) and
    accessory StatefulSets carry the tenant's pull secret, and a job runs its service's built digest."""
    from tests.cluster_helpers import BACKUP_SECRETS, EXTRAS

    secrets = {
        **SECRET_REGISTRIES,
        **BACKUP_SECRETS,
        "ladder:secrets.MONGO_INITDB_ROOT_PASSWORD": "mongo-secret-value",
    }
    result = run_program("production", overrides=_overrides(**EXTRAS), secrets=secrets, mocks=DigestMocks())
    assert result.error is None, result.error
    pods = _pod_templates(result)
    for r in result.of_type("kubernetes:batch/v1:CronJob"):
        pods.append((f"{r.type} {r.name}", unwrap(r.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"])))
    kinds = {name.split()[0] for name, _ in pods}
    assert {"kubernetes:apps/v1:StatefulSet", "kubernetes:batch/v1:CronJob"} <= kinds, kinds
    for name, pod in pods:
        assert pod.get("imagePullSecrets") == [{"name": "registry-credentials"}], name
    jobs = [r for r in result.of_type("kubernetes:batch/v1:CronJob") if r.name.endswith("job-cleanup")]
    assert len(jobs) == 2  # one per tenant
    for r in jobs:
        (container,) = unwrap(r.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"])
        assert container["image"] == f"ghcr.io/acme/shop-web@{DIGEST}", r.name


def test_local_accessories_pull_with_the_registry_credentials_and_services_keep_dev_mounts() -> None:
    """Issue 14 meets issue 13 on local: a private accessory image pulls with the configured
    credentials, and a service keeps its dev bind mounts beside its named volumes."""
    from tests.helpers import MEILI

    accessory = {**MEILI, "image": "ghcr.io/acme/search:1.0.0"}
    overrides = _overrides(
        **{
            "ladder:accessories": {"search": accessory},
            "ladder:app.services.web.dev": {"mounts": [{"source": f"{FIXTURE}/src", "target": "/app"}]},
            "ladder:app.services.web.volumes": {"/data/uploads": {"sizeGb": 1}},
        }
    )
    result = run_program("dev", overrides=overrides, secrets=SECRET_REGISTRIES, mocks=DigestMocks())
    assert result.error is None, result.error
    providers = {r.urn for r in result.of_type("pulumi:providers:docker")}
    (image,) = [r for r in result.of_type("docker:index/remoteImage:RemoteImage") if r.name.endswith("search-image")]
    assert image.inputs["name"] == "ghcr.io/acme/search:1.0.0"
    assert any(image.provider.startswith(urn) for urn in providers), image.provider
    volumes = unwrap(result.one(CONTAINER, "app-web").inputs["volumes"])
    assert {v["containerPath"] for v in volumes} == {"/app", "/data/uploads"}
