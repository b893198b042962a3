"""Issue 12 item 11, Postgres on the cluster rung: a sealed logical dump per tenant beside Barman.

Render checks (the CronJob only where CloudNativePG, backup keys and `encryptionKey` are all
set; the owner's password only by secretKeyRef; restricted pods; NetworkPolicies that let the
dump pod reach exactly its own Postgres and the bucket's endpoint; the quota's share), and a
real round trip: a local Postgres (Debian's `postgresql`, TLS and scram only) dumped by the
rendered init container command and environment, sealed by the rendered uploader into a
local-directory remote, then the printed restore plan's dump steps run in bash (stand-ins
for `pulumi` and `kubectl`; `kubectl exec` runs the plan's own `pg_restore` here) into a
fresh database, where the row is back.
"""

from __future__ import annotations

import copy
import dataclasses
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components import versions
from components.cluster.stack import archive_target, dumps_postgres, tenant_specs
from components.render import k8s as r
from components.render import k8s_extras as x
from components.settings import parse_settings
from tests.cluster_helpers import BACKUP_SECRETS, BACKUPS, EXTRAS, manifests, production
from tests.conftest import require_tool
from tests.helpers import CRYPT_KEY, SECRET_KEYS, cluster_config
from tests.test_cluster_models import OBJECT_STORE, namespaces, network, pods_of
from tests.test_cluster_tenants import _assert_restricted
from tools.harness import ProgramResult, is_secret, unwrap
from tools.netpol_model import External

TENANTS = ("shop-acme", "shop-globex")


def _dump_jobs(result: ProgramResult) -> dict[str, dict[str, Any]]:
    return {
        m["metadata"]["namespace"]: m for m in manifests(result, "CronJob") if m["metadata"]["name"] == x.PG_DUMP_JOB
    }


