"""Kubernetes objects of one tenant as plain dicts (no Pulumi inside).

The cluster components pass these to the typed `pulumi_kubernetes` resources
(`metadata=..., spec=...`), so what is tested here is exactly what is deployed. Every
workload passes the Pod Security "restricted" profile.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from components.render.drain import (
    PRESTOP_SLEEP_SECONDS,
    SHUTDOWN_SECONDS,
    TERMINATION_GRACE_SECONDS,
    cookie_name,
)
from components.render.resources import cpu_millis, limits, memory_mb
from components.settings import (
    Accessory,
    EgressRule,
    IngressController,
    Resources,
    Service,
    Tenant,
    service_volume_name,
    volume_slug,
)
from components.settings import App as AppConfig

Obj = dict[str, Any]

PART_OF = "app.kubernetes.io/part-of"
NAME = "app.kubernetes.io/name"
INSTANCE = "app.kubernetes.io/instance"
ROLE = "ladder.dev/role"  # app | data | backup: what NetworkPolicies select
BACKUP_ROLE = "backup"  # the Postgres dump pod: Postgres and the object store, nothing else

APP_SECRET = "app-secrets"
APP_CONFIG = "app-env"
SERVICE_ACCOUNT = "app"
TLS_SECRET = "app-tls"
PULL_SECRET = "registry-credentials"  # kubernetes.io/dockerconfigjson, when registries are configured
MONITORING_NAMESPACE = "monitoring"
POSTGRES_CLUSTER = "postgres"  # CloudNativePG Cluster name; its services are postgres-rw/-ro/-r
# kubernetes.io/basic-auth (`username`, `password`): the database owner, bootstrapped by initdb.
POSTGRES_OWNER_SECRET = "postgres-owner"
VALKEY = "valkey"
VALKEY_PORT = 6379
POSTGRES_PORT = 5432
POSTGRES_METRICS_PORT = 9187  # CloudNativePG's instance exporter (container port "metrics")
CNPG_STATUS_PORT = 8000  # the instance manager's status endpoint the operator polls
# Every pod CloudNativePG runs for a Cluster (instances and its initdb/join/recovery Jobs)
# carries `cnpg.io/cluster`; selecting on the key admits a recovery Cluster of any name.
CNPG_PODS: dict[str, Any] = {"matchExpressions": [{"key": "cnpg.io/cluster", "operator": "Exists"}]}
NON_ROOT_UID = 10001
TMP_SIZE = "64Mi"

# The ingress controllers Ladder installs: namespace, pod label and IngressClass.
INGRESS_CONTROLLERS: dict[str, dict[str, str]] = {
    "traefik": {"namespace": "traefik", "pod_name": "traefik", "class": "traefik"},
    "ingress-nginx": {"namespace": "ingress-nginx", "pod_name": "ingress-nginx", "class": "nginx"},
}
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16")
CNPG_NAMESPACE = "cnpg-system"
CERT_MANAGER_NAMESPACE = "cert-manager"
ISSUER_PROD = "letsencrypt-prod"
ISSUER_STAGING = "letsencrypt-staging"
ACME_SERVERS = {
    ISSUER_PROD: "https://acme-v02.api.letsencrypt.org/directory",
    ISSUER_STAGING: "https://acme-staging-v02.api.letsencrypt.org/directory",
}


@dataclass(frozen=True)
class DataAccess:
    """Where the tenant's app may connect for its stores (NetworkPolicy egress)."""

    postgres_in_namespace: bool = False
    valkey_in_namespace: bool = False
    # (port, cidr) pairs for stores outside the namespace (managed or external).
    external: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class TenantSpec:
    """Everything the renderers need for one tenant's copy of the app."""

    app: AppConfig
    tenant: Tenant
    ingress: IngressController = "traefik"
    data: DataAccess = field(default_factory=DataAccess)
    postgres_instances: int = 0
    postgres_storage_gb: int = 0
    valkey_storage_gb: int = 0
    valkey_max_memory_mb: int = 0
    monitoring: bool = False  # kube-prometheus-stack runs in MONITORING_NAMESPACE
    backups: bool = False  # the Barman Cloud plugin sidecar runs beside every Postgres pod
    # Per service, the image to run (an Input: a built image's `repo@digest` Output) and
    # the reference known at plan time (names the release Job); default: the service's image.
    images: Mapping[str, Any] = field(default_factory=dict)
    planned_images: Mapping[str, str] = field(default_factory=dict)
    # The dockerconfigjson Secret every pod pulls with, when registries are configured.
    pull_secret: str | None = None
    # ladder:accessories as (name, config) pairs; ladder:egress; the plain env the app gets
    # from accessories and buckets (components.render.appenv).
    accessories: tuple[tuple[str, Accessory], ...] = ()
    egress: tuple[EgressRule, ...] = ()
    extra_env: tuple[tuple[str, str], ...] = ()
    # `backups.schedule` when volume and accessory backups run (ladder:backups with credentials).
    backup_schedule: str | None = None
    # Managed Postgres: its CA (a ConfigMap DB_CA_CONFIG_MAP in the namespace) is mounted into
    # every app container at DB_CA_DIR, and DATABASE_URL verifies the server against it.
    db_ca: bool = False
    # CloudNativePG's operand image when the tenant's database is dumped and sealed beside
    # Barman (operator Postgres, backups on, `backups.encryptionKey` set); and the port of
    # the backup bucket's endpoint, the only place that dump pod may reach outside the namespace.
    postgres_dump_image: str | None = None
    backup_port: int = 443

    @property
    def namespace(self) -> str:
        return namespace_name(self.app.name, self.tenant.name)


