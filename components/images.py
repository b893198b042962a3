"""Which image each service runs, built from source where `build` says so.

Every rung asks this module for one thing: per service, the image reference to deploy.
For a prebuilt `image` that is the configured reference. For a `build` it is a
pulumi-docker-build `Image`: on `local` it is built into the developer's engine (no
push) under a tag derived from the source; on `vps`/`cluster` it is pushed to
`ladder:app.defaultRepo` and deployed by digest, so a rebuilt image rolls out and an
unchanged one changes nothing. Services that build the same context, Dockerfile, target,
args and platform share one build.

The planning half (`plan_builds`, `planned_references`, `registry_logins`,
`service_registries`, `docker_config_json`) is pure, so the renderers, `make plan` and
`make eject` use it without Pulumi.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from components.settings import DOCKER_HUB, DOCR, Build, Settings, docr_registry_name, image_registry

# Docker's own config keys Docker Hub by its v1 index URL; kubelet and `docker login`
# both read that key (it is `kubectl create secret docker-registry`'s default server).
DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"
# The Docker daemon (pulumi-docker's registry_auth) resolves Docker Hub pulls here.
DOCKER_HUB_PULL_ADDRESS = "registry-1.docker.io"
CACHE_TAG = "buildcache"
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


# ---------------------------------------------------------------------------------------
# plans (pure)


@dataclass(frozen=True)
class BuildPlan:
    """One image build, shared by every service listed in `services`."""

    key: str  # the first service that uses it: names the repository and the resource
    services: tuple[str, ...]
    build: Build
    repository: str  # <defaultRepo>/<app>-<key>, or <app>-<key> when nothing is pushed
    tag: str  # <stack>-<source hash>: changes when the source or the build settings do

    @property
    def reference(self) -> str:
        """The tagged name, known at plan time (the digest is known only after the push)."""
        return f"{self.repository}:{self.tag}"

    @property
    def cache_ref(self) -> str:
        return f"{self.repository}:{CACHE_TAG}"

    @property
    def registry(self) -> str:
        return image_registry(self.repository)


def _build_identity(build: Build) -> str:
    """What makes two builds the same build: paths normalised, args sorted."""
    return json.dumps(
        [
            os.path.normpath(build.context),
            os.path.normpath(build.dockerfile_path),
            build.target,
            sorted(build.args.items()),
            build.platform,
        ]
    )


def _dockerignore(context: Path) -> list[tuple[bool, str]]:
    """(`!` negation, pattern) pairs of the context's .dockerignore, in file order."""
    path = context / ".dockerignore"
    if not path.is_file():
        return []
    rules: list[tuple[bool, str]] = []
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:].strip() if negate else line
        rules.append((negate, pattern.strip("/").removeprefix("./")))
    return rules


def _ignored(relative: str, rules: Sequence[tuple[bool, str]]) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern also covers what lies below it."""
    ignored = False
    for negate, pattern in rules:
        parts = relative.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(p, pattern) for p in prefixes):
            ignored = not negate
    return ignored


def source_hash(project_dir: Path, build: Build) -> str:
    """A digest of what the build reads: the context's files (minus .dockerignore) and the settings.

    It names the tag, so the same source gives the same tag on every machine; the
    registry digest, not this, is what decides a rollout.
    """
    context = project_dir / build.context
    rules = _dockerignore(context)
    digest = hashlib.sha256(_build_identity(build).encode())
    files: list[Path] = []
    for root, dirs, names in os.walk(context):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        files += [Path(root) / n for n in names]
    for path in sorted(files):
        relative = path.relative_to(context).as_posix()
        if _ignored(relative, rules) and path != project_dir / build.dockerfile_path:
            continue
        digest.update(relative.encode() + b"\0")
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"<unreadable>")
        digest.update(b"\0")
    dockerfile = project_dir / build.dockerfile_path
    if dockerfile.is_file():
        digest.update(dockerfile.read_bytes())
    return digest.hexdigest()


def _tag(stack: str, source: str) -> str:
    prefix = _TAG_UNSAFE.sub("-", stack).lstrip(".-")[:64] or "stack"
    return f"{prefix}-{source[:12]}"


def plan_builds(settings: Settings, stack: str, project_dir: Path) -> list[BuildPlan]:
    """Every distinct build of the app, in service order; one per identity."""
    app = settings.app
    grouped: dict[str, list[str]] = {}
    builds: dict[str, Build] = {}
    for name in sorted(app.services):
        build = app.services[name].build
        if build is None:
            continue
        identity = _build_identity(build)
        grouped.setdefault(identity, []).append(name)
        builds.setdefault(identity, build)
    plans = []
    for identity, services in grouped.items():
        key = services[0]
        build = builds[identity]
        base = f"{app.name}-{key}"
        repository = f"{app.default_repo}/{base}" if app.default_repo else base
        plans.append(BuildPlan(key, tuple(services), build, repository, _tag(stack, source_hash(project_dir, build))))
    return plans


def planned_references(settings: Settings, plans: Sequence[BuildPlan]) -> dict[str, str]:
    """Per service, the reference known at plan time: the prebuilt image, or the build's tag."""
    by_service = {svc: plan.reference for plan in plans for svc in plan.services}
    return {name: by_service.get(name) or svc.pulled_image for name, svc in settings.app.services.items()}