def _pod(job: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return pod


def _secret(result: ProgramResult, namespace: str, name: str) -> Any:
    (reg,) = [
        reg
        for reg in result.of_type("kubernetes:core/v1:Secret")
        if unwrap(reg.inputs["metadata"]).get("name") == name
        and unwrap(reg.inputs["metadata"]).get("namespace") == namespace
    ]
    return reg.inputs["stringData"]


# --- when it exists ------------------------------------------------------------------------


def _settings(backups: dict[str, Any] | None, mode: str = "operator", secret_keys: bool = True) -> Any:
    raw = cluster_config(backups=backups) if backups is not None else cluster_config()
    raw["postgres"] = {**raw.get("postgres", {}), "mode": mode}
    keys = SECRET_KEYS if secret_keys else [k for k in SECRET_KEYS if k != "ladder:backups"]
    return parse_settings(raw, keys)


CREDS = {"accessKeyId": "AK", "secretAccessKey": "SK"}


@pytest.mark.parametrize(
    ("backups", "expected"),
    [
        ({**BACKUPS, **CREDS, "encryptionKey": CRYPT_KEY}, True),
        ({**BACKUPS, **CREDS}, False),  # Barman only: no passphrase to seal with
        (dict(BACKUPS), False),  # no keys: no backups at all
        (None, False),
    ],
    ids=["all-set", "no-key", "no-credentials", "no-backups"],
)
def test_the_cronjob_exists_only_when_configured(backups: dict[str, Any] | None, expected: bool) -> None:
    s = _settings(backups)
    assert dumps_postgres(s) is expected
    for spec in tenant_specs(s):
        target = archive_target(s, "production", spec.tenant.name) if s.backups is not None else None
        jobs = x.backup_cronjobs(spec, target) if target is not None else []
        names = [j["metadata"]["name"] for j in jobs]
        assert (x.PG_DUMP_JOB in names) is expected, names
        assert ("allow-backup-egress" in r.network_policies(spec)) is expected


def test_no_dump_for_a_managed_database() -> None:
    s = _settings({**BACKUPS, **CREDS, "encryptionKey": CRYPT_KEY}, mode="managed")
    assert not dumps_postgres(s)
    assert all(spec.postgres_dump_image is None for spec in tenant_specs(s))


def test_one_per_tenant_in_the_program() -> None:
    result = production("extras")
    assert sorted(_dump_jobs(result)) == list(TENANTS)
    assert not _dump_jobs(production("doks"))  # no ladder:backups there


# --- what it renders ---------------------------------------------------------------------


def test_the_dump_runs_pg_dump_from_the_operand_image() -> None:
    for ns, job in _dump_jobs(production("extras")).items():
        pod = _pod(job)
        (dump,) = pod["initContainers"]
        assert dump["image"] == versions.CNPG_POSTGRES_IMAGES["17"]
        assert dump["command"] == ["sh", "-c", x.DUMP_SCRIPT, "dump", "pg_dump", "--format=custom"]
        env = {e["name"]: e for e in dump["env"]}
        assert env["PGHOST"]["value"] == f"postgres-rw.{ns}.svc.cluster.local"
        assert env["PGPORT"]["value"] == "5432" and env["PGDATABASE"]["value"] == "shop"
        assert env["PGSSLMODE"]["value"] == "require"
        (upload,) = pod["containers"]
        assert upload["image"] == versions.RCLONE_IMAGE and upload["command"] == ["/bin/sh", "-c", x.UPLOAD_SCRIPT]
        prefix = {e["name"]: e["value"] for e in upload["env"]}["PREFIX"]
        assert prefix == f"production/{ns}/dumps/postgres"
        assert job["spec"]["schedule"] == BACKUPS["schedule"] and job["spec"]["concurrencyPolicy"] == "Forbid"
        scratch = {v["name"]: v for v in pod["volumes"]}["backup"]
        assert scratch["emptyDir"]["sizeLimit"] == "10Gi"  # the Cluster's storage: a dump is never larger


def test_no_password_in_any_plain_field() -> None:
    """The owner's name and password reach libpq only by secretKeyRef from the Secret the
    Cluster is bootstrapped with; the password is nowhere in the dump's manifest."""
    result = production("extras")
    for ns, job in _dump_jobs(result).items():
        owner = _secret(result, ns, r.POSTGRES_OWNER_SECRET)
        assert is_secret(owner)
        password = unwrap(owner)["password"]
        assert password and password not in json.dumps(job)
        for value in BACKUP_SECRETS.values():
            assert value not in json.dumps(job)
        (dump,) = _pod(job)["initContainers"]
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in dump["env"] if "valueFrom" in e}
        assert refs == {
            "PGUSER": {"name": r.POSTGRES_OWNER_SECRET, "key": "username"},
            "PGPASSWORD": {"name": r.POSTGRES_OWNER_SECRET, "key": "password"},
        }
        assert set(unwrap(owner)) >= {"username", "password"}  # the keys the refs name
        assert "envFrom" not in dump  # the bucket keys and passphrase stay with the uploader
        assert not any("PASSWORD" in arg for arg in dump["command"])


def test_the_pod_passes_the_restricted_profile() -> None:
    for ns, job in _dump_jobs(production("extras")).items():
        pod = _pod(job)
        _assert_restricted(pod, f"{ns}/{x.PG_DUMP_JOB}")
        assert _pod(job)["automountServiceAccountToken"] is False


# --- NetworkPolicy -----------------------------------------------------------------------


