"""Cluster objects for service volumes, accessories, app jobs and their backups (pure dicts).

- A service volume is a ReadWriteOnce PersistentVolumeClaim; its Deployment runs one
  replica with `strategy: Recreate` (see `k8s.deployment`).
- An accessory is a StatefulSet (one replica, a claim per volume) with a ClusterIP
  Service; only the tenant's app pods may connect (`k8s.network_policies`).
- `ladder:app.jobs` are CronJobs in the service's image with the app's env and secrets.
- Backups: no VolumeSnapshotClass is known for every cluster Ladder runs on (DOKS, k3s
  with hcloud-csi, clusters you bring), so volumes are archived with tar by a CronJob on
  `backups.schedule` and uploaded to the backup bucket; an accessory with a dump
  `command` is dumped instead. ReadWriteOnce claims attach to one node, so a backup pod
  is scheduled beside the pod that owns the claim (required pod affinity) and mounts it
  read-only. Retention is the bucket's lifecycle rule (`backups.retentionDays` when
  Ladder creates the bucket). Every pod passes the restricted Pod Security profile.
- Encryption: the archive is sealed in the pod before upload by rclone's `crypt` remote
  (NaCl secretbox, key from `ladder:backups.encryptionKey` by scrypt) layered on an `s3`
  remote, both configured only by `RCLONE_CONFIG_<REMOTE>_<OPTION>` environment variables.
  No official image ships `age`; rclone's own image does ship rclone. The passphrase and
  the bucket keys live in the tenant's Secret (`envFrom`), never in a plain env value,
  the command or an annotation.
- Postgres (`postgres.mode: operator`): beside the Barman Cloud plugin (base backups and WAL,
  server-side encryption only, point-in-time recovery), a `postgres-dump` CronJob per tenant
  runs `pg_dump --format=custom` through the same dump wrapper and the same sealing uploader,
  so the database also leaves the cluster encrypted client-side (`postgres_dump_cronjob`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from components import versions
from components.render import k8s as r
from components.render.resources import cpu_millis, memory_mb
from components.settings import Accessory, Resources, accessory_env_names, volume_slug

Obj = dict[str, Any]
T = TypeVar("T")

BACKUP_CREDENTIALS = "volume-backup-credentials"  # Secret: see backup_secret_data
BACKUP_RESOURCES = Resources(cpu="100m", memory="256Mi")
# rclone remotes: BACKUP is the bucket's s3 remote, SEALED the crypt remote wrapping it.
STORE_REMOTE = "BACKUP"
CRYPT_REMOTE = "SEALED"
# The Secret's only key that is not an rclone option: the passphrase as the operator holds
# it. rclone wants crypt passwords obscured (`rclone obscure`); the script obscures it with
# the image's own rclone, so the Secret holds the same text the operator restores with.
KEY_VAR = "LADDER_BACKUP_KEY"
# With filename encryption off, rclone keeps the name and appends ".bin": objects land at
# <prefix>/<owner>/<timestamp>.<ext>.bin; through the crypt remote the name is read back without it.
SEALED_SUFFIX = ".bin"
# The uploader: every input comes from the environment, nothing from the config is in the
# script. The key is obscured through stdin (never argv), then dropped from the environment.
UPLOAD_SCRIPT = (
    'set -eu; : "${LADDER_BACKUP_KEY:?}"; '
    'RCLONE_CONFIG_SEALED_PASSWORD="$(printf \'%s\\n\' "$LADDER_BACKUP_KEY" | rclone obscure -)"; '
    "export RCLONE_CONFIG_SEALED_PASSWORD; unset LADDER_BACKUP_KEY; "
    'exec rclone copyto "$ARCHIVE" "SEALED:$PREFIX/$(date -u +%Y%m%dT%H%M%SZ).$EXT"'
)
# The dump wrapper: the dump command (argv, no shell parsing) writes to stdout, into the file
# the uploader seals (LADDER_ARCHIVE, a name no accessory env is likely to carry).
DUMP_SCRIPT = 'set -eu; "$@" > "$LADDER_ARCHIVE"'
# The tenant's Postgres dump: custom format (compressed, selective `pg_restore`), every
# connection parameter from libpq's environment (PG*), the password from a secretKeyRef.
PG_DUMP_COMMAND = ("pg_dump", "--format=custom")
PG_DUMP_JOB = "postgres-dump"  # not `backup-postgres`: a service may be named `postgres`
PG_DUMP_OWNER = "postgres"  # objects under BackupTarget.dumps/<owner>/
# The one file in the scratch emptyDir (mounted at /backup) that a backup pod's init container
# writes and its uploader seals.
ARCHIVE = "/backup/archive"
STARTING_DEADLINE_S = 300
BACKUP_DEADLINE_S = 4 * 3600


@dataclass(frozen=True)
class BackupTarget:
    """Where volume and accessory backups of one tenant go (the `ladder:backups` bucket)."""

    bucket: str
    region: str
    prefix: str  # e.g. shop/production/shop: objects land under <prefix>/<owner>/
    endpoint: str | None = None
    # Where database dumps land (<dumps>/<owner>/): apart from `prefix`, so no service's
    # volume folder can share it, and apart from Barman's `<serverName>/` folders.
    dumps: str = ""


def accessory_secret_name(name: str) -> str:
    return f"accessory-{name}"


def _accessory_labels(spec: r.TenantSpec, name: str) -> dict[str, str]:
    return {**r.accessory_selector(spec, name), r.PART_OF: spec.app.name, r.ROLE: "data"}


def _claim_template_name(path: str) -> str:
    return volume_slug(path)


def accessory_pvc_name(name: str, path: str) -> str:
    """The claim a StatefulSet's volumeClaimTemplate makes for its only replica."""
    return f"{_claim_template_name(path)}-{name}-0"