def namespace_name(app: str, tenant: str) -> str:
    """seed 004: `docutag` for the primary tenant, `docutag-client1` for the others."""
    return app if tenant == app else f"{app}-{tenant}"


def meta(name: str, namespace: str | None, spec: TenantSpec, **labels: str) -> Obj:
    out: Obj = {"name": name, "labels": {PART_OF: spec.app.name, INSTANCE: spec.tenant.name, **labels}}
    if namespace:
        out["namespace"] = namespace
    return out


def selector(spec: TenantSpec, service: str) -> dict[str, str]:
    return {NAME: service, INSTANCE: spec.tenant.name}


# ---------------------------------------------------------------------------------------
# security contexts


def pod_security_context(uid: int = NON_ROOT_UID) -> Obj:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context(uid: int = NON_ROOT_UID) -> Obj:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resources_block(res: Resources) -> Obj:
    lim = limits(res)
    return {"requests": {"cpu": res.cpu, "memory": res.memory}, "limits": {"cpu": lim.cpu, "memory": lim.memory}}


def _tmp_volume() -> tuple[Obj, Obj]:
    return {"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE}}, {"name": "tmp", "mountPath": "/tmp"}


# The managed database's CA certificate (DigitalOcean's `get_database_ca`), for
# `sslmode=verify-full&sslrootcert=DB_CA_DIR/DB_CA_FILE` in DATABASE_URL.
DB_CA_CONFIG_MAP = "database-ca"
DB_CA_DIR = "/etc/ladder/database-ca"
DB_CA_FILE = "ca.crt"
DB_CA_PARAMS = f"sslmode=verify-full&sslrootcert={DB_CA_DIR}/{DB_CA_FILE}"


def db_ca_config_map(spec: TenantSpec, certificate: str) -> Obj:
    """The CA as a ConfigMap (a public certificate, not a secret)."""
    return {"metadata": meta(DB_CA_CONFIG_MAP, spec.namespace, spec), "data": {DB_CA_FILE: certificate}}


def _db_ca_volume() -> tuple[Obj, Obj]:
    volume = {"name": "database-ca", "configMap": {"name": DB_CA_CONFIG_MAP}}
    return volume, {"name": "database-ca", "mountPath": DB_CA_DIR, "readOnly": True}


POSTGRES_RESOURCES = Resources(cpu="250m", memory="512Mi")
# The Barman Cloud plugin sidecar takes its resources only from the ObjectStore's
# `instanceSidecarConfiguration`; without them the LimitRange default (128Mi) OOM-kills
# base backups. barman-cloud-backup streams and compresses: 256Mi requested, 512Mi limit.
BARMAN_SIDECAR_RESOURCES = Resources(cpu="100m", memory="256Mi")

# ---------------------------------------------------------------------------------------
# namespace and its guard rails


def namespace(spec: TenantSpec) -> Obj:
    m = meta(spec.namespace, None, spec)
    m["labels"].update(
        {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
            "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/audit": "restricted",
        }
    )
    return {"metadata": m}


SURGE = 1  # Deployment rollingUpdate.maxSurge


def surge(svc: Service) -> int:
    """Extra pods during a rollout: none for a service with a volume (Recreate)."""
    return 0 if svc.volumes else SURGE


def _max_replicas(svc: Service) -> int:
    return svc.autoscale.max if svc.autoscale else svc.replica_count


# cert-manager's HTTP-01 solver pod (cert-manager v1.21 controller defaults:
# --acme-http01-solver-resource-{request,limits}-{cpu,memory}).
ACME_SOLVER_REQUESTS = Resources(cpu="10m", memory="64Mi")
ACME_SOLVER_LIMITS = Resources(cpu="100m", memory="64Mi")
# Pods of the restore runbook (`tools/restore.py`): one recovery instance and its
# full-recovery Job, beside the live cluster.
RESTORE_INSTANCES = 1


def quota_totals(spec: TenantSpec) -> dict[str, int]:
    """Requests/limits (millicores, MiB) and counts for the tenant's namespace at full scale.

    Every service at its maximum replica count plus its rollout surge, the release Job,
    the Postgres instances with CloudNativePG's join Job, the Barman plugin sidecar in
    each of them, a recovery cluster for the restore runbook (pods, PVC, storage), Valkey
    and cert-manager's HTTP-01 solver, so neither a rolling update nor a restore hits the
    quota. `tools.quota_model` checks this against the rendered objects.
    """
    cpu_req = mem_req = cpu_lim = mem_lim = pods = 0

    def add(req: Resources, lim: Resources, count: int, pod: bool = True) -> None:
        nonlocal cpu_req, mem_req, cpu_lim, mem_lim, pods
        cpu_req += cpu_millis(req.cpu) * count
        mem_req += memory_mb(req.memory) * count
        cpu_lim += cpu_millis(lim.cpu) * count
        mem_lim += memory_mb(lim.memory) * count
        pods += count if pod else 0

    for svc in spec.app.services.values():
        add(svc.resources, limits(svc.resources), _max_replicas(svc) + surge(svc))
    if spec.app.release:
        res = spec.app.services[spec.app.release.service].resources
        add(res, limits(res), 1)
    pg_pvcs = pg_storage = 0
    if spec.postgres_instances:
        # live instances + join/initdb Job, and the restore runbook's instance + its Job
        pg_pods = spec.postgres_instances + 1 + RESTORE_INSTANCES + 1
        add(POSTGRES_RESOURCES, limits(POSTGRES_RESOURCES), pg_pods)
        if spec.backups:
            add(BARMAN_SIDECAR_RESOURCES, limits(BARMAN_SIDECAR_RESOURCES), pg_pods, pod=False)
        pg_pvcs = spec.postgres_instances + RESTORE_INSTANCES
        pg_storage = spec.postgres_storage_gb * pg_pvcs
    if spec.valkey_max_memory_mb:
        res = valkey_resources(spec.valkey_max_memory_mb)
        add(res, limits(res), 1)
        if spec.monitoring:
            add(VALKEY_EXPORTER_RESOURCES, limits(VALKEY_EXPORTER_RESOURCES), 1, pod=False)
    add(ACME_SOLVER_REQUESTS, ACME_SOLVER_LIMITS, 1)
    # Accessories (one pod each), app jobs and backups (one pod per CronJob: Forbid).
    from components.render import k8s_extras

    for res, count in k8s_extras.extra_pods(spec):
        add(res, limits(res), count)
    extra_pvcs, extra_storage = k8s_extras.extra_volumes(spec)
    pvcs = pg_pvcs + (1 if spec.valkey_storage_gb else 0) + extra_pvcs
    storage = pg_storage + spec.valkey_storage_gb + extra_storage
    return {
        "cpu_req": cpu_req,
        "mem_req": mem_req,
        "cpu_lim": cpu_lim,
        "mem_lim": mem_lim,
        "pods": pods,
        "pvcs": pvcs,
        "storage_gb": storage,
    }


def resource_quota(spec: TenantSpec) -> Obj:
    t = quota_totals(spec)
    hard = {
        "requests.cpu": f"{t['cpu_req']}m",
        "requests.memory": f"{t['mem_req']}Mi",
        "limits.cpu": f"{t['cpu_lim']}m",
        "limits.memory": f"{t['mem_lim']}Mi",
        "pods": str(t["pods"]),
        "services.loadbalancers": "0",
        "services.nodeports": "0",
        "persistentvolumeclaims": str(t["pvcs"]),
        "requests.storage": f"{max(t['storage_gb'], 1)}Gi",
    }
    return {"metadata": meta("quota", spec.namespace, spec), "spec": {"hard": hard}}


def limit_range(spec: TenantSpec) -> Obj:
    return {
        "metadata": meta("defaults", spec.namespace, spec),
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "defaultRequest": {"cpu": "50m", "memory": "64Mi"},
                    "default": {"cpu": "200m", "memory": "128Mi"},
                    "max": {"cpu": "4", "memory": "8Gi"},
                }
            ]
        },
    }


