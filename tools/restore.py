"""`python -m tools.restore STACK [--from NAME] [--at TIME]`: print the exact restore steps.

It reads the stack file, validates it like the program does, and renders the commands
for the stack's rung (local, vps, cluster with CloudNativePG or a managed database). It
never connects anywhere and never runs them: a human runs them, in order, reading along.
See docs/operations.md for the runbook around them.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import yaml

from components import backup_buckets
from components.render import backup as b
from components.render import k8s_extras as x
from components.render.sudo import ADMIN_USER
from components.settings import NAMESPACE, ConfigError, Settings, backs_up_archives, parse_settings
from tools.harness import placeholder_secrets, stack_config

if TYPE_CHECKING:
    from components.render.k8s import TenantSpec


def load_stack_settings(stack: str, overrides: Mapping[str, Any] | None = None) -> Settings:
    config = stack_config(stack)
    config.update(overrides or {})
    placeholders = placeholder_secrets(config)
    config.update(placeholders)
    prefix = f"{NAMESPACE}:"
    raw: dict[str, Any] = {}
    for key, value in config.items():
        if not key.startswith(prefix):
            continue
        name, _, path = key[len(prefix) :].partition(".")
        if path:
            node = raw.setdefault(name, {})
            *parents, leaf = path.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        else:
            raw[name] = value
    return parse_settings(raw, secret_keys={key.split(".", 1)[0] for key in placeholders})


def _db(s: Settings) -> str:
    return s.app.database


def _local(s: Settings, stack: str, source: str | None) -> list[str]:
    container = f"{s.app.name}-{stack}-postgres"
    dump = source or f"{s.app.name}-{stack}.dump"
    q = shlex.quote
    return [
        "# local rung: no scheduled backups; restore a custom-format dump file you made or copied.",
        f"# make one:  docker exec {container} pg_dump --format=custom --no-owner -U {_db(s)} -d {_db(s)} > {q(dump)}",
        f"docker exec -i {container} pg_restore --clean --if-exists --no-owner --single-transaction "
        f"-U {_db(s)} -d {_db(s)} < {q(dump)}",
    ]


def _vps(s: Settings, stack: str, source: str | None) -> list[str]:
    if s.backups is None:
        return _no_backups(stack)
    target = shlex.quote(source) if source else "latest"
    encrypted = "backup" + b.ENCRYPTED_SUFFIX
    find, login = _vps_host(s, stack)
    return [
        f"# vps rung: pg_dump archives in s3://{s.backups.bucket}/{s.app.name}/{stack}/postgres/, "
        f"encrypted to {s.backups.age_recipient}",
        f"# recovery point: the last successful run of '{s.backups.schedule}' "
        f"(at most {b.schedule_interval_hours(s.backups.schedule):g}h of writes lost)",
        *find,
        f"ssh {login} sudo {b.RESTORE_SCRIPT_PATH} --list",
        "# 1. fetch the encrypted dump (safe to hold anywhere)",
        f"ssh {login} sudo {b.RESTORE_SCRIPT_PATH} --fetch {target} > {encrypted}",
        "# 2. decrypt HERE with the private key you made with age-keygen (never copy it to a server),",
        "#    and stream the plain dump to the server; LADDER_AGE_KEY is that key file",
        f'age -d -i "${{LADDER_AGE_KEY:?path of your age private key}}" {encrypted}'
        f" | ssh {login} sudo {b.RESTORE_SCRIPT_PATH} --stdin",
        "# the script takes a safety dump, stops the app services, restores in one transaction, starts them",
        f"curl -fsS https://{s.public_host}{_health(s)}",
    ]


def _vps_host(s: Settings, stack: str) -> tuple[list[str], str]:
    """How to find the data host, and the SSH login to it."""
    if s.provider == "existing" and s.vps.hosts:
        host = s.vps.hosts[-1]
        login = f"{host.user}@{host.address}"
        return [f"# data host: {login} (ladder:vps.hosts)"], login
    which = "the data server (last IP)" if s.vps.server_count > 1 else "the server"
    return [
        f"# data host: {which} of `pulumi stack output serverIps --stack {stack}`",
        f"HOST=$(pulumi stack output serverIps --stack {stack} --json"
        " | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1])')",
    ], f"{ADMIN_USER}@$HOST"  # people log in as admin; the deploy key runs only ladder-apply


def _vps_files(s: Settings, stack: str, find: bool = False) -> list[str]:
    """Service volumes and accessory backups (issue 14): `ladder-restore-files` on their host."""
    from components.render import vps_extras

    found = vps_extras.archives(s, app=True, data=True)
    if not found or s.backups is None:
        return []
    lines, login = _vps_host(s, stack)
    out = lines if find else []
    out += [
        f"# files: service volumes and accessories, archived on the same schedule under s3://{s.backups.bucket}/"
        f"{s.app.name}/{stack}/<name>/ (the data host keeps accessories; the single server keeps volumes)",
        f"ssh {login} sudo {b.RESTORE_FILES_SCRIPT_PATH} --list",
    ]
    for arc in found:
        local = arc.name.replace("/", "-") + ".age"
        fetch = f"ssh {login} sudo {b.RESTORE_FILES_SCRIPT_PATH} {arc.name} --fetch latest > {local}"
        decrypt = f'age -d -i "${{LADDER_AGE_KEY:?path of your age private key}}" {local}'
        if arc.kind == "tar":
            out += [
                f"# {arc.name}: fetch, decrypt here, and the server stops the service, moves the live"
                " files aside, unpacks, starts it",
                fetch,
                f"{decrypt} | ssh {login} sudo {b.RESTORE_FILES_SCRIPT_PATH} {arc.name} --stdin",
            ]
        else:
            out += [
                f"# {arc.name}: a dump: fetch, decrypt here, and feed it to the store's own restore tool",
                fetch,
                f"{decrypt} | gunzip -c > {arc.name.replace('/', '-')}.dump",
            ]
    return out


def _health(s: Settings) -> str:
    routed = s.app.routed_services
    return next(iter(routed.values())).health_path if routed else "/"


def _no_backups(stack: str) -> list[str]:
    return [
        f"# stack {stack} has no ladder:backups configured: there is nothing to restore from.",
        f"pulumi config set --stack {stack} --path 'ladder:backups.bucket' <bucket>",
        f"pulumi config set --stack {stack} --path 'ladder:backups.endpoint' https://<region>.<provider-endpoint>",
        f"pulumi config set --stack {stack} --secret --path 'ladder:backups.accessKeyId' <key>",
        f"pulumi config set --stack {stack} --secret --path 'ladder:backups.secretAccessKey' <secret>",
    ]


def cnpg_names(s: Settings) -> tuple[str, str]:
    """(namespace, Cluster name) the cluster rung gives the first tenant's CloudNativePG cluster."""
    from components.render.k8s import POSTGRES_CLUSTER, namespace_name

    return namespace_name(s.app.name, s.effective_tenants[0].name), POSTGRES_CLUSTER