def _storage(size_gb: int) -> Obj:
    return {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": f"{size_gb}Gi"}}}


def service_pvcs(spec: r.TenantSpec) -> list[Obj]:
    """One ReadWriteOnce claim per service volume (named `<service>-<slug>`)."""
    return [
        {
            "metadata": r.meta(r.service_pvc_name(name, path), spec.namespace, spec, **{r.NAME: name}),
            "spec": _storage(vol.size_gb),
        }
        for name, svc in sorted(spec.app.services.items())
        for path, vol in sorted(svc.volumes.items())
    ]


def _env(values: dict[str, str]) -> list[Obj]:
    return [{"name": k, "value": v} for k, v in sorted(values.items())]


def accessory_container(spec: r.TenantSpec, name: str, acc: Accessory) -> Obj:
    _, tmp_mount = r._tmp_volume()
    probe: Obj = {"exec": {"command": list(acc.health)}} if acc.health else {"tcpSocket": {"port": "main"}}
    c: Obj = {
        "name": name,
        "image": acc.image,
        "imagePullPolicy": "Always",
        "env": _env(acc.env),
        "ports": [{"name": "main", "containerPort": acc.port, "protocol": "TCP"}],
        "resources": r.resources_block(acc.resources),
        "securityContext": r.container_security_context(),
        "readinessProbe": {**probe, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {**probe, "initialDelaySeconds": 30, "periodSeconds": 20, "timeoutSeconds": 5},
        "volumeMounts": [
            tmp_mount,
            *({"name": _claim_template_name(p), "mountPath": p} for p in sorted(acc.volumes)),
        ],
    }
    if acc.secret_env:
        c["envFrom"] = [{"secretRef": {"name": accessory_secret_name(name)}}]
    if acc.command:
        c["command"] = list(acc.command)
    return c


def accessory_statefulset(spec: r.TenantSpec, name: str, acc: Accessory) -> Obj:
    """One replica; runs as a non-root UID (restricted profile), its volumes made writable by fsGroup.
    Images whose entrypoint insists on root do not run here (their docs usually name a UID to use)."""
    body: Obj = {
        "serviceName": name,
        "replicas": 1,
        "selector": {"matchLabels": r.accessory_selector(spec, name)},
        "template": {
            "metadata": {"labels": _accessory_labels(spec, name)},
            "spec": r.pod_spec(spec, [accessory_container(spec, name, acc)], terminationGracePeriodSeconds=60),
        },
    }
    if acc.volumes:
        body["volumeClaimTemplates"] = [
            {"metadata": {"name": _claim_template_name(p)}, "spec": _storage(v.size_gb)}
            for p, v in sorted(acc.volumes.items())
        ]
    return {"metadata": r.meta(name, spec.namespace, spec, **{r.NAME: name, r.ROLE: "data"}), "spec": body}


def accessory_service(spec: r.TenantSpec, name: str, acc: Accessory) -> Obj:
    return {
        "metadata": r.meta(name, spec.namespace, spec, **{r.NAME: name}),
        "spec": {
            "type": "ClusterIP",
            "selector": r.accessory_selector(spec, name),
            "ports": [{"name": "main", "port": acc.port, "targetPort": "main", "protocol": "TCP"}],
        },
    }


def accessory_host(spec: r.TenantSpec, name: str) -> str:
    return f"{name}.{spec.namespace}.svc.cluster.local"


# ---------------------------------------------------------------------------------------
# CronJobs


def cronjob(spec: r.TenantSpec, name: str, schedule: str, pod: Obj, deadline_s: int, role: str = "app") -> Obj:
    """A CronJob that never overlaps itself, in UTC, whose failed runs stay visible (history,
    exit code in the Job's status) instead of being retried into success. `role` picks the
    NetworkPolicies its pods fall under (`k8s.network_policies`)."""
    labels = {r.NAME: name, r.INSTANCE: spec.tenant.name, r.PART_OF: spec.app.name, r.ROLE: role}
    return {
        "metadata": r.meta(name, spec.namespace, spec, **{r.NAME: name}),
        "spec": {
            "schedule": schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": STARTING_DEADLINE_S,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 0,
                    "activeDeadlineSeconds": deadline_s,
                    "template": {"metadata": {"labels": labels}, "spec": {**pod, "restartPolicy": "Never"}},
                }
            },
        },
    }