def service_account(spec: TenantSpec) -> Obj:
    return {"metadata": meta(SERVICE_ACCOUNT, spec.namespace, spec), "automount_service_account_token": False}


# ---------------------------------------------------------------------------------------
# NetworkPolicies


def _ns_selector(name: str) -> Obj:
    return {"matchLabels": {"kubernetes.io/metadata.name": name}}


def _ports(ports: Iterable[int], protocol: str = "TCP") -> list[Obj]:
    return [{"port": p, "protocol": protocol} for p in sorted(set(ports))]


def network_policies(spec: TenantSpec) -> dict[str, Obj]:
    """name -> NetworkPolicy body. Default deny; each allowed flow is its own policy."""
    ns = spec.namespace
    ctrl = INGRESS_CONTROLLERS[spec.ingress]
    from_controller = {
        "namespaceSelector": _ns_selector(ctrl["namespace"]),
        "podSelector": {"matchLabels": {NAME: ctrl["pod_name"]}},
    }
    app_pods = {"matchLabels": {ROLE: "app", INSTANCE: spec.tenant.name}}
    policies: dict[str, Obj] = {
        "default-deny": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        "allow-dns": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": _ns_selector("kube-system"),
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": _ports([53], "UDP") + _ports([53], "TCP"),
                }
            ],
        },
        # cert-manager's HTTP-01 solver pod answers Let's Encrypt through the controller.
        "allow-acme-solver": {
            "podSelector": {"matchLabels": {"acme.cert-manager.io/http01-solver": "true"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [from_controller], "ports": _ports([8089])}],
        },
    }
    for name, svc in spec.app.routed_services.items():
        assert svc.port is not None
        policies[f"allow-ingress-{name}"] = {
            "podSelector": {"matchLabels": selector(spec, name)},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [from_controller, {"podSelector": app_pods}], "ports": _ports([svc.port])}],
        }
    routed_ports = [svc.port for svc in spec.app.routed_services.values() if svc.port]
    if spec.monitoring and routed_ports:
        # Prometheus scrapes what an app exposes on its port (through a ServiceMonitor the
        # app ships); nothing else from the monitoring namespace gets in.
        policies["allow-prometheus"] = {
            "podSelector": app_pods,
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [_prometheus_peer()],
                    "ports": _ports(sorted(set(routed_ports))),
                }
            ],
        }
    egress: list[Obj] = []
    if routed_ports:
        egress.append({"to": [{"podSelector": app_pods}], "ports": _ports(routed_ports)})
    if spec.data.postgres_in_namespace:
        egress.append({"to": [{"podSelector": CNPG_PODS}], "ports": _ports([POSTGRES_PORT])})
    if spec.data.valkey_in_namespace:
        egress.append({"to": [{"podSelector": {"matchLabels": {NAME: VALKEY}}}], "ports": _ports([VALKEY_PORT])})
    for port, cidr in spec.data.external:
        egress.append({"to": [{"ipBlock": {"cidr": cidr}}], "ports": _ports([port])})
    for acc_name, acc in spec.accessories:
        egress.append(
            {"to": [{"podSelector": {"matchLabels": accessory_selector(spec, acc_name)}}], "ports": _ports([acc.port])}
        )
    for rule in spec.egress:
        # NetworkPolicy matches addresses, not names: a host name opens its ports to the
        # internet (never to private ranges), a CIDR to exactly that block.
        block: Obj = {"cidr": rule.to} if rule.is_cidr else {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}
        egress.append({"to": [{"ipBlock": block}], "ports": _ports(rule.ports)})
    # HTTPS to the internet (payment, mail, storage APIs), never to private ranges, so a
    # tenant cannot reach another tenant's pods or the node network this way.
    egress.append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}}], "ports": _ports([443])})
    if egress:  # always: HTTPS egress above
        policies["allow-app-egress"] = {"podSelector": app_pods, "policyTypes": ["Egress"], "egress": egress}
    if spec.data.valkey_in_namespace:
        valkey_ingress: list[Obj] = [{"from": [{"podSelector": app_pods}], "ports": _ports([VALKEY_PORT])}]
        if spec.monitoring:
            valkey_ingress.append({"from": [_prometheus_peer()], "ports": _ports([VALKEY_METRICS_PORT])})
        policies["allow-valkey-from-app"] = {
            "podSelector": {"matchLabels": {NAME: VALKEY}},
            "policyTypes": ["Ingress"],
            "ingress": valkey_ingress,
        }
    backup_pods = {"matchLabels": {ROLE: BACKUP_ROLE, INSTANCE: spec.tenant.name}}
    if spec.data.postgres_in_namespace:
        policies["allow-postgres"] = _postgres_policy(spec, app_pods, backup_pods)
    if spec.postgres_dump_image is not None and spec.data.postgres_in_namespace:
        # The dump pod: its database and the bucket's endpoint (public addresses only), as
        # `allow-app-egress` would give it much more (the app, Valkey, accessories, egress rules).
        policies["allow-backup-egress"] = {
            "podSelector": backup_pods,
            "policyTypes": ["Egress"],
            "egress": [
                {"to": [{"podSelector": CNPG_PODS}], "ports": _ports([POSTGRES_PORT])},
                {
                    "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}}],
                    "ports": _ports([spec.backup_port]),
                },
            ],
        }
    for acc_name, acc in spec.accessories:
        policies[f"allow-{acc_name}-from-app"] = {
            "podSelector": {"matchLabels": accessory_selector(spec, acc_name)},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": app_pods}], "ports": _ports([acc.port])}],
        }
    return {name: {"metadata": meta(name, ns, spec), "spec": body} for name, body in policies.items()}