def cnpg_restore_manifest(s: Settings, stack: str, source: str | None = None, at: str | None = None) -> dict[str, Any]:
    """The recovery Cluster: the backup's major version, the live cluster's resources,
    the tenant's labels, and its own archive (`serverName`) beside the origin's."""
    from components import versions
    from components.cluster.stack import tenant_specs
    from components.render.k8s import POSTGRES_CLUSTER, meta

    assert s.backups is not None
    spec = tenant_specs(s)[0]
    args = _cnpg_args(s, spec, stack)
    restored = f"{POSTGRES_CLUSTER}-restore"
    return {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": meta(restored, spec.namespace, spec),
        "spec": b.cnpg_recovery_cluster_spec(
            args,
            restored,
            instances=1,
            storage_gb=s.postgres.storage_gb,
            image_name=versions.CNPG_POSTGRES_IMAGES[s.postgres.version],
            target_time=at,
            backup_id=source,
        ),
    }


def _cluster_operator(s: Settings, stack: str, source: str | None, at: str | None) -> list[str]:
    if s.backups is None:
        return _no_backups(stack)
    namespace, cluster = cnpg_names(s)
    manifest = cnpg_restore_manifest(s, stack, source, at)
    restored = manifest["metadata"]["name"]
    k = f"kubectl --kubeconfig kubeconfig-{stack} -n {namespace}"
    db = _db(s)
    return [
        "# cluster rung, CloudNativePG: base backups + continuous WAL in the object store, per tenant:",
        *_cnpg_archives(s, stack),
        "# recovery point: the last archived WAL segment (minutes); --at TIME restores to a point in time",
        f"# the steps below restore {namespace}; the recovery Cluster reads through that namespace's ObjectStore",
        f"pulumi stack output kubeconfig --stack {stack} --show-secrets > kubeconfig-{stack}",
        f"{k} get backups.postgresql.cnpg.io",
        "# 1. recover into a NEW cluster (CloudNativePG never restores in place); the tenant's quota",
        "#    keeps room for it and its NetworkPolicies admit every CloudNativePG pod:",
        f"cat > {restored}.yaml <<'YAML'",
        yaml.safe_dump(manifest, sort_keys=False).rstrip(),
        "YAML",
        f"{k} apply -f {restored}.yaml",
        f"{k} wait --for=condition=Ready cluster.postgresql.cnpg.io/{restored} --timeout=30m",
        "# 2. copy the recovered data into the live cluster (keeps Pulumi's resources and the app's URL):",
        f"PRIMARY=$({k} get cluster.postgresql.cnpg.io {cluster} -o jsonpath='{{.status.currentPrimary}}')",
        f"{k} scale deployment --all --replicas=0  # stop writers; the next `pulumi up` restores replicas",
        "#    objects are created as the app's role (--role), so the app owns its tables again",
        f"{k} exec {restored}-1 -c postgres -- pg_dump --format=custom --no-owner --no-privileges -d {db} "
        f'| {k} exec -i "$PRIMARY" -c postgres -- pg_restore --clean --if-exists --no-owner --no-privileges'
        f" --role={db} --single-transaction -d {db}",
        f"pulumi up --stack {stack} --yes  # puts the app's replicas back",
        f"{k} delete cluster.postgresql.cnpg.io {restored}",
    ]