def job_cronjobs(spec: r.TenantSpec) -> list[Obj]:
    """`ladder:app.jobs`: the service's image, the app's ConfigMap and Secret, restricted pods."""
    out = []
    for name, job in sorted(spec.app.jobs.items()):
        svc = spec.app.services[job.service]
        pod = r.pod_spec(spec, [r.container(spec, "job", svc, list(job.command), service=job.service)])
        out.append(cronjob(spec, f"job-{name}", job.schedule, pod, job.timeout))
    return out


# rclone's s3 `provider` per endpoint host (its per-provider quirks); any other endpoint is
# "Other" ("Any other S3 compatible provider"), no endpoint is AWS.
_S3_PROVIDERS = (("digitaloceanspaces.com", "DigitalOcean"), ("your-objectstorage.com", "Hetzner"))


def s3_provider(endpoint: str | None) -> str:
    if endpoint is None:
        return "AWS"
    host = urlsplit(endpoint).hostname or ""
    return next((p for suffix, p in _S3_PROVIDERS if host == suffix or host.endswith("." + suffix)), "Other")


def _option(remote: str, option: str) -> str:
    """rclone's `RCLONE_CONFIG_` + remote + `_` + option, upper case (rclone docs, "Config file")."""
    return f"RCLONE_CONFIG_{remote}_{option}".upper()