def _postgres_policy(spec: TenantSpec, app_pods: Obj, backup_pods: Obj) -> Obj:
    """Every CloudNativePG pod of the namespace (the live cluster, a recovery cluster of
    any name, their Jobs): Postgres from the tenant's app and its dump pod, replication between
    instances, the operator's status and management connections, Prometheus on the
    exporter; out to each other, the Kubernetes API and the object store (both outside
    the cluster network on 443/6443)."""
    ingress: list[Obj] = [
        {"from": [{"podSelector": app_pods}, {"podSelector": backup_pods}], "ports": _ports([POSTGRES_PORT])},
        {"from": [{"podSelector": CNPG_PODS}], "ports": _ports([POSTGRES_PORT, CNPG_STATUS_PORT])},
        {
            "from": [{"namespaceSelector": _ns_selector(CNPG_NAMESPACE)}],
            "ports": _ports([POSTGRES_PORT, CNPG_STATUS_PORT]),
        },
    ]
    if spec.monitoring:
        ingress.append({"from": [_prometheus_peer()], "ports": _ports([POSTGRES_METRICS_PORT])})
    return {
        "podSelector": CNPG_PODS,
        "policyTypes": ["Ingress", "Egress"],
        "ingress": ingress,
        "egress": [
            {"to": [{"podSelector": CNPG_PODS}], "ports": _ports([POSTGRES_PORT, CNPG_STATUS_PORT])},
            {"ports": _ports([443, 6443])},
        ],
    }