def _cnpg_args(s: Settings, spec: TenantSpec, stack: str) -> b.CnpgBackupArgs:
    """Where the rung sends this tenant's CloudNativePG backups (its own bucket where Ladder minted it a key)."""
    from components.render.k8s import POSTGRES_CLUSTER

    assert s.backups is not None
    bucket = backup_buckets.tenant_backup_bucket(s, spec.tenant.name)
    return b.cnpg_backup_args(s.backups, spec.namespace, POSTGRES_CLUSTER, stack, bucket)


def _cnpg_archives(s: Settings, stack: str) -> list[str]:
    """One comment line per tenant: where its CloudNativePG archive is."""
    from components.cluster.stack import tenant_specs

    lines = []
    for spec in tenant_specs(s, stack=stack):
        args = _cnpg_args(s, spec, stack)
        lines.append(f"#   {spec.namespace}: s3://{args.bucket}/{args.prefix}/ (ObjectStore {args.store_name})")
    return lines


def _config_get(stack: str, key: str) -> str:
    """`pulumi config get` decrypts a secret value itself; it lands in a variable, never a file."""
    return f"\"$(pulumi config get --stack {stack} --path 'ladder:backups.{key}')\""


def _cluster_files(s: Settings, stack: str) -> list[str]:
    """Service volumes and accessories (issue 14), sealed by rclone crypt in the backup pod:
    fetched and decrypted on the operator's machine with the same two rclone remotes."""
    if s.backups is None or not backs_up_archives(s):
        return []
    session, tenants = _sealed_tenants(s, stack)
    owners = [(n, "deployment", "tar.gz") for n, svc in sorted(s.app.services.items()) if svc.volumes]
    owners += [
        (n, "statefulset", "dump" if a.backup.command else "tar.gz")
        for n, a in sorted(s.accessories.items())
        if a.backup is not None
    ]
    out = [
        f"# files: service volumes and accessories, sealed in the backup pod by rclone crypt (key: ladder:backups."
        f"encryptionKey), stored as s3://<tenant's bucket>/{stack}/<namespace>/volumes/<name>/<UTC time>.<ext>"
        f"{x.SEALED_SUFFIX}",
        *session,
    ]
    for spec, _, switch in tenants:
        out += switch
        for name, kind, ext in owners:
            folder = f"{x.CRYPT_REMOTE}:{stack}/{spec.namespace}/volumes/{name}"
            local = f"{spec.namespace}-{name}.{ext}"
            out += [
                f"# {spec.namespace}/{name}: the newest archive, decrypted here (for an older one set NAME to a"
                " name `rclone lsl` shows)",
                *_newest(folder, local),
            ]
            k = f"kubectl --kubeconfig kubeconfig-{stack} -n {spec.namespace}"
            if ext == "tar.gz":
                out.append(
                    f"{k} exec -i {kind}/{name} -c {name} -- tar xzf - -C / < {local}"
                    "  # into the live volume (needs tar in the image)"
                )
            else:
                out.append(f"#   {local} is the accessory's own dump: feed it to its restore tool")
    out.append(_RCLONE_UNSET)
    return out