def test_the_dump_pod_reaches_its_postgres_and_the_bucket_only() -> None:
    result = production("extras")
    net = network(result)
    spaces = namespaces(result)
    internet = External("internet", "198.51.100.7")
    for ns in TENANTS:
        pods = pods_of(result, ns)
        dump = pods[f"CronJob/{x.PG_DUMP_JOB}"]
        assert dump.labels[r.ROLE] == r.BACKUP_ROLE
        instance = next(p for p in pods.values() if p.labels.get("cnpg.io/podRole") == "instance")
        assert net.allowed(dump, instance, r.POSTGRES_PORT)
        assert net.allowed(dump, OBJECT_STORE, 443)
        assert not net.allowed(dump, instance, r.CNPG_STATUS_PORT)
        assert not net.allowed(dump, internet, 80)
        assert not net.allowed(dump, External("node", "10.0.1.10"), 443)
        assert not net.allowed(dump, External("node", "10.0.1.10"), r.POSTGRES_PORT)
        for name, other in pods.items():  # nothing else in its namespace: app, Valkey, accessories
            if other is dump or "cnpg.io/cluster" in other.labels:
                continue
            for port in (80, 443, 3000, 6379, 7700, 8000, 8080, 27017):
                assert not net.allowed(dump, other, port), (name, port)
            # and nobody else may reach the dump pod
            assert not net.allowed(other, dump, 443), name
        for elsewhere in spaces:
            if elsewhere == ns:
                continue
            for other in pods_of(result, elsewhere).values():
                assert not net.allowed(dump, other, r.POSTGRES_PORT), (ns, other)
                assert not net.allowed(other, instance, r.POSTGRES_PORT), (other, ns)


def test_the_model_sees_a_dump_pod_without_its_policy() -> None:
    """The model can fail: without `allow-backup-egress` default-deny leaves the dump pod
    unable to reach its database or the bucket."""
    result = production("extras")
    objects = [
        m
        for m in manifests(result)
        if not (m["kind"] == "NetworkPolicy" and m["metadata"]["name"] == "allow-backup-egress")
    ]
    from tools.netpol_model import Network

    net = Network.from_manifests(objects, ["kube-system", "cnpg-system", "monitoring", "default"])
    pods = pods_of(result, "shop-acme")
    dump = pods[f"CronJob/{x.PG_DUMP_JOB}"]
    instance = next(p for p in pods.values() if p.labels.get("cnpg.io/podRole") == "instance")
    assert not net.allowed(dump, instance, r.POSTGRES_PORT)
    assert not net.allowed(dump, OBJECT_STORE, 443)


def test_the_bucket_endpoint_port_is_the_one_opened() -> None:
    s = _settings({**BACKUPS, **CREDS, "encryptionKey": CRYPT_KEY, "endpoint": "https://minio.example.com:9000"})
    (spec,) = tenant_specs(s)
    policy = r.network_policies(spec)["allow-backup-egress"]["spec"]
    ports = [p["port"] for rule in policy["egress"] for p in rule["ports"]]
    assert ports == [r.POSTGRES_PORT, 9000]


# --- quota -------------------------------------------------------------------------------


def test_the_quota_counts_the_dump_pod() -> None:
    s = _settings({**BACKUPS, **CREDS, "encryptionKey": CRYPT_KEY})
    (spec,) = tenant_specs(s)
    without = dataclasses.replace(spec, postgres_dump_image=None)
    extra = {k: r.quota_totals(spec)[k] - r.quota_totals(without)[k] for k in r.quota_totals(spec)}
    assert extra == {
        "cpu_req": 100,
        "mem_req": 256,
        "cpu_lim": 400,
        "mem_lim": 512,
        "pods": 1,
        "pvcs": 0,
        "storage_gb": 0,
    }, extra


def test_the_quota_model_admits_the_dump_pod_and_needs_its_share() -> None:
    """The rendered quota admits every pod with the dump CronJob's (tools/quota_model.py counts
    each CronJob once); one pod fewer in `hard` and the model refuses the namespace."""
    from tests.test_cluster_models import _issuers, _overrides, in_namespace
    from tools.quota_model import admission_errors, demand
    from tools.restore import cnpg_restore_manifest, load_stack_settings

    result = production("extras")
    overrides = copy.deepcopy(_overrides(result))  # shares objects with the cached run's config
    del overrides["ladder:accessories"]["mongo"]["secretEnv"]  # its value is not a placeholder; not needed here
    settings = load_stack_settings("production", overrides)
    for ns in TENANTS:
        restore = cnpg_restore_manifest(settings, "production")
        restore["metadata"]["namespace"] = ns  # the runbook's recovery Cluster the quota keeps room for
        objects = [*in_namespace(result, ns), restore]
        (quota,) = [m for m in objects if m["kind"] == "ResourceQuota"]
        d = demand(objects, _issuers(result))
        assert not admission_errors(d, quota), ns
        without = demand([m for m in objects if m["metadata"]["name"] != x.PG_DUMP_JOB], _issuers(result))
        assert d.pods - without.pods == 1 and d.cpu_req - without.cpu_req == 100
        tight = copy.deepcopy(quota)
        tight["spec"]["hard"]["pods"] = str(int(tight["spec"]["hard"]["pods"]) - 1)
        assert any("pods" in e for e in admission_errors(d, tight)), ns