def _prometheus_peer() -> Obj:
    return {
        "namespaceSelector": _ns_selector(MONITORING_NAMESPACE),
        "podSelector": {"matchLabels": {NAME: "prometheus"}},
    }


def pod_monitor(spec: TenantSpec, name: str, match_labels: dict[str, str]) -> Obj:
    """A PodMonitor in the tenant's namespace: Prometheus scrapes port `metrics` of the
    pods it selects (kube-prometheus-stack picks up PodMonitors from every namespace)."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": meta(name, spec.namespace, spec),
        "spec": {"selector": {"matchLabels": match_labels}, "podMetricsEndpoints": [{"port": "metrics"}]},
    }


def postgres_pod_monitor(spec: TenantSpec) -> Obj:
    """The CloudNativePG instances' exporter (9187), selected as CloudNativePG's own
    generated PodMonitor selects them."""
    return pod_monitor(spec, POSTGRES_CLUSTER, {"cnpg.io/cluster": POSTGRES_CLUSTER, "cnpg.io/podRole": "instance"})


# ---------------------------------------------------------------------------------------
# configuration


def accessory_selector(spec: TenantSpec, name: str) -> dict[str, str]:
    return {NAME: name, INSTANCE: spec.tenant.name}


def config_map(spec: TenantSpec) -> Obj:
    data = {**spec.app.env, **dict(spec.extra_env), "LADDER_PHASE": "cluster", "LADDER_TENANT": spec.tenant.name}
    return {"metadata": meta(APP_CONFIG, spec.namespace, spec), "data": dict(sorted(data.items()))}


def config_hash(spec: TenantSpec) -> str:
    return hashlib.sha256(json.dumps(config_map(spec)["data"], sort_keys=True).encode()).hexdigest()[:16]


def secret(spec: TenantSpec, string_data: Any) -> Obj:
    """`string_data` is usually a secret Output of {KEY: value}."""
    return {"metadata": meta(APP_SECRET, spec.namespace, spec), "type": "Opaque", "string_data": string_data}


# ---------------------------------------------------------------------------------------
# workloads


def _probe(svc: Service) -> Obj:
    return {"httpGet": {"path": svc.health_path, "port": "http"}}


def image_of(spec: TenantSpec, service: str) -> Any:
    """The image a service's pods run: the built image's reference when there is one."""
    return spec.images.get(service) or spec.app.services[service].image


def service_pvc_name(service: str, mount_path: str) -> str:
    return service_volume_name(service, mount_path)


def container(
    spec: TenantSpec, name: str, svc: Service, command: list[str] | None = None, service: str | None = None
) -> Obj:
    """`service` names the app service whose image runs (default: `name`)."""
    _, mount = _tmp_volume()
    mounts = [mount]
    if spec.db_ca:  # every container with DATABASE_URL: services, the release, jobs
        mounts.append(_db_ca_volume()[1])
    if command is None:  # the service itself; a release or job pod runs without its volumes
        mounts += [{"name": volume_slug(path), "mountPath": path} for path in sorted(svc.volumes)]
    c: Obj = {
        "name": name,
        "image": image_of(spec, service or name),
        "imagePullPolicy": "Always",
        "envFrom": [{"configMapRef": {"name": APP_CONFIG}}, {"secretRef": {"name": APP_SECRET}}],
        "resources": resources_block(svc.resources),
        "securityContext": container_security_context(),
        "volumeMounts": mounts,
    }
    cmd = command or svc.command
    if cmd:
        c["command"] = list(cmd)
    if svc.port is not None and command is None:
        c["ports"] = [{"name": "http", "containerPort": svc.port, "protocol": "TCP"}]
        c["startupProbe"] = {**_probe(svc), "periodSeconds": 5, "failureThreshold": 60, "timeoutSeconds": 3}
        c["readinessProbe"] = {**_probe(svc), "periodSeconds": 10, "failureThreshold": 3, "timeoutSeconds": 3}
        c["livenessProbe"] = {**_probe(svc), "periodSeconds": 20, "failureThreshold": 3, "timeoutSeconds": 5}
        c["lifecycle"] = drain_hook()
    elif svc.liveness and command is None:
        # Workers: the command the app names (exec, no shell), e.g. a heartbeat file's age.
        c["livenessProbe"] = {
            "exec": {"command": list(svc.liveness)},
            "initialDelaySeconds": 30,
            "periodSeconds": 30,
            "failureThreshold": 3,
            "timeoutSeconds": 5,
        }
    return c


def pod_spec(spec: TenantSpec, containers: list[Obj], extra_volumes: list[Obj] | None = None, **extra: Any) -> Obj:
    tmp, _ = _tmp_volume()
    mounted = {m["name"] for c in containers for m in c.get("volumeMounts", [])}
    ca = [_db_ca_volume()[0]] if spec.db_ca and "database-ca" in mounted else []
    return {
        "serviceAccountName": SERVICE_ACCOUNT,
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(),
        "containers": containers,
        "volumes": [tmp, *ca, *(extra_volumes or [])],
        **({"imagePullSecrets": [{"name": spec.pull_secret}]} if spec.pull_secret else {}),
        **extra,
    }


def deployment(spec: TenantSpec, name: str, svc: Service) -> Obj:
    """The service's Deployment. A service with `volumes` runs one replica with `strategy:
    Recreate`: its ReadWriteOnce claims attach to one node at a time, so the old pod stops
    before the new one starts (a short gap on deploys, never two writers)."""
    labels = {**selector(spec, name), PART_OF: spec.app.name, ROLE: "app"}
    strategy: Obj = (
        {"type": "Recreate"}
        if svc.volumes
        else {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": SURGE}}
    )
    claims = [
        {"name": volume_slug(path), "persistentVolumeClaim": {"claimName": service_pvc_name(name, path)}}
        for path in sorted(svc.volumes)
    ]
    body: Obj = {
        "selector": {"matchLabels": selector(spec, name)},
        "strategy": strategy,
        "revisionHistoryLimit": 5,
        "template": {
            "metadata": {"labels": labels, "annotations": {"ladder.dev/config-hash": config_hash(spec)}},
            "spec": pod_spec(
                spec,
                [container(spec, name, svc)],
                extra_volumes=claims,
                terminationGracePeriodSeconds=TERMINATION_GRACE_SECONDS if svc.routed else SHUTDOWN_SECONDS,
                topologySpreadConstraints=[
                    {
                        "maxSkew": 1,
                        "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": {"matchLabels": selector(spec, name)},
                    }
                ],
            ),
        },
    }
    # With an HPA the replica count is its business: leaving it out keeps `pulumi up`
    # from resetting what the autoscaler chose.
    if svc.autoscale is None:
        body["replicas"] = svc.replica_count
    return {"metadata": meta(name, spec.namespace, spec, **{NAME: name, ROLE: "app"}), "spec": body}


def drain_hook() -> Obj:
    """A routed container's `lifecycle`: on termination the kubelet sleeps first, without an
    `exec` (nothing assumed about the app's image), while the endpoint controller removes the
    pod from its Service's EndpointSlices and the ingress controller stops sending it new
    requests; SIGTERM comes after, and the app has `SHUTDOWN_SECONDS` to finish requests and
    close WebSockets cleanly."""
    return {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_SECONDS}}}


# Traefik's Kubernetes Ingress provider reads sticky sessions from the backend Service's
# annotations (Traefik v3 reference, "Kubernetes Ingress" > annotations on Service).
TRAEFIK_STICKY = "traefik.ingress.kubernetes.io/service.sticky.cookie"


def sticky_annotations(spec: TenantSpec, name: str, svc: Service) -> dict[str, str]:
    """Traefik's sticky cookie for a sticky service: its own name, sent only over HTTPS (TLS
    ends at Traefik), hidden from scripts, same-site lax so a link into the app keeps it."""
    if not svc.sticky or spec.ingress != "traefik":
        return {}
    return {
        TRAEFIK_STICKY: "true",
        f"{TRAEFIK_STICKY}.name": cookie_name(name),
        f"{TRAEFIK_STICKY}.secure": "true",
        f"{TRAEFIK_STICKY}.httponly": "true",
        f"{TRAEFIK_STICKY}.samesite": "lax",
    }


def service(spec: TenantSpec, name: str, svc: Service) -> Obj:
    assert svc.port is not None
    m = meta(name, spec.namespace, spec, **{NAME: name})
    annotations = sticky_annotations(spec, name, svc)
    if annotations:
        m["annotations"] = annotations
    return {
        "metadata": m,
        "spec": {
            "type": "ClusterIP",
            "selector": selector(spec, name),
            "ports": [{"name": "http", "port": svc.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def ingress(spec: TenantSpec, issuer: str = ISSUER_PROD) -> Obj:
    paths = [
        {
            "path": svc.route,
            "pathType": "Prefix",
            "backend": {"service": {"name": name, "port": {"name": "http"}}},
        }
        # Longest path first, so /api wins over / on controllers that match in order.
        for name, svc in sorted(spec.app.routed_services.items(), key=lambda kv: -len(kv[1].route))
    ]
    m = meta("app", spec.namespace, spec)
    m["annotations"] = {"cert-manager.io/cluster-issuer": issuer}
    return {
        "metadata": m,
        "spec": {
            "ingressClassName": INGRESS_CONTROLLERS[spec.ingress]["class"],
            "tls": [{"hosts": [spec.tenant.domain], "secretName": TLS_SECRET}],
            "rules": [{"host": spec.tenant.domain, "http": {"paths": paths}}],
        },
    }


def hpa(spec: TenantSpec, name: str, svc: Service) -> Obj | None:
    auto = svc.autoscale
    if auto is None:
        return None
    metrics = [
        {"type": "Resource", "resource": {"name": res, "target": {"type": "Utilization", "averageUtilization": pct}}}
        for res, pct in (("cpu", auto.cpu), ("memory", auto.memory))
        if pct is not None
    ]
    return {
        "metadata": meta(name, spec.namespace, spec, **{NAME: name}),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": auto.min,
            "maxReplicas": auto.max,
            "metrics": metrics,
        },
    }


def pdb(spec: TenantSpec, name: str, svc: Service) -> Obj | None:
    if svc.replica_count <= 1:
        return None
    return {
        "metadata": meta(name, spec.namespace, spec, **{NAME: name}),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(spec, name)}},
    }


def release_hash(app: AppConfig, planned: Mapping[str, str] | None = None) -> str:
    """Changes with the release service's image and the command: one Job run per release.

    A built image's plan-time reference (`repo:<stack>-<source hash>`) stands in for its
    digest, which is not known until the push.
    """
    assert app.release is not None
    image = (planned or {}).get(app.release.service) or app.services[app.release.service].image
    return hashlib.sha256(json.dumps([image, app.release.command]).encode()).hexdigest()[:10]


def release_job_name(app: AppConfig, planned: Mapping[str, str] | None = None) -> str:
    return f"release-{release_hash(app, planned)}"


def pull_secret(spec: TenantSpec, dockerconfigjson: Any) -> Obj:
    """The tenant's registry credentials; `dockerconfigjson` is a secret Output of Docker's config.json."""
    return {
        "metadata": meta(PULL_SECRET, spec.namespace, spec),
        "type": "kubernetes.io/dockerconfigjson",
        "string_data": {".dockerconfigjson": dockerconfigjson},
    }


def release_job(spec: TenantSpec) -> Obj | None:
    release = spec.app.release
    if release is None:
        return None
    svc = spec.app.services[release.service]
    name = release_job_name(spec.app, spec.planned_images)
    labels = {NAME: "release", INSTANCE: spec.tenant.name, PART_OF: spec.app.name, ROLE: "app"}
    return {
        "metadata": meta(name, spec.namespace, spec, **{NAME: "release"}),
        "spec": {
            "backoffLimit": 4,
            "activeDeadlineSeconds": 1800,
            # No ttlSecondsAfterFinished: a Job that vanished would be re-created (and the
            # release command re-run) by the next `pulumi up`.
            "template": {
                "metadata": {"labels": labels},
                "spec": pod_spec(
                    spec,
                    [container(spec, "release", svc, list(release.command), service=release.service)],
                    restartPolicy="Never",
                ),
            },
        },
    }


# ---------------------------------------------------------------------------------------
# Valkey (official image) as a StatefulSet


def valkey_resources(max_memory_mb: int) -> Resources:
    # Room for the dataset, the AOF rewrite buffer and the process itself.
    return Resources(cpu="100m", memory=f"{max_memory_mb + 64}Mi")


def valkey_storage_gb(max_memory_mb: int) -> int:
    """The PVC holds the AOF and its rewrite: twice the memory cap, at least 1 GB."""
    return max(1, -(-2 * max_memory_mb // 1024))


VALKEY_METRICS_PORT = 9121  # redis_exporter's default listen port
VALKEY_EXPORTER_RESOURCES = Resources(cpu="25m", memory="32Mi")


def valkey_exporter(image: str, password_secret: str) -> Obj:
    """redis_exporter beside Valkey (it reads REDIS_ADDR, default redis://localhost:6379,
    and REDIS_PASSWORD), serving Prometheus metrics on port `metrics`."""
    return {
        "name": "exporter",
        "image": image,
        "imagePullPolicy": "Always",
        "env": [
            {"name": "REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": password_secret, "key": "password"}}}
        ],
        "ports": [{"name": "metrics", "containerPort": VALKEY_METRICS_PORT, "protocol": "TCP"}],
        "resources": resources_block(VALKEY_EXPORTER_RESOURCES),
        "securityContext": container_security_context(),
        "livenessProbe": {"tcpSocket": {"port": "metrics"}, "periodSeconds": 30, "timeoutSeconds": 5},
    }


def valkey_pod_monitor(spec: TenantSpec) -> Obj:
    return pod_monitor(spec, VALKEY, {NAME: VALKEY, INSTANCE: spec.tenant.name})


def valkey_statefulset(spec: TenantSpec, image: str, password_secret: str, exporter_image: str | None = None) -> Obj:
    labels = {NAME: VALKEY, INSTANCE: spec.tenant.name, PART_OF: spec.app.name, ROLE: "data"}
    sel = {NAME: VALKEY, INSTANCE: spec.tenant.name}
    ping = ["sh", "-c", 'valkey-cli --no-auth-warning -a "$VALKEY_PASSWORD" ping | grep -q PONG']
    mem = spec.valkey_max_memory_mb
    c: Obj = {
        "name": VALKEY,
        "image": image,
        "imagePullPolicy": "Always",
        "command": [
            "sh",
            "-c",
            'exec valkey-server --requirepass "$VALKEY_PASSWORD" --appendonly yes --dir /data '
            f"--maxmemory {mem}mb --maxmemory-policy noeviction",
        ],
        "env": [
            {"name": "VALKEY_PASSWORD", "valueFrom": {"secretKeyRef": {"name": password_secret, "key": "password"}}}
        ],
        "ports": [{"name": "valkey", "containerPort": VALKEY_PORT, "protocol": "TCP"}],
        "resources": resources_block(valkey_resources(mem)),
        "securityContext": container_security_context(),
        "readinessProbe": {"exec": {"command": ping}, "periodSeconds": 10, "timeoutSeconds": 3},
        "livenessProbe": {"exec": {"command": ping}, "periodSeconds": 20, "timeoutSeconds": 5},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    return {
        "metadata": meta(VALKEY, spec.namespace, spec, **{NAME: VALKEY, ROLE: "data"}),
        "spec": {
            "serviceName": VALKEY,
            "replicas": 1,
            "selector": {"matchLabels": sel},
            "template": {
                "metadata": {"labels": labels},
                # Any non-root UID works: the command bypasses the image's entrypoint and
                # fsGroup makes the volume writable. With monitoring, the exporter rides along.
                "spec": {
                    **pod_spec(
                        spec, [c, *([valkey_exporter(exporter_image, password_secret)] if exporter_image else [])]
                    ),
                    "terminationGracePeriodSeconds": 30,
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": f"{spec.valkey_storage_gb}Gi"}},
                    },
                }
            ],
        },
    }


def valkey_service(spec: TenantSpec) -> Obj:
    return {
        "metadata": meta(VALKEY, spec.namespace, spec, **{NAME: VALKEY}),
        "spec": {
            "type": "ClusterIP",
            "selector": {NAME: VALKEY, INSTANCE: spec.tenant.name},
            "ports": [{"name": "valkey", "port": VALKEY_PORT, "targetPort": "valkey", "protocol": "TCP"}],
        },
    }


# ---------------------------------------------------------------------------------------
# CloudNativePG


BARMAN_PLUGIN = "barman-cloud.cloudnative-pg.io"


def cnpg_cluster(
    spec: TenantSpec, image: str, database: str, owner_secret: str, plugins: list[Obj] | None = None
) -> Obj:
    body: Obj = {
        "instances": spec.postgres_instances,
        "imageName": image,
        "primaryUpdateStrategy": "unsupervised",
        "enableSuperuserAccess": False,
        "storage": {"size": f"{spec.postgres_storage_gb}Gi"},
        "resources": resources_block(POSTGRES_RESOURCES),
        "bootstrap": {"initdb": {"database": database, "owner": database, "secret": {"name": owner_secret}}},
        # Spread instances over nodes: losing a node never takes primary and standby together.
        "affinity": {"enablePodAntiAffinity": True, "topologyKey": "kubernetes.io/hostname"},
    }
    if plugins:
        body["plugins"] = plugins
    m = meta(POSTGRES_CLUSTER, spec.namespace, spec)
    # pulumi-kubernetes waits for this condition (generic await), so the release Job and
    # the Deployments start only once the database accepts connections.
    m["annotations"] = {"pulumi.com/waitFor": "condition=Ready"}
    return {"metadata": m, "spec": body}


# ---------------------------------------------------------------------------------------
# platform


def cluster_issuer(name: str, email: str, ingress_class: str, server: str | None = None) -> Obj:
    """`server`: the ACME directory of the production issuer when `ladder:acmeServer` names
    one (another CA, or a test CA); the staging issuer always stays Let's Encrypt staging."""
    return {
        "metadata": {"name": name},
        "spec": {
            "acme": {
                "email": email,
                "server": (server if server and name == ISSUER_PROD else None) or ACME_SERVERS[name],
                "privateKeySecretRef": {"name": f"{name}-account-key"},
                # ClusterIP: the solver Service defaults to NodePort, which every tenant's
                # ResourceQuota refuses (`services.nodeports: 0`, cert-manager#928).
                "solvers": [{"http01": {"ingress": {"ingressClassName": ingress_class, "serviceType": "ClusterIP"}}}],
            }
        },
    }


def kubeconfig(name: str, endpoint: str, ca_certificate_b64: str, token: str) -> str:
    """A kubeconfig (JSON is valid YAML) that authenticates with a token the user controls."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": endpoint, "certificate-authority-data": ca_certificate_b64}}],
        "users": [{"name": f"{name}-admin", "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-admin"}}],
        "current-context": name,
    }
    return json.dumps(doc)


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})