_RCLONE_SECRETS = (*x.STORE_REMOTE_KEYS, f"RCLONE_CONFIG_{x.CRYPT_REMOTE}_PASSWORD")
_RCLONE_UNSET = f"unset {' '.join(_RCLONE_SECRETS)}"


def _rclone_session(stack: str, env: Mapping[str, str]) -> list[str]:
    """The kubeconfig, the two rclone remotes (plain values, as the CronJobs have them) and
    the three secrets read from the stack config straight into this shell (no file)."""
    q = shlex.quote
    password = _RCLONE_SECRETS[2]
    return [
        "# the bucket keys are YOURS (ladder:backups): on DigitalOcean they must reach every tenant's bucket",
        "# run on YOUR machine with rclone (any release since 1.60: the crypt format has not changed); the remotes",
        "# come from the environment only, the keys from the stack config straight into this shell (no file)",
        f"pulumi stack output kubeconfig --stack {stack} --show-secrets > kubeconfig-{stack}",
        *(f"export {k}={q(v)}" for k, v in sorted(env.items())),
        f"{x.STORE_REMOTE_KEYS[0]}={_config_get(stack, 'accessKeyId')}",
        f"{x.STORE_REMOTE_KEYS[1]}={_config_get(stack, 'secretAccessKey')}",
        # pipefail: a failed `config get` must not leave rclone obscuring an empty line.
        f'{password}="$(set -o pipefail; pulumi config get --stack {stack} --path '
        "'ladder:backups.encryptionKey' | rclone obscure -)\"",
        f"export {' '.join(_RCLONE_SECRETS)}",
    ]


def _sealed_tenants(s: Settings, stack: str) -> tuple[list[str], list[tuple[TenantSpec, x.BackupTarget, list[str]]]]:
    """The rclone session (its remotes on the first tenant's bucket), then per tenant its
    archive target and the exports that move the remotes to its bucket where that differs
    from the previous tenant's."""
    from components.cluster.stack import archive_target, tenant_specs

    targets = [(spec, archive_target(s, stack, spec.tenant.name)) for spec in tenant_specs(s, stack=stack)]
    env = x.rclone_env(targets[0][1])
    session = _rclone_session(stack, env)
    tenants = []
    for spec, target in targets:
        own = x.rclone_env(target)
        moved = sorted((k, v) for k, v in own.items() if env.get(k) != v)
        switch = [f"export {k}={shlex.quote(v)}  # {spec.namespace}'s bucket" for k, v in moved]
        tenants.append((spec, target, switch))
        env = own
    return session, tenants


def _newest(folder: str, local: str) -> list[str]:
    """List a sealed folder, pick its newest object (names are UTC times) and decrypt it here."""
    return [
        f"rclone lsl {folder}/",
        f'NAME="$(rclone lsf --files-only {folder}/ | sort | tail -n 1)"',
        f'rclone copyto "{folder}/${{NAME:?no archive in {folder}}}" {local}',
    ]