def service_registries(settings: Settings, plans: Sequence[BuildPlan]) -> dict[str, str]:
    """Per service, the registry host its image comes from (what a host must log in to)."""
    return {name: image_registry(ref) for name, ref in planned_references(settings, plans).items()}


@dataclass(frozen=True)
class RegistryLogin:
    """One registry's credentials; `password` is a secret Output, never a plain string."""

    server: str
    username: pulumi.Input[str]
    password: pulumi.Output[str]


def registry_logins(settings: Settings) -> list[RegistryLogin]:
    """Every registry configured with a username and token, the token wrapped as a Pulumi secret.

    DigitalOcean Container Registry entries without credentials are minted by the cluster
    rung (`minted_docr_login`) and are not in this list.
    """
    return [
        RegistryLogin(r.server, r.username, pulumi.Output.secret(r.password.get_secret_value()))
        for r in settings.registries
        if r.username is not None and r.password is not None
    ]


def logins_needed(settings: Settings, plans: Sequence[BuildPlan]) -> list[RegistryLogin]:
    """The logins a host needs to pull this app's images (a subset of `registry_logins`)."""
    used = set(service_registries(settings, plans).values())
    return [login for login in registry_logins(settings) if login.server in used]


def _docker_credentials_login(config_json: Any) -> tuple[str, str]:
    """(username, password) of DOCR's entry in a Docker config.json; empty while unknown."""
    if not isinstance(config_json, str) or not config_json:
        return "", ""
    auth = json.loads(config_json).get("auths", {}).get(DOCR, {}).get("auth", "")
    user, _, password = base64.b64decode(auth).decode().partition(":") if auth else ("", "", "")
    return user, password


def minted_docr_login(name: str, settings: Settings, write: bool, opts: pulumi.ResourceOptions) -> RegistryLogin | None:
    """Credentials for DigitalOcean Container Registry minted by the DigitalOcean provider.

    Only for a `ladder:registries` entry on registry.digitalocean.com without username and
    password (settings allow that on a digitalocean cluster). `write` when builds push there.
    """
    entry = settings.registry_for(DOCR)
    registry = docr_registry_name(settings)
    if entry is None or not entry.minted or registry is None:
        return None
    import pulumi_digitalocean as digitalocean

    creds = digitalocean.ContainerRegistryDockerCredentials(
        f"{name}-docr-credentials", registry_name=registry, write=write, opts=opts
    )
    pair = pulumi.Output.secret(creds.docker_credentials).apply(_docker_credentials_login)
    return RegistryLogin(DOCR, pair.apply(lambda p: p[0]), pulumi.Output.secret(pair.apply(lambda p: p[1])))


def config_key(server: str) -> str:
    """The key Docker's config.json (and so a dockerconfigjson Secret) uses for a server."""
    return DOCKER_HUB_CONFIG_KEY if server == DOCKER_HUB else server


def docker_config_json(credentials: Sequence[tuple[str, str, str]]) -> str:
    """A Docker config.json `{"auths": ...}` for (server, username, password) triples.

    This is the `.dockerconfigjson` payload of a `kubernetes.io/dockerconfigjson` Secret.
    """
    auths = {
        config_key(server): {
            "username": username,
            "password": password,
            "auth": base64.b64encode(f"{username}:{password}".encode()).decode(),
        }
        for server, username, password in credentials
    }
    return json.dumps({"auths": auths}, sort_keys=True)


