"""`ladder:index:App` on the cluster rung: one tenant's isolated copy of the app in its own namespace."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as kubernetes

from components.cluster.data import TenantStore
from components.render import k8s as r

# Given the tenant's namespace, the data stores register what they need in it and say
# how the app reaches them: {"DATABASE_URL": store, "REDIS_URL": store}.
Connect = Callable[[r.TenantSpec, kubernetes.core.v1.Namespace], Mapping[str, TenantStore]]


@dataclass
class AppArgs:
    spec: r.TenantSpec
    connect: Connect
    secret_env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # The ingress controller and the ClusterIssuer: the tenant's Ingress waits for both.
    routing: list[pulumi.Resource] = field(default_factory=list)
    protect: bool = False
    # Docker's config.json for the configured registries (a secret Output), when any;
    # `spec.pull_secret` names the Secret it becomes.
    registry_config: pulumi.Input[str] | None = None
    # Image builds the workloads wait for (their digests are in `spec.images`).
    images: list[pulumi.Resource] = field(default_factory=list)


class App(pulumi.ComponentResource):
    """Namespace with guard rails, config, the release Job, Deployments, Services, Ingress, HPA, PDB."""

    def __init__(self, name: str, args: AppArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ladder:index:App", name, None, opts)
        spec = args.spec
        app = spec.app

        ns_body = r.namespace(spec)
        # Deleting the namespace would delete the tenant's Postgres and Valkey volumes with it.
        self.namespace = kubernetes.core.v1.Namespace(
            f"{name}-namespace",
            metadata=ns_body["metadata"],
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        inside = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace])

        guard: list[pulumi.Resource] = []
        quota = r.resource_quota(spec)
        guard.append(
            kubernetes.core.v1.ResourceQuota(
                f"{name}-quota", metadata=quota["metadata"], spec=quota["spec"], opts=inside
            )
        )
        lr = r.limit_range(spec)
        guard.append(
            kubernetes.core.v1.LimitRange(f"{name}-limits", metadata=lr["metadata"], spec=lr["spec"], opts=inside)
        )
        for policy_name, policy in r.network_policies(spec).items():
            guard.append(
                kubernetes.networking.v1.NetworkPolicy(
                    f"{name}-netpol-{policy_name}", metadata=policy["metadata"], spec=policy["spec"], opts=inside
                )
            )
        sa = r.service_account(spec)
        guard.append(kubernetes.core.v1.ServiceAccount(f"{name}-sa", **sa, opts=inside))

        stores = args.connect(spec, self.namespace)
        values: dict[str, pulumi.Input[str]] = dict(args.secret_env)
        data_ready: list[pulumi.Resource] = []
        for key, store in stores.items():
            values[key] = store.url
            data_ready += store.ready
        names = sorted(values)
        string_data: pulumi.Output[dict[str, str]] = pulumi.Output.secret(
            pulumi.Output.all(*[values[n] for n in names]).apply(lambda vs: dict(zip(names, vs, strict=True)))
        )
        sec = r.secret(spec, string_data)
        secret = kubernetes.core.v1.Secret(
            f"{name}-secrets", metadata=sec["metadata"], type=sec["type"], string_data=sec["string_data"], opts=inside
        )
        cm = r.config_map(spec)
        config = kubernetes.core.v1.ConfigMap(f"{name}-env", metadata=cm["metadata"], data=cm["data"], opts=inside)

        before_pods: list[pulumi.Resource] = [*guard, secret, config, *data_ready, *args.images]
        if spec.pull_secret is not None:
            assert args.registry_config is not None, "pull_secret needs registry_config"
            ps = r.pull_secret(spec, pulumi.Output.secret(args.registry_config))
            before_pods.append(
                kubernetes.core.v1.Secret(
                    f"{name}-registry-credentials",
                    metadata=ps["metadata"],
                    type=ps["type"],
                    string_data=ps["string_data"],
                    opts=inside,
                )
            )
        job_body = r.release_job(spec)
        self.release_job: kubernetes.batch.v1.Job | None = None
        if job_body is not None:
            # Named after the image and command: a new release runs once, and Pulumi waits
            # for it to succeed before any Deployment rolls.
            self.release_job = kubernetes.batch.v1.Job(
                f"{name}-{job_body['metadata']['name']}",
                metadata=job_body["metadata"],
                spec=job_body["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespace, *before_pods]),
            )
            before_pods = [*before_pods, self.release_job]

        workloads = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace, *before_pods])
        services: list[pulumi.Resource] = []
        self.deployments: dict[str, kubernetes.apps.v1.Deployment] = {}
        for svc_name, svc in app.services.items():
            d = r.deployment(spec, svc_name, svc)
            self.deployments[svc_name] = kubernetes.apps.v1.Deployment(
                f"{name}-{svc_name}", metadata=d["metadata"], spec=d["spec"], opts=workloads
            )
            if svc.routed:
                s = r.service(spec, svc_name, svc)
                services.append(
                    kubernetes.core.v1.Service(
                        f"{name}-{svc_name}", metadata=s["metadata"], spec=s["spec"], opts=inside
                    )
                )
            h = r.hpa(spec, svc_name, svc)
            if h is not None:
                kubernetes.autoscaling.v2.HorizontalPodAutoscaler(
                    f"{name}-{svc_name}",
                    metadata=h["metadata"],
                    spec=h["spec"],
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[self.deployments[svc_name]]),
                )
            p = r.pdb(spec, svc_name, svc)
            if p is not None:
                kubernetes.policy.v1.PodDisruptionBudget(
                    f"{name}-{svc_name}", metadata=p["metadata"], spec=p["spec"], opts=inside
                )

        ing = r.ingress(spec)
        self.ingress = kubernetes.networking.v1.Ingress(
            f"{name}-ingress",
            metadata=ing["metadata"],
            spec=ing["spec"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespace, *services, *args.routing]),
        )
        self.url = pulumi.Output.from_input(f"https://{spec.tenant.domain}")
        self.register_outputs({"namespace": spec.namespace, "url": self.url})
