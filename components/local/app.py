"""The app's services as containers on the local Docker network (`ladder:index:App`, local rung)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_docker as docker

from components.images import RegistryLogin
from components.local.docker_common import container_args, healthcheck, http_probe, registry_provider
from components.local.extras import named_volumes
from components.render.resources import limits, memory_mb
from components.settings import App as AppConfig
from components.settings import Service


def service_env(
    app: AppConfig, plain: Mapping[str, str], secret_values: Mapping[str, pulumi.Input[str]]
) -> pulumi.Output[list[str]]:
    """`KEY=value` lines for a container: the app's env, injected URLs and secretEnv.

    Returned as a secret whenever any secret value is part of it.
    """
    names = sorted(secret_values)
    values = [secret_values[n] for n in names]

    def render(resolved: list[str]) -> list[str]:
        lines = [f"{k}={v}" for k, v in sorted({**app.env, **plain}.items())]
        return lines + [f"{n}={v}" for n, v in zip(names, resolved, strict=True)]

    env = pulumi.Output.all(*values).apply(lambda r: render(list(r)))
    return pulumi.Output.secret(env) if names else env


def dev_volumes(svc: Service, project_dir: Path) -> list[docker.ContainerVolumeArgs]:
    """`dev.mounts` as bind mounts (absolute host paths, as the engine needs them)."""
    if svc.dev is None:
        return []
    return [
        docker.ContainerVolumeArgs(
            host_path=str((project_dir / m.source).resolve()), container_path=m.target, read_only=m.read_only
        )
        for m in svc.dev.mounts
    ]


@dataclass
class AppArgs:
    app: AppConfig
    network: pulumi.Input[str]
    prefix: str
    secret_env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    # Per service, the image reference of a built service (components.images).
    built: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    logins: Sequence[RegistryLogin] = ()
    project_dir: Path = field(default_factory=Path.cwd)
    # Plain env from accessories and buckets (components.render.appenv).
    extra_env: Mapping[str, str] = field(default_factory=dict)
    protect: bool = False


class App(pulumi.ComponentResource):
    """One container per service (replicas are a vps/cluster concern), after the release command."""

    def __init__(self, name: str, args: AppArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ladder:index:App", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        app = args.app

        auth = registry_provider(f"{name}-registry-auth", args.logins, child)
        pull = pulumi.ResourceOptions(parent=self, provider=auth) if auth else child
        pulled = sorted({svc.pulled_image for n, svc in app.services.items() if n not in args.built})
        remote = {
            image: docker.RemoteImage(f"{name}-image-{i}", name=image, keep_locally=True, opts=pull)
            for i, image in enumerate(pulled)
        }

        def image_of(service: str) -> pulumi.Input[str]:
            built = args.built.get(service)
            return built if built is not None else remote[app.services[service].pulled_image].name

        env = service_env(app, {**args.extra_env, "LADDER_PHASE": "local"}, args.secret_env)

        after: list[pulumi.Resource] = list(args.depends_on)
        if app.release:
            # Replaced whenever its image or command changes, so it runs once per release.
            release = docker.Container(
                f"{name}-release",
                **container_args(
                    f"{args.prefix}-release",
                    image_of(app.release.service),
                    args.network,
                    [],
                    restart="no",
                    command=app.release.command,
                    envs=env,
                    must_run=False,
                    attach=True,
                    logs=True,
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=after),
            )
            after = [*after, release]

        self.containers: dict[str, docker.Container] = {}
        for svc_name, svc in app.services.items():
            # Source bind mounts for hot reload, then a named volume per `volumes` entry (kept
            # across `pulumi up`).
            mounts = dev_volumes(svc, args.project_dir) + named_volumes(
                svc_name, args.prefix, svc.volumes, pulumi.ResourceOptions(parent=self, protect=args.protect)
            )
            self.containers[svc_name] = docker.Container(
                f"{name}-{svc_name}",
                **container_args(
                    f"{args.prefix}-{svc_name}",
                    image_of(svc_name),
                    args.network,
                    [svc_name],
                    command=(svc.dev.command if svc.dev and svc.dev.command else None) or svc.command,
                    **({"volumes": mounts} if mounts else {}),
                    envs=env,
                    memory=memory_mb(limits(svc.resources).memory),
                    **_probe(svc),
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=after),
            )
        self.register_outputs({"services": list(self.containers)})


def _probe(svc: Service) -> dict[str, docker.ContainerHealthcheckArgs]:
    if svc.port is None:
        return {}
    return {"healthcheck": healthcheck(http_probe(svc.port, svc.health_path))}
