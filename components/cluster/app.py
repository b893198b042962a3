"""`ladder:index:App` on the cluster rung: one tenant's isolated copy of the app in its own namespace."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as kubernetes

from components.cluster.data import TenantStore
from components.render import k8s as r
from components.render import k8s_extras as x

# Given the tenant's namespace, the data stores register what they need in it and say
# how the app reaches them: {"DATABASE_URL": store, "REDIS_URL": store}.
Connect = Callable[[r.TenantSpec, kubernetes.core.v1.Namespace], Mapping[str, TenantStore]]


def secret_map(values: Mapping[str, pulumi.Input[str]]) -> pulumi.Output[dict[str, str]]:
    """{key: value} as one secret Output (a Secret's `string_data`)."""
    keys = sorted(values)

    def pair(resolved: list[str]) -> dict[str, str]:
        return dict(zip(keys, resolved, strict=True))

    out: pulumi.Output[dict[str, str]] = pulumi.Output.all(*[values[k] for k in keys]).apply(pair)
    return pulumi.Output.secret(out)


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
    # accessory name -> its secretEnv values (Pulumi secrets)
    accessory_secrets: Mapping[str, Mapping[str, pulumi.Input[str]]] = field(default_factory=dict)
    # Where volume and accessory backups go, and their Secret (`k8s_extras.backup_secret_data`).
    backup_target: x.BackupTarget | None = None
    backup_credentials: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


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
        sec = r.secret(spec, secret_map(values))
        secret = kubernetes.core.v1.Secret(
            f"{name}-secrets", metadata=sec["metadata"], type=sec["type"], string_data=sec["string_data"], opts=inside
        )
        cm = r.config_map(spec)
        config = kubernetes.core.v1.ConfigMap(f"{name}-env", metadata=cm["metadata"], data=cm["data"], opts=inside)

        pull: list[pulumi.Resource] = []
        if spec.pull_secret is not None:
            assert args.registry_config is not None, "pull_secret needs registry_config"
            ps = r.pull_secret(spec, pulumi.Output.secret(args.registry_config))
            pull.append(
                kubernetes.core.v1.Secret(
                    f"{name}-registry-credentials",
                    metadata=ps["metadata"],
                    type=ps["type"],
                    string_data=ps["string_data"],
                    opts=inside,
                )
            )
        # Accessories pull with the tenant's registry credentials too (their pods name the Secret).
        data_ready += self._stateful(name, spec, args, [self.namespace, *guard, *pull])
        before_pods: list[pulumi.Resource] = [*guard, secret, config, *data_ready, *args.images, *pull]
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

        self._cronjobs(name, spec, args, [self.namespace, *before_pods, *self.deployments.values()])

        ing = r.ingress(spec)
        self.ingress = kubernetes.networking.v1.Ingress(
            f"{name}-ingress",
            metadata=ing["metadata"],
            spec=ing["spec"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespace, *services, *args.routing]),
        )
        self.url = pulumi.Output.from_input(f"https://{spec.tenant.domain}")
        self.register_outputs({"namespace": spec.namespace, "url": self.url})

    def _stateful(
        self, name: str, spec: r.TenantSpec, args: AppArgs, after: list[pulumi.Resource]
    ) -> list[pulumi.Resource]:
        """Service volume claims and accessories (their Secret, Service, StatefulSet); protected like the data."""
        opts = pulumi.ResourceOptions(parent=self, depends_on=after)
        kept = pulumi.ResourceOptions(parent=self, depends_on=after, protect=args.protect)
        ready: list[pulumi.Resource] = []
        for pvc in x.service_pvcs(spec):
            ready.append(
                kubernetes.core.v1.PersistentVolumeClaim(
                    f"{name}-pvc-{pvc['metadata']['name']}", metadata=pvc["metadata"], spec=pvc["spec"], opts=kept
                )
            )
        for acc_name, acc in spec.accessories:
            deps = list(after)
            values = args.accessory_secrets.get(acc_name, {})
            if acc.secret_env:
                data = secret_map(values)
                deps.append(
                    kubernetes.core.v1.Secret(
                        f"{name}-{acc_name}-secret",
                        metadata=r.meta(x.accessory_secret_name(acc_name), spec.namespace, spec),
                        type="Opaque",
                        string_data=data,
                        opts=opts,
                    )
                )
            svc = x.accessory_service(spec, acc_name, acc)
            deps.append(
                kubernetes.core.v1.Service(f"{name}-{acc_name}", metadata=svc["metadata"], spec=svc["spec"], opts=opts)
            )
            sts = x.accessory_statefulset(spec, acc_name, acc)
            ready.append(
                kubernetes.apps.v1.StatefulSet(
                    f"{name}-{acc_name}",
                    metadata=sts["metadata"],
                    spec=sts["spec"],
                    opts=pulumi.ResourceOptions(parent=self, depends_on=deps, protect=args.protect),
                )
            )
        return ready

    def _cronjobs(self, name: str, spec: r.TenantSpec, args: AppArgs, after: list[pulumi.Resource]) -> None:
        """`ladder:app.jobs` and, with a backup target, the volume and accessory backups."""
        bodies = x.job_cronjobs(spec)
        deps = list(after)
        if args.backup_target is not None:
            backups = x.backup_cronjobs(spec, args.backup_target)
            if backups:
                creds = secret_map(args.backup_credentials)
                deps.append(
                    kubernetes.core.v1.Secret(
                        f"{name}-volume-backup-credentials",
                        metadata=r.meta(x.BACKUP_CREDENTIALS, spec.namespace, spec),
                        type="Opaque",
                        string_data=creds,
                        opts=pulumi.ResourceOptions(parent=self, depends_on=after),
                    )
                )
            bodies += backups
        for body in bodies:
            kubernetes.batch.v1.CronJob(
                f"{name}-{body['metadata']['name']}",
                metadata=body["metadata"],
                spec=body["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=deps),
            )