def rclone_env(target: BackupTarget) -> dict[str, str]:
    """The two remotes without their secrets: an s3 remote on the bucket and a crypt remote on it.

    Filename encryption is off: names are timestamps and owners already readable in the
    prefix, and plain names keep a bucket listing, lifecycle rules and picking the newest
    archive usable without the key. Contents are what is sealed. password2 (the scrypt salt) stays unset:
    the salt guards weak passphrases against precomputed tables, and the passphrase is
    required to be long and random; one value is one thing fewer to lose for a restore.
    """
    env = {
        _option(STORE_REMOTE, "type"): "s3",
        _option(STORE_REMOTE, "provider"): s3_provider(target.endpoint),
        _option(STORE_REMOTE, "region"): target.region,
        _option(STORE_REMOTE, "env_auth"): "false",
        # The key may lack CreateBucket; the bucket exists (Ladder's or yours).
        _option(STORE_REMOTE, "no_check_bucket"): "true",
        _option(CRYPT_REMOTE, "type"): "crypt",
        _option(CRYPT_REMOTE, "remote"): f"{STORE_REMOTE}:{target.bucket}",
        _option(CRYPT_REMOTE, "filename_encryption"): "off",
    }
    if target.endpoint:
        env[_option(STORE_REMOTE, "endpoint")] = target.endpoint
    return env


# The s3 remote's two secret options (rclone names), in the Secret and the restore plan.
STORE_REMOTE_KEYS = (_option(STORE_REMOTE, "access_key_id"), _option(STORE_REMOTE, "secret_access_key"))


def backup_secret_data(access_key_id: T, secret_access_key: T, passphrase: T) -> dict[str, T]:
    """The tenant's backup Secret: the bucket keys as rclone options and the crypt passphrase."""
    return {STORE_REMOTE_KEYS[0]: access_key_id, STORE_REMOTE_KEYS[1]: secret_access_key, KEY_VAR: passphrase}


def _uploader(target: BackupTarget, prefix: str, ext: str) -> Obj:
    env = {
        **rclone_env(target),
        "ARCHIVE": ARCHIVE,
        "PREFIX": prefix,
        "EXT": ext,
        "HOME": "/tmp",
    }
    return {
        "name": "upload",
        "image": versions.RCLONE_IMAGE,
        "imagePullPolicy": "Always",
        "command": ["/bin/sh", "-c", UPLOAD_SCRIPT],
        "env": _env(env),
        "envFrom": [{"secretRef": {"name": BACKUP_CREDENTIALS}}],
        "resources": r.resources_block(BACKUP_RESOURCES),
        "securityContext": r.container_security_context(),
        "volumeMounts": [{"name": "backup", "mountPath": "/backup"}, {"name": "tmp", "mountPath": "/tmp"}],
    }


def _tar(paths: list[str], mounts: list[Obj]) -> Obj:
    return {
        "name": "archive",
        "image": versions.BUSYBOX_IMAGE,
        "imagePullPolicy": "Always",
        "command": ["tar", "czf", ARCHIVE, "-C", "/", *(p.lstrip("/") for p in paths)],
        "resources": r.resources_block(BACKUP_RESOURCES),
        "securityContext": r.container_security_context(),
        "volumeMounts": [{"name": "backup", "mountPath": "/backup"}, *mounts],
    }


def _backup_pod(
    spec: r.TenantSpec, init: Obj, target: BackupTarget, owner: str, ext: str, claims: list[Obj], size_gb: int
) -> Obj:
    return _sealing_pod(spec, init, target, f"{target.prefix}/{owner}", ext, claims, size_gb)


def _sealing_pod(
    spec: r.TenantSpec, init: Obj, target: BackupTarget, prefix: str, ext: str, claims: list[Obj], size_gb: int
) -> Obj:
    """`init` leaves /backup/archive in the scratch emptyDir; the uploader seals it to <prefix>/."""
    scratch = {"name": "backup", "emptyDir": {"sizeLimit": f"{max(1, size_gb)}Gi"}}
    return r.pod_spec(
        spec,
        [_uploader(target, prefix, ext)],
        extra_volumes=[scratch, *claims],
        initContainers=[init],
    )