# --- the real round trip -------------------------------------------------------------------

NOBODY = 65534


def _pg_bin(name: str) -> str:
    """Debian keeps initdb/pg_ctl under /usr/lib/postgresql/<major>/bin (not on PATH)."""
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    return require_tool(found, f"{name} (Debian/Ubuntu package `postgresql`)")


def _as_owner(argv: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: drop to nobody when the tests run as root."""
    if os.geteuid() != 0:
        return argv
    return [
        require_tool(shutil.which("setpriv"), "setpriv"),
        f"--reuid={NOBODY}",
        f"--regid={NOBODY}",
        "--clear-groups",
        *argv,
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def postgres() -> Iterator[dict[str, str]]:
    """A throwaway server: TLS on, `hostssl ... scram-sha-256` the only TCP rule, so the dump
    must use TLS and the password; the socket (trust) stands in for `kubectl exec` into the
    primary, where the instance's own user connects without a password."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    openssl = require_tool(shutil.which("openssl"), "openssl")
    base = Path(tempfile.mkdtemp(prefix="ladder-pg-", dir="/tmp"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        for p in (base, sock):
            os.chown(p, NOBODY, NOBODY)
    port = _free_port()
    env = {"PATH": os.environ["PATH"], "LC_ALL": "C", "HOME": str(base)}
    try:
        subprocess.run(
            _as_owner([initdb, "-D", str(data), "-U", "postgres", "-E", "UTF8", "--locale=C", "--auth=trust"]),
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            _as_owner(
                [
                    openssl,
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=localhost",
                    "-keyout",
                    str(data / "server.key"),
                    "-out",
                    str(data / "server.crt"),
                ]
            ),
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        (data / "server.key").chmod(0o600)
        (data / "pg_hba.conf").write_text("local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n")
        options = f"-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={sock} -c ssl=on"
        subprocess.run(
            _as_owner([pg_ctl, "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"]),
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        yield {"port": str(port), "socket": str(sock), "base": str(base)}
    finally:
        subprocess.run(
            _as_owner([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]),
            env=env,
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(base, ignore_errors=True)


def _psql(server: dict[str, str], sql: str, db: str = "postgres", **variables: str) -> str:
    psql = require_tool(shutil.which("psql"), "psql (Debian/Ubuntu package `postgresql-client`)")
    args = [psql, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", server["socket"], "-p", server["port"], "-U", "postgres"]
    for k, v in variables.items():
        args += ["-v", f"{k}={v}"]
    run = subprocess.run([*args, "-d", db], input=sql, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def _container_env(container: dict[str, Any], secrets: dict[str, dict[str, str]]) -> dict[str, str]:
    """A container's environment as the kubelet builds it: plain values, secretKeyRefs, envFrom."""
    env: dict[str, str] = {}
    for ref in container.get("envFrom", []):
        env.update(secrets[ref["secretRef"]["name"]])
    for e in container["env"]:
        if "valueFrom" in e:
            key = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = secrets[key["name"]][key["key"]]
        else:
            env[e["name"]] = e["value"]
    return env


def _stub(path: Path, body: str) -> None:
    path.write_text(body)
    path.chmod(0o755)


@pytest.mark.parametrize("keyed", [False, True], ids=["shared-bucket", "bucket-per-tenant"])
def test_round_trip_dump_seal_decrypt_restore(postgres: dict[str, str], tmp_path: Path, keyed: bool) -> None:
    """`keyed`: Ladder creates the bucket on DigitalOcean, so each tenant's dump goes to its own
    bucket with its own key, and the plan must read each from the right one."""
    from tests.cluster_helpers import TENANT_KEYS, tenant_keys
    from tools import restore

    require_tool(shutil.which("rclone"), "rclone (Debian/Ubuntu package `rclone`)")
    _pg_bin("pg_dump")
    _pg_bin("pg_restore")
    result = tenant_keys() if keyed else production("extras")
    store, home, bin_dir, work = (tmp_path / d for d in ("store", "home", "bin", "work"))
    for d in (store, home, bin_dir, work):
        d.mkdir()
    db = "shop"
    rows: dict[str, str] = {}
    for ns, job in sorted(_dump_jobs(result).items()):
        secrets = {
            r.POSTGRES_OWNER_SECRET: unwrap(_secret(result, ns, r.POSTGRES_OWNER_SECRET)),
            x.BACKUP_CREDENTIALS: unwrap(_secret(result, ns, x.BACKUP_CREDENTIALS)),
        }
        owner = secrets[r.POSTGRES_OWNER_SECRET]
        # The tenant's database as CloudNativePG bootstraps it: owned by the role in the Secret.
        _psql(postgres, f"DROP DATABASE IF EXISTS {db}; DROP ROLE IF EXISTS {db};")
        _psql(postgres, "CREATE ROLE " + db + " LOGIN PASSWORD :'pw';", pw=owner["password"])
        _psql(postgres, f"CREATE DATABASE {db} OWNER {db};")
        rows[ns] = f"order for {ns} 'quoted' ünïcode"
        _psql(
            postgres,
            f"SET ROLE {db}; CREATE TABLE orders (id int PRIMARY KEY, note text); "
            "INSERT INTO orders VALUES (1, :'note');",
            db=db,
            note=rows[ns],
        )
        pod = _pod(job)
        (dump,) = pod["initContainers"]
        (upload,) = pod["containers"]
        archive = tmp_path / f"{ns}.archive"
        # The init container: its command and env; only the Service's address and the pod's path change.
        env = _container_env(dump, secrets)
        env.update(PGHOST="127.0.0.1", PGPORT=postgres["port"], LADDER_ARCHIVE=str(archive), HOME=str(home))
        env["PATH"] = os.environ["PATH"]
        run = subprocess.run(dump["command"], env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        plain = archive.read_bytes()
        assert plain.startswith(b"PGDMP")  # pg_dump's custom format
        # A wrong password is refused (the dump really authenticated with the Secret's).
        bad = subprocess.run(dump["command"], env={**env, "PGPASSWORD": "wrong"}, capture_output=True, timeout=60)
        assert bad.returncode != 0
        archive.write_bytes(plain)
        # The uploader: as tests/test_cluster_backup_crypt.py runs it, a local directory for the bucket.
        env = _container_env(upload, secrets)
        env.update(RCLONE_CONFIG_BACKUP_TYPE="local", ARCHIVE=str(archive), HOME=str(home), PATH=os.environ["PATH"])
        env["XDG_CONFIG_HOME"] = str(home)
        run = subprocess.run(upload["command"], env=env, cwd=store, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        bucket = f"shop-backups-{ns.removeprefix('shop-')}" if keyed else "shop-backups"
        (sealed,) = (store / bucket / "production" / ns / "dumps" / "postgres").iterdir()
        assert sealed.name.endswith(".dump" + x.SEALED_SUFFIX)
        body = sealed.read_bytes()
        assert body.startswith(b"RCLONE\x00\x00") and b"PGDMP" not in body
        assert rows[ns].encode() not in body

    # Lose the database: a fresh, empty one owned by the app's role.
    _psql(postgres, f"DROP DATABASE {db}; CREATE DATABASE {db} OWNER {db};")

    overrides = copy.deepcopy(TENANT_KEYS if keyed else EXTRAS)
    del overrides["ladder:accessories"]["mongo"]["secretEnv"]
    steps = restore.restore_steps(restore.load_stack_settings("production", overrides), "production")
    start = next(i for i, line in enumerate(steps) if line.startswith("# postgres dumps:"))
    end = next(i for i, line in enumerate(steps) if line.startswith("# files:"))
    section = steps[start:end]
    assert "export RCLONE_CONFIG_BACKUP_TYPE=s3" in section
    script = [
        "set -euo pipefail",
        *("export RCLONE_CONFIG_BACKUP_TYPE=local" if "TYPE=s3" in s else s for s in section),
    ]
    values = {k.rsplit(".", 1)[1]: v for k, v in BACKUP_SECRETS.items()}
    _stub(
        bin_dir / "pulumi",
        '#!/bin/sh\ncase "$*" in\n'
        + "".join(f"  *ladder:backups.{k}*) printf '%s\\n' '{v}' ;;\n" for k, v in values.items())
        + f"  *'stack output kubeconfig'*) echo kubeconfig ;;\n  'up '*) echo \"$*\" >> {work}/pulumi-up ;;\n"
        "  *) exit 3 ;;\nesac\n",
    )
    # kubectl: `get cluster` names the primary; `scale` is recorded; `exec -i POD -c postgres -- CMD`
    # runs CMD here over the socket as the instance's user, then records the restored row per namespace.
    _stub(
        bin_dir / "kubectl",
        f"#!{sys.executable}\n"
        "import os, subprocess, sys\n"
        "args = sys.argv[1:]\n"
        "ns = args[args.index('-n') + 1]\n"
        f"work = {str(work)!r}\n"
        "if 'get' in args:\n"
        "    print('postgres-1'); sys.exit(0)\n"
        "if 'scale' in args:\n"
        "    open(f'{work}/scaled.{ns}', 'w').write(' '.join(args)); sys.exit(0)\n"
        "i = args.index('exec')\n"
        "assert args[i + 1:args.index('--')] == ['-i', 'postgres-1', '-c', 'postgres'], args\n"
        f"env = {{**os.environ, 'PGHOST': {postgres['socket']!r}, 'PGPORT': {postgres['port']!r},\n"
        "       'PGUSER': 'postgres'}\n"
        "code = subprocess.run(args[args.index('--') + 1:], env=env).returncode\n"
        "if code: sys.exit(code)\n"
        "def q(sql):\n"
        "    return subprocess.run(['psql', '-X', '-At', '-c', sql, '-d', 'shop'], env=env, capture_output=True,\n"
        "                          text=True, check=True).stdout.strip()\n"
        "row = q('SELECT note FROM orders WHERE id = 1')\n"
        "owner = q(\"SELECT tableowner FROM pg_tables WHERE tablename = 'orders'\")\n"
        "open(f'{work}/row.{ns}', 'w').write(row + '\\n' + owner)\n",
    )
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home),
        "LC_ALL": "C.UTF-8",
    }
    (tmp_path / "plan.sh").write_text("\n".join(script) + "\n")
    plan = subprocess.run(
        ["bash", str(tmp_path / "plan.sh")], env=env, cwd=store, capture_output=True, text=True, timeout=300
    )
    assert plan.returncode == 0, plan.stderr + plan.stdout
    for ns in TENANTS:
        assert (work / f"row.{ns}").read_text() == f"{rows[ns]}\n{db}", ns  # the row, owned by the app's role
        assert (work / f"scaled.{ns}").exists()
    assert (store / "shop-acme-postgres.dump").read_bytes().startswith(b"PGDMP")
    assert (work / "pulumi-up").read_text().strip() == "up --stack production --yes"
    assert _psql(postgres, "SELECT note FROM orders", db=db) == rows[TENANTS[-1]]
    assert CRYPT_KEY not in "\n".join(steps)
