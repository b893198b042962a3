"""The app's services as containers on the local Docker network (`ladder:index:App`, local rung)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from components.local.docker_common import container_args, healthcheck, http_probe
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


@dataclass
class AppArgs:
    app: AppConfig
    network: pulumi.Input[str]
    prefix: str
    secret_env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    # Plain env from accessories and buckets (components.render.appenv).
    extra_env: Mapping[str, str] = field(default_factory=dict)
    protect: bool = False


class App(pulumi.ComponentResource):
    """One container per service (replicas are a vps/cluster concern), after the release command."""

    def __init__(self, name: str, args: AppArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ladder:index:App", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        app = args.app

        images = {
            image: docker.RemoteImage(f"{name}-image-{i}", name=image, keep_locally=True, opts=child)
            for i, image in enumerate(sorted({svc.image for svc in app.services.values()}))
        }
        env = service_env(app, {**args.extra_env, "LADDER_PHASE": "local"}, args.secret_env)

        after: list[pulumi.Resource] = list(args.depends_on)
        if app.release:
            release_svc = app.services[app.release.service]
            # Replaced whenever its image or command changes, so it runs once per release.
            release = docker.Container(
                f"{name}-release",
                **container_args(
                    f"{args.prefix}-release",
                    images[release_svc.image].name,
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
            self.containers[svc_name] = docker.Container(
                f"{name}-{svc_name}",
                **container_args(
                    f"{args.prefix}-{svc_name}",
                    images[svc.image].name,
                    args.network,
                    [svc_name],
                    command=svc.command,
                    envs=env,
                    memory=memory_mb(limits(svc.resources).memory),
                    # A named volume per `volumes` entry, kept across `pulumi up`.
                    volumes=named_volumes(
                        svc_name, args.prefix, svc.volumes, pulumi.ResourceOptions(parent=self, protect=args.protect)
                    ),
                    **_probe(svc),
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=after),
            )
        self.register_outputs({"services": list(self.containers)})


def _probe(svc: Service) -> dict[str, docker.ContainerHealthcheckArgs]:
    if svc.port is None:
        return {}
    return {"healthcheck": healthcheck(http_probe(svc.port, svc.health_path))}