def _beside(selector: dict[str, str]) -> Obj:
    """Required affinity to the pod that has the ReadWriteOnce claim attached."""
    return {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": selector}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    }


def _read_only_claims(pairs: list[tuple[str, str, str]]) -> tuple[list[Obj], list[Obj]]:
    """(volume name, claim, mount path) -> pod volumes and read-only mounts."""
    volumes = [{"name": v, "persistentVolumeClaim": {"claimName": c, "readOnly": True}} for v, c, _ in pairs]
    mounts = [{"name": v, "mountPath": m, "readOnly": True} for v, _, m in pairs]
    return volumes, mounts


def backup_cronjobs(spec: r.TenantSpec, target: BackupTarget) -> list[Obj]:
    """A tar (or dump) + upload CronJob per service with volumes and per accessory with `backup`."""
    if spec.backup_schedule is None:
        return []
    schedule = spec.backup_schedule
    out: list[Obj] = []
    for name, svc in sorted(spec.app.services.items()):
        if not svc.volumes:
            continue
        pairs = [(f"v-{volume_slug(p)}", r.service_pvc_name(name, p), p) for p in sorted(svc.volumes)]
        volumes, mounts = _read_only_claims(pairs)
        size = sum(v.size_gb for v in svc.volumes.values())
        pod = _backup_pod(spec, _tar(sorted(svc.volumes), mounts), target, name, "tar.gz", volumes, size)
        pod["affinity"] = _beside(r.selector(spec, name))
        out.append(cronjob(spec, f"backup-{name}", schedule, pod, BACKUP_DEADLINE_S))
    for name, acc in spec.accessories:
        if acc.backup is None:
            continue
        size = sum(v.size_gb for v in acc.volumes.values()) or 1
        if acc.backup.command:
            base = accessory_container(spec, name, acc)
            for key in ("ports", "readinessProbe", "livenessProbe"):
                base.pop(key, None)
            dump = _dump(base, acc.backup.command, _env({**acc.env, **_accessory_address(spec, name, acc)}))
            pod = _backup_pod(spec, dump, target, name, "dump", [], size)
        else:
            paths = acc.backup.paths or []
            pairs = [(f"v-{volume_slug(p)}", accessory_pvc_name(name, p), p) for p in sorted(acc.volumes)]
            volumes, mounts = _read_only_claims(pairs)
            pod = _backup_pod(spec, _tar(paths, mounts), target, name, "tar.gz", volumes, size)
            pod["affinity"] = _beside(r.accessory_selector(spec, name))
        out.append(cronjob(spec, f"backup-{name}", schedule, pod, BACKUP_DEADLINE_S))
    out += postgres_dump_cronjob(spec, target)
    return out


def _dump(base: Obj, argv: tuple[str, ...] | list[str], env: list[Obj]) -> Obj:
    """The dump init container: `base`'s image, env source and security, `argv` (no shell
    parsing: the wrapper passes it as "$@") writing to /backup/archive; /tmp for HOME."""
    return {
        **base,
        "name": "dump",
        "command": ["sh", "-c", DUMP_SCRIPT, "dump", *argv],
        "env": [*env, {"name": "LADDER_ARCHIVE", "value": ARCHIVE}],
        "volumeMounts": [{"name": "backup", "mountPath": "/backup"}, {"name": "tmp", "mountPath": "/tmp"}],
    }


def _secret_ref(name: str, secret: str, key: str) -> Obj:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def postgres_dump_env(spec: r.TenantSpec) -> list[Obj]:
    """libpq's environment for the tenant's database: the primary through the `-rw` Service
    (a standby's `-ro` may not exist, instances can be 1, and a long dump on a hot standby is
    cancelled by replay conflicts), TLS required (CloudNativePG always serves it), and the
    owner role's name and password from the Secret Ladder bootstraps the Cluster with
    (`bootstrap.initdb.secret`; with it CloudNativePG makes no `<cluster>-app` Secret).
    PGPASSWORD is read by libpq from the environment: never on argv, never in a plain value."""
    plain = {
        "PGHOST": f"{r.POSTGRES_CLUSTER}-rw.{spec.namespace}.svc.cluster.local",
        "PGPORT": str(r.POSTGRES_PORT),
        "PGDATABASE": spec.app.database,
        "PGSSLMODE": "require",
        "HOME": "/tmp",
    }
    return [
        *_env(plain),
        _secret_ref("PGUSER", r.POSTGRES_OWNER_SECRET, "username"),
        _secret_ref("PGPASSWORD", r.POSTGRES_OWNER_SECRET, "password"),
    ]


def postgres_dump_cronjob(spec: r.TenantSpec, target: BackupTarget) -> list[Obj]:
    """The tenant's nightly sealed logical dump, when its Postgres is CloudNativePG's, backups
    run and the stack has an encryption key (`spec.postgres_dump_image` is then the operand
    image: its pg_dump is the server's major, as pg_dump must be at least the server's)."""
    if spec.backup_schedule is None or spec.postgres_dump_image is None or not target.dumps:
        return []
    base = {
        "name": "dump",
        "image": spec.postgres_dump_image,
        "imagePullPolicy": "Always",
        "resources": r.resources_block(BACKUP_RESOURCES),
        "securityContext": r.container_security_context(),
    }
    dump = _dump(base, PG_DUMP_COMMAND, postgres_dump_env(spec))
    prefix = f"{target.dumps}/{PG_DUMP_OWNER}"
    pod = _sealing_pod(spec, dump, target, prefix, "dump", [], spec.postgres_storage_gb)
    return [cronjob(spec, PG_DUMP_JOB, spec.backup_schedule, pod, BACKUP_DEADLINE_S, role=r.BACKUP_ROLE)]


def _accessory_address(spec: r.TenantSpec, name: str, acc: Accessory) -> dict[str, str]:
    names = accessory_env_names(name)
    return {names["HOST"]: accessory_host(spec, name), names["PORT"]: str(acc.port)}


# ---------------------------------------------------------------------------------------
# what the quota must hold


def _larger(a: Resources, b: Resources) -> Resources:
    """A pod with an init container asks the larger of the two (admission takes the max)."""
    return Resources(
        cpu=f"{max(cpu_millis(a.cpu), cpu_millis(b.cpu))}m",
        memory=f"{max(memory_mb(a.memory), memory_mb(b.memory))}Mi",
    )


def extra_pods(spec: r.TenantSpec) -> list[tuple[Resources, int]]:
    """(requests, pods) of accessories, app jobs and backups: one pod each at a time
    (StatefulSet of one; CronJobs with `concurrencyPolicy: Forbid`)."""
    pods: list[tuple[Resources, int]] = [(acc.resources, 1) for _, acc in spec.accessories]
    pods += [(spec.app.services[job.service].resources, 1) for job in spec.app.jobs.values()]
    if spec.backup_schedule is not None:
        pods += [(BACKUP_RESOURCES, 1) for svc in spec.app.services.values() if svc.volumes]
        for _, acc in spec.accessories:
            if acc.backup is not None:
                pods.append((_larger(acc.resources, BACKUP_RESOURCES) if acc.backup.command else BACKUP_RESOURCES, 1))
        if spec.postgres_dump_image is not None:
            pods.append((BACKUP_RESOURCES, 1))
    return pods


def extra_volumes(spec: r.TenantSpec) -> tuple[int, int]:
    """(claims, GB) of service and accessory volumes."""
    sizes = [v.size_gb for svc in spec.app.services.values() for v in svc.volumes.values()]
    sizes += [v.size_gb for _, acc in spec.accessories for v in acc.volumes.values()]
    return len(sizes), sum(sizes)