def docker_config_output(logins: Sequence[RegistryLogin]) -> pulumi.Output[str]:
    """`docker_config_json` of the logins, as a secret Output."""
    servers = [login.server for login in logins]
    count = len(logins)
    rendered = pulumi.Output.all(*[login.username for login in logins], *[login.password for login in logins]).apply(
        lambda values: docker_config_json(
            [(s, str(u), str(p)) for s, u, p in zip(servers, values[:count], values[count:], strict=True)]
        )
    )
    return pulumi.Output.secret(rendered)


# ---------------------------------------------------------------------------------------
# resources


@dataclass
class ServiceImages:
    """What a rung deploys: per service, the image reference (an Output) and the builds behind it."""

    references: dict[str, pulumi.Output[str]]
    planned: dict[str, str]
    plans: list[BuildPlan]
    builds: dict[str, pulumi.CustomResource] = field(default_factory=dict)

    @property
    def resources(self) -> list[pulumi.Resource]:
        return list(self.builds.values())


def _digest_reference(repository: str, tag: str, digest: Any) -> str:
    """`repo@sha256:…` once pushed; the tag while the digest is unknown (never pushed)."""
    return (
        f"{repository}@{digest}" if isinstance(digest, str) and digest.startswith("sha256:") else f"{repository}:{tag}"
    )


def _deployed(image: Any, plan: BuildPlan, push: bool) -> pulumi.Output[str]:
    """What the workloads run, as an Output of the build (so they wait for it)."""
    if push:
        digest: pulumi.Output[Any] = image.digest
        return digest.apply(lambda d: _digest_reference(plan.repository, plan.tag, d))
    tags: pulumi.Output[Any] = image.tags
    return tags.apply(lambda _: plan.reference)


def build_images(
    name: str,
    settings: Settings,
    push: bool,
    opts: pulumi.ResourceOptions,
    project_dir: Path | None = None,
    extra_logins: Sequence[RegistryLogin] = (),
) -> ServiceImages:
    """Register one pulumi-docker-build `Image` per distinct build; return what each service runs.

    `push` (vps, cluster) pushes to `ladder:app.defaultRepo` with a registry cache and
    deploys `repo@digest`; without it (local) the image is loaded into the local engine
    under its source tag.
    """
    stack = pulumi.get_stack()
    plans = plan_builds(settings, stack, project_dir or Path.cwd())
    planned = planned_references(settings, plans)
    references: dict[str, pulumi.Output[str]] = {n: pulumi.Output.from_input(ref) for n, ref in planned.items()}
    if not plans:
        return ServiceImages(references, planned, plans)

    import pulumi_docker_build as docker_build

    registries = [
        docker_build.RegistryArgs(address=login.server, username=login.username, password=login.password)
        for login in [*registry_logins(settings), *extra_logins]
    ]
    builds: dict[str, pulumi.CustomResource] = {}
    for plan in plans:
        build = plan.build
        cache: dict[str, Any] = {}
        if push:
            cache = {
                "cache_from": [
                    docker_build.CacheFromArgs(registry=docker_build.CacheFromRegistryArgs(ref=plan.cache_ref))
                ],
                "cache_to": [
                    docker_build.CacheToArgs(
                        registry=docker_build.CacheToRegistryArgs(
                            ref=plan.cache_ref,
                            mode=docker_build.CacheMode.MAX,
                            image_manifest=True,
                            oci_media_types=True,
                            # A cache that cannot be written must not fail the deploy.
                            ignore_error=True,
                        )
                    )
                ],
            }
        image = docker_build.Image(
            f"{name}-build-{plan.key}",
            context=docker_build.BuildContextArgs(location=build.context),
            dockerfile=docker_build.DockerfileArgs(location=build.dockerfile_path),
            target=build.target,
            build_args=dict(build.args) or None,
            platforms=[docker_build.Platform(build.platform)] if build.platform else None,
            tags=[plan.reference],
            push=push,
            load=not push,
            registries=registries or None,
            **cache,
            opts=opts,
        )
        builds[plan.key] = image
        deployed = _deployed(image, plan, push)
        for svc in plan.services:
            references[svc] = deployed
    return ServiceImages(references, planned, plans, builds)
