"""The day-2 backup renderers: VPS scripts and systemd units, CloudNativePG objects."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from components import versions
from components.render import backup as b
from components.settings import parse_settings
from tests.conftest import check_shell_script, require_tool
from tests.helpers import AGE_RECIPIENT, vps_config

ARGS = b.VpsBackupArgs(
    project="shop",
    compose_file="/opt/ladder/shop/compose.yaml",
    database="shop",
    db_user="shop",
    bucket="shop-backups",
    prefix="shop/staging/postgres",
    endpoint="https://fsn1.your-objectstorage.com",
    region="fsn1",
    age_recipient=AGE_RECIPIENT,
    app_services=("api", "web", "worker"),
)


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("0 */6 * * *", ["*-*-* 00,06,12,18:00:00"]),
        ("30 2 * * *", ["*-*-* 02:30:00"]),
        ("0 3 * * 0", ["Sun *-*-* 03:00:00"]),
        ("0 3 * * 7", ["Sun *-*-* 03:00:00"]),
        ("15 4 1 * *", ["*-*-01 04:15:00"]),
        ("0 1 * * 1-5", ["Mon,Tue,Wed,Thu,Fri *-*-* 01:00:00"]),
        ("*/30 * * * *", ["*-*-* *:00,30:00"]),
        ("0 0 1 * 1", ["*-*-01 00:00:00", "Mon *-*-* 00:00:00"]),
    ],
)
def test_cron_to_oncalendar(cron: str, expected: list[str]) -> None:
    assert b.cron_to_oncalendar(cron) == expected


@pytest.mark.parametrize("cron", ["0 */6 * * *", "*/30 * * * *", "0 0 1 * 1", "5 1-10/3 * 2,4 *"])
def test_oncalendar_is_accepted_by_systemd(cron: str) -> None:
    tool = require_tool(shutil.which("systemd-analyze"), "systemd-analyze (systemd, installed with cloud-init)")
    for expr in b.cron_to_oncalendar(cron):
        proc = subprocess.run([tool, "calendar", expr], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("cron", ["61 * * * *", "0 25 * * *", "0 0 0 * *", "0 */0 * * *", "0 0 * *"])
def test_cron_out_of_range_is_refused(cron: str) -> None:
    with pytest.raises(ValueError):
        b.cron_to_oncalendar(cron)


def test_cnpg_schedule_has_seconds_first() -> None:
    assert b.cron_to_cnpg("0 */6 * * *") == "0 0 */6 * * *"


def test_recovery_point_of_default_schedule_is_six_hours() -> None:
    assert b.schedule_interval_hours("0 */6 * * *") == 6
    assert b.schedule_interval_hours("30 2 * * *") == 24


def _check_bash(tmp_path: Path, name: str, text: str, shellcheck: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    check_shell_script(path, shellcheck)


@pytest.mark.parametrize("endpoint", ["https://fsn1.your-objectstorage.com", None])
def test_scripts_are_valid_bash(tmp_path: Path, endpoint: str | None, shellcheck_bin: str) -> None:
    args = b.VpsBackupArgs(**{**ARGS.__dict__, "endpoint": endpoint})
    _check_bash(tmp_path, "backup.sh", b.vps_backup_script(args), shellcheck_bin)
    _check_bash(tmp_path, "restore.sh", b.vps_restore_script(args), shellcheck_bin)
    no_services = b.VpsBackupArgs(**{**ARGS.__dict__, "app_services": ()})
    _check_bash(tmp_path, "restore2.sh", b.vps_restore_script(no_services), shellcheck_bin)


def test_backup_script_does_what_it_says() -> None:
    s = b.vps_backup_script(ARGS)
    assert s.startswith("#!/usr/bin/env bash\n")
    assert "set -Eeuo pipefail" in s and "umask 077" in s
    assert 'compose exec -T "$PG_SERVICE" pg_dump --format=custom' in s
    assert '| gzip -6 | seal "$stamp.dump.gz.age"' in s and 'age -r "$AGE_RECIPIENT" > "$WORK_DIR/$1"' in s
    assert f"AWS_IMAGE={versions.AWS_CLI_IMAGE}" in s
    assert '--env-file "$ENV_FILE"' in s
    assert "--endpoint-url https://fsn1.your-objectstorage.com" in s
    assert "RETENTION_DAYS=30" in s and "LastModified<'$cutoff'" in s
    assert '!= "600"' in s  # refuses a world-readable credentials file
    # no credentials in the script itself
    assert "AWS_SECRET_ACCESS_KEY" not in s


def test_restore_script_is_safe() -> None:
    s = b.vps_restore_script(ARGS)
    assert "APP_SERVICES=(api web worker)" in s
    assert "sort_by(Contents, &LastModified)[-1].Key" in s  # --fetch latest
    assert "pre-restore-" in s  # safety dump before anything is dropped
    assert "pg_restore --clean --if-exists --no-owner --single-transaction" in s
    assert s.index('compose stop "${APP_SERVICES[@]}"') < s.index("pg_restore")
    assert "trap " in s and 'compose start "${APP_SERVICES[@]}"' in s


def test_units() -> None:
    units = b.vps_backup_units(ARGS)
    service, timer = units[b.SERVICE_PATH], units[b.TIMER_PATH]
    assert "Type=oneshot" in service and f"ExecStart={b.BACKUP_SCRIPT_PATH}" in service
    assert "OnCalendar=*-*-* 00,06,12,18:00:00" in timer
    assert "Persistent=true" in timer and "WantedBy=timers.target" in timer
    analyze = shutil.which("systemd-analyze")
    if analyze:
        pass  # `systemd-analyze verify` needs the ExecStart binary on this machine; OnCalendar is checked above


def test_files_and_modes() -> None:
    files = {f.path: f for f in b.vps_backup_files(ARGS)}
    assert files[b.BACKUP_SCRIPT_PATH].mode == "0755"
    assert files[b.TIMER_PATH].mode == "0644"
    assert b.ENV_FILE_PATH not in files  # the secret file is rendered separately
    assert "chmod 600 /etc/ladder/backup.env" in b.INSTALL_COMMAND


def test_env_file() -> None:
    text = b.backup_env_file("AKIA", "s3cr3t", "fra1")
    assert text.splitlines() == ["AWS_ACCESS_KEY_ID=AKIA", "AWS_SECRET_ACCESS_KEY=s3cr3t", "AWS_DEFAULT_REGION=fra1"]
    with pytest.raises(ValueError):
        b.backup_env_file("a\nb", "x", "y")


def test_args_from_settings() -> None:
    app = {"name": "my-shop", "services": {"web": {"image": "ghcr.io/acme/web:1.0.0", "port": 3000}}}
    settings = parse_settings(
        vps_config(app=app, backups={"bucket": "bkp", "retentionDays": 7, "ageRecipient": AGE_RECIPIENT})
    )

    a = b.vps_backup_args(settings, "staging", "/opt/ladder/my-shop/compose.yaml", ["api"])
    assert (a.database, a.prefix, a.retention_days, a.schedule) == (
        "my_shop",
        "my-shop/staging/postgres",
        7,
        "0 */6 * * *",
    )


CNPG = b.CnpgBackupArgs(
    cluster="shop-pg",
    namespace="shop",
    bucket="shop-backups",
    prefix="shop/production/cnpg",
    credentials_secret="shop-backup-s3",
    endpoint="https://fra1.digitaloceanspaces.com",
)


def test_object_store() -> None:
    store = b.cnpg_object_store(CNPG)
    assert store["apiVersion"] == "barmancloud.cnpg.io/v1" and store["kind"] == "ObjectStore"
    assert store["metadata"] == {"name": "shop-pg-store", "namespace": "shop"}
    spec = store["spec"]
    assert spec["retentionPolicy"] == "30d"
    conf = spec["configuration"]
    assert conf["destinationPath"] == "s3://shop-backups/shop/production/cnpg"
    assert conf["endpointURL"] == "https://fra1.digitaloceanspaces.com"
    assert conf["s3Credentials"]["accessKeyId"] == {"name": "shop-backup-s3", "key": "ACCESS_KEY_ID"}
    assert conf["wal"]["compression"] == "gzip"
    assert "serverName" not in conf  # must stay empty for the plugin
    assert "region" not in conf["s3Credentials"]  # no region given
    # the sidecar gets its resources only from here (else the LimitRange's 128Mi)
    sidecar = spec["instanceSidecarConfiguration"]["resources"]
    assert sidecar["requests"]["memory"] == "256Mi" and sidecar["limits"]["memory"] == "512Mi"


def test_object_store_region_reaches_the_credentials() -> None:
    from dataclasses import replace

    store = b.cnpg_object_store(replace(CNPG, region="fra1"))
    assert store["spec"]["configuration"]["s3Credentials"]["region"] == {
        "name": "shop-backup-s3",
        "key": "ACCESS_REGION",
    }
    assert b.cnpg_credentials("id", "key", "fra1") == {
        "ACCESS_KEY_ID": "id",
        "ACCESS_SECRET_KEY": "key",
        "ACCESS_REGION": "fra1",
    }


def test_cluster_plugins_and_scheduled_backup() -> None:
    assert b.cnpg_cluster_plugins(CNPG) == [
        {
            "name": "barman-cloud.cloudnative-pg.io",
            "isWALArchiver": True,
            "parameters": {"barmanObjectName": "shop-pg-store"},
        }
    ]
    sb = b.cnpg_scheduled_backup(CNPG)
    assert sb["apiVersion"] == "postgresql.cnpg.io/v1" and sb["kind"] == "ScheduledBackup"
    assert sb["spec"]["schedule"] == "0 0 */6 * * *"
    assert len(sb["spec"]["schedule"].split()) == 6
    assert sb["spec"]["method"] == "plugin"
    assert sb["spec"]["pluginConfiguration"] == {"name": "barman-cloud.cloudnative-pg.io"}
    assert sb["spec"]["cluster"] == {"name": "shop-pg"}


def test_recovery_cluster() -> None:
    image = "ghcr.io/cloudnative-pg/postgresql:17.11-standard-trixie"
    spec = b.cnpg_recovery_cluster_spec(CNPG, "shop-pg-restore", instances=2, storage_gb=10, image_name=image)
    # the backup's major (the operator's default is the newest one) and real resources
    assert spec["imageName"] == image
    assert spec["resources"]["requests"]["memory"] == "512Mi"
    assert spec["bootstrap"] == {"recovery": {"source": "origin"}}
    (origin,) = spec["externalClusters"]
    assert origin["name"] == "origin"
    assert origin["plugin"]["parameters"] == {"barmanObjectName": "shop-pg-store", "serverName": "shop-pg"}
    # the new cluster archives under its own name, never over the origin's WAL
    assert spec["plugins"][0]["parameters"]["serverName"] == "shop-pg-restore"
    pitr = b.cnpg_recovery_cluster_spec(CNPG, "x", 1, 5, image, target_time="2026-11-23T06:00:00Z")
    assert pitr["bootstrap"]["recovery"]["recoveryTarget"] == {"targetTime": "2026-11-23T06:00:00Z"}