def _cluster_dumps(s: Settings, stack: str) -> list[str]:
    """The sealed logical dumps (`postgres-dump` CronJobs): decrypted on the operator's machine,
    then fed to `pg_restore` in the tenant's primary through `kubectl exec -i`: the operand
    image's own pg_restore (the server's major, never older than the dump), over the local
    socket as the instance's user, so no password, no port-forward and no local Postgres tools."""
    from components.render.k8s import POSTGRES_CLUSTER

    # Settled by the config's shape, not by its secrets (the plan never holds them): the
    # CronJob runs where the keys and `encryptionKey` are set (`stack.dumps_postgres`).
    if s.backups is None or s.postgres.mode != "operator":
        return []
    session, tenants = _sealed_tenants(s, stack)
    db = _db(s)
    out = [
        f"# postgres dumps: pg_dump --format=custom per tenant on '{s.backups.schedule}', "
        f"sealed in the pod by rclone crypt, stored as s3://<tenant's bucket>/{stack}/<namespace>/dumps/"
        f"{x.PG_DUMP_OWNER}/<UTC time>.dump{x.SEALED_SUFFIX}",
        "# an alternative to the recovery Cluster above when the object store or Barman's archive is unusable:",
        "# no point in time, up to one schedule interval of writes lost; restores into the LIVE database;",
        "# they exist once ladder:backups.encryptionKey is set (without it Postgres has Barman's archive only)",
        *session,
    ]
    for spec, target, switch in tenants:
        out += switch
        local = f"{spec.namespace}-{x.PG_DUMP_OWNER}.dump"
        k = f"kubectl --kubeconfig kubeconfig-{stack} -n {spec.namespace}"
        out += [
            f"# {spec.namespace}: the newest dump, decrypted here (for an older one set NAME to a name `rclone lsl`"
            " shows)",
            *_newest(f"{x.CRYPT_REMOTE}:{target.dumps}/{x.PG_DUMP_OWNER}", local),
            f"PRIMARY=$({k} get cluster.postgresql.cnpg.io {POSTGRES_CLUSTER}"
            " -o jsonpath='{.status.currentPrimary}')",
            f"{k} scale deployment --all --replicas=0  # stop writers; the next `pulumi up` restores replicas",
            f'{k} exec -i "$PRIMARY" -c postgres -- pg_restore --clean --if-exists --no-owner --no-privileges'
            f" --role={db} --single-transaction -d {db} < {local}",
        ]
    out += [f"pulumi up --stack {stack} --yes  # puts the app's replicas back", _RCLONE_UNSET]
    return out


def _cluster_managed(s: Settings, stack: str, source: str | None, at: str | None) -> list[str]:
    when = at or source or "<RFC3339 time within the provider's retention>"
    return [
        "# managed database (DigitalOcean): the provider's daily backups + point-in-time recovery (7 days)",
        "# recovery point: seconds (WAL shipped by the provider); restore = fork a new cluster",
        "doctl databases list",
        f"doctl databases create {s.app.name}-{stack}-restore --engine pg "
        f"--restore-from-cluster-name <current cluster name> --restore-from-timestamp {shlex.quote(when)}",
        "# then move the data or the app over: pg_dump from the fork, pg_restore into the live cluster",
        "# (its connection string: `doctl databases connection <fork id>`), or repoint ladder:postgres at the fork",
    ]


def restore_steps(s: Settings, stack: str, source: str | None = None, at: str | None = None) -> list[str]:
    """The commands, one per line (comments start with '#'), for this stack's rung and database mode."""
    header = [f"# restore plan for stack {stack} (phase {s.phase}, provider {s.provider}, postgres {s.postgres.mode})"]
    mode = s.postgres.mode
    # Service volumes and accessories (their own host lookup when no Postgres step precedes them).
    files = _vps_files(s, stack, find=True) if s.phase == "vps" else []
    if mode in ("none", "external"):
        return [*header, f"# postgres mode {mode}: Ladder owns no database here; restore it where it lives.", *files]
    if s.phase == "local":
        return header + _local(s, stack, source)
    if s.phase == "vps":
        if mode == "managed":
            return header + _cluster_managed(s, stack, source, at) + files
        return header + _vps(s, stack, source) + _vps_files(s, stack)
    files = _cluster_files(s, stack)
    if mode == "managed":
        return header + _cluster_managed(s, stack, source, at) + files
    return header + _cluster_operator(s, stack, source, at) + _cluster_dumps(s, stack) + files


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.restore", description=__doc__.splitlines()[0])
    parser.add_argument("stack")
    parser.add_argument("--from", dest="source", help="a named backup (vps: file name; CNPG: backup ID)")
    parser.add_argument("--at", help="point in time (RFC 3339) for CNPG or managed databases")
    args = parser.parse_args(argv)
    try:
        settings = load_stack_settings(args.stack)
    except (ConfigError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(restore_steps(settings, args.stack, args.source, args.at)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
