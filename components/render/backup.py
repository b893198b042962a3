"""Backups and restores, rendered as plain text and plain dicts (no Pulumi in here).

VPS rung: a shell script on the data host, started by a systemd timer, dumps Postgres
with `pg_dump --format=custom` through `docker compose exec -T`, gzips it, encrypts it with
`age -r` to the operator's public key (`ladder:backups.ageRecipient`), uploads the
ciphertext to S3-compatible storage with the official `amazon/aws-cli` image (`docker run
--rm`) and prunes objects older than `retentionDays`. No plaintext dump leaves the host:
whoever reads the bucket (or holds its key) reads noise, and the private key that decrypts
never is on a server. Credentials live only in an env file of mode 600 that the rung writes
(a secret output of `backup_env_file`). A companion restore script fetches the ciphertext
for the operator (`--fetch`), who decrypts it on their own machine and streams the plain
dump back (`--stdin`).

Why a systemd timer and not cron: `Persistent=true` runs a backup that was missed while
the host was down (cron silently skips it), runs are logged to the journal with their exit
status (`systemctl status ladder-backup`), a failed run is visible in `systemctl --failed`,
and `RandomizedDelaySec` spreads the S3 traffic. The cron schedule in `ladder:backups.schedule`
is converted to `OnCalendar=` lines by `cron_to_oncalendar` (checked with
`systemd-analyze calendar` in the tests).

Cluster rung: CloudNativePG objects for the Barman Cloud Plugin (`ObjectStore`, the
Cluster's `plugins` entry, a `ScheduledBackup` with `method: plugin`) and the recovery
Cluster spec that bootstraps a new cluster from the object store.
"""

from __future__ import annotations

import itertools
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from components import versions
from components.render import systemd
from components.render.k8s import BARMAN_SIDECAR_RESOURCES, POSTGRES_RESOURCES, resources_block
from components.settings import BackupsConfig, Settings

BARMAN_PLUGIN = "barman-cloud.cloudnative-pg.io"

BACKUP_SCRIPT_PATH = "/usr/local/sbin/ladder-backup"
RESTORE_SCRIPT_PATH = "/usr/local/sbin/ladder-restore"
RESTORE_FILES_SCRIPT_PATH = "/usr/local/sbin/ladder-restore-files"
ENV_FILE_PATH = "/etc/ladder/backup.env"
SERVICE_PATH = "/etc/systemd/system/ladder-backup.service"
TIMER_PATH = "/etc/systemd/system/ladder-backup.timer"
WORK_DIR = "/var/lib/ladder-backup"

# --- cron -> systemd ---------------------------------------------------------------------

_DOW = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))


def _expand(text: str, name: str, low: int, high: int) -> list[int] | None:
    """The values a cron field selects, or None for `*` (every value)."""
    if text == "*":
        return None
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"cron {name}: step must be at least 1 in {part!r}")
        if base == "*":
            start, end = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            start, end = int(a), int(b)
        else:
            start = int(base)
            end = high if step_text else start
        if not (low <= start <= high and low <= end <= high and start <= end):
            raise ValueError(f"cron {name}: {part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return sorted(values)


def _join(values: list[int] | None, width: int = 2) -> str:
    return "*" if values is None else ",".join(f"{v:0{width}d}" for v in values)


def cron_to_oncalendar(schedule: str) -> list[str]:
    """Convert a 5-field cron schedule to systemd `OnCalendar=` expressions (their union).

    cron runs when day-of-month OR day-of-week matches if both are restricted; systemd
    requires both, so that case becomes two expressions.
    """
    fields = schedule.split()
    if len(fields) != 5:
        raise ValueError(f"expected a 5-field cron schedule, got {schedule!r}")
    minute, hour, dom, month, dow = (
        _expand(text, name, low, high) for text, (name, low, high) in zip(fields, _FIELDS, strict=True)
    )
    days = None if dow is None else sorted({_DOW[d % 7] for d in dow}, key=_DOW.index)
    time = f"{_join(hour)}:{_join(minute)}:00"

    def expr(weekdays: list[str] | None, monthdays: list[int] | None) -> str:
        date = f"*-{_join(month)}-{_join(monthdays)}"
        return f"{','.join(weekdays)} {date} {time}" if weekdays else f"{date} {time}"

    if days is not None and dom is not None:
        return [expr(None, dom), expr(days, None)]
    return [expr(days, dom)]


def cron_to_cnpg(schedule: str) -> str:
    """CloudNativePG's ScheduledBackup takes a 6-field cron with SECONDS first."""
    fields = schedule.split()
    if len(fields) != 5:
        raise ValueError(f"expected a 5-field cron schedule, got {schedule!r}")
    return " ".join(["0", *fields])


def schedule_interval_hours(schedule: str) -> float:
    """The longest gap between two runs in a day, in hours: the VPS rung's recovery point objective."""
    fields = schedule.split()
    minute = _expand(fields[0], "minute", 0, 59) or list(range(60))
    hour = _expand(fields[1], "hour", 0, 23) or list(range(24))
    if fields[2:] != ["*", "*", "*"]:
        return 24.0 * 7 if fields[4] != "*" else 24.0 * 31
    times = sorted(h * 60 + m for h in hour for m in minute)
    gaps = [b - a for a, b in itertools.pairwise(times)] + [times[0] + 1440 - times[-1]]
    return max(gaps) / 60


# --- VPS: script, units, env file --------------------------------------------------------


@dataclass(frozen=True)
class Archive:
    """One thing the backup timer saves besides Postgres, under `<app>/<stack>/<name>/`.

    `tar`: the host directories `paths` (relative to `root`) as a .tar.gz; `dump`: what
    `command` writes to stdout inside the running `service`, gzipped. `service` is stopped
    while a tar archive is restored."""

    name: str  # e.g. volumes/api-app-uploads, accessories/mongo
    kind: str  # tar | dump
    service: str
    root: str = ""
    paths: tuple[str, ...] = ()
    command: tuple[str, ...] = ()


@dataclass(frozen=True)
class VpsBackupArgs:
    """What the VPS backup and restore need to know; everything here is non-secret.

    `compose_file` is the Compose project on the data host; `app_services` are stopped
    during a restore so nothing writes while the dump is loaded.
    """

    project: str
    compose_file: str
    database: str
    db_user: str
    bucket: str
    prefix: str
    endpoint: str | None = None
    region: str = "us-east-1"
    schedule: str = "0 */6 * * *"
    retention_days: int = 30
    age_recipient: str = ""  # grammar.age_recipient; vps_backup_args refuses a stack without one
    postgres_service: str = "postgres"
    app_services: Sequence[str] = field(default_factory=tuple)
    # Read when the args are built, not at import (the bench substitutes its stand-ins' digests).
    aws_cli_image: str = field(default_factory=lambda: versions.AWS_CLI_IMAGE)
    postgres: bool = True  # Postgres runs on this host (a host may back up only volumes)
    archives: Sequence[Archive] = field(default_factory=tuple)
    base_prefix: str = ""  # <app>/<stack>: archives go under <base_prefix>/<archive name>/


def vps_backup_args(
    settings: Settings,
    stack: str,
    compose_file: str,
    app_services: Sequence[str] = (),
    archives: Sequence[Archive] = (),
    postgres: bool = True,
) -> VpsBackupArgs:
    """Build the args from a validated `Settings` (its `backups` must be set)."""
    b = settings.backups
    if b is None:
        raise ValueError("ladder:backups is not configured")
    if b.age_recipient is None:
        raise ValueError("ladder:backups.ageRecipient is not configured")
    name = settings.app.name
    return VpsBackupArgs(
        project=name,
        compose_file=compose_file,
        database=settings.app.database,
        db_user=settings.app.database,
        bucket=b.bucket,
        prefix=f"{name}/{stack}/postgres",
        endpoint=b.endpoint,
        region=b.region,
        schedule=b.schedule,
        retention_days=b.retention_days,
        age_recipient=b.age_recipient,
        app_services=tuple(app_services),
        postgres=postgres,
        archives=tuple(archives),
        base_prefix=f"{name}/{stack}",
    )


def backup_env_file(access_key_id: str, secret_access_key: str, region: str) -> str:
    """The credentials file (`ENV_FILE_PATH`, mode 600, root-owned): wrap the result in a secret."""
    for value in (access_key_id, secret_access_key, region):
        if "\n" in value:
            raise ValueError("credentials must be single-line values")
    return (
        f"AWS_ACCESS_KEY_ID={access_key_id}\nAWS_SECRET_ACCESS_KEY={secret_access_key}\nAWS_DEFAULT_REGION={region}\n"
    )


AGE_HEADER = "age-encryption.org/v1"  # the first line of every age file (age-encryption.org/v1 spec)
ENCRYPTED_SUFFIX = ".dump.gz.age"
# The shared header names Postgres; a script that does not touch it says so to shellcheck.
UNUSED_PG_NAMES = "# shellcheck disable=SC2034\n"


def _common(a: VpsBackupArgs) -> str:
    q = shlex.quote
    endpoint = f"--endpoint-url {q(a.endpoint)}" if a.endpoint else ""
    return f"""\
set -Eeuo pipefail
umask 077

ENV_FILE={q(ENV_FILE_PATH)}
COMPOSE_FILE={q(a.compose_file)}
PROJECT={q(a.project)}
PG_SERVICE={q(a.postgres_service)}
DB_NAME={q(a.database)}
DB_USER={q(a.db_user)}
BUCKET={q(a.bucket)}
PREFIX={q(a.prefix)}
AWS_IMAGE={q(a.aws_cli_image)}
WORK_DIR={q(WORK_DIR)}
ENDPOINT_ARGS=({endpoint})

log() {{ printf '%s %s\\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }}

if [[ ! -r "$ENV_FILE" ]]; then
  log "missing $ENV_FILE (credentials)"; exit 2
fi
if [[ "$(stat -c %a "$ENV_FILE")" != "600" ]]; then
  log "$ENV_FILE must be mode 600"; exit 2
fi
mkdir -p "$WORK_DIR"
chmod 700 "$WORK_DIR"

compose() {{ docker compose -p "$PROJECT" -f "$COMPOSE_FILE" "$@"; }}

# The official AWS CLI image; the work dir is mounted at /backup.
aws() {{
  docker run --rm -i --env-file "$ENV_FILE" -v "$WORK_DIR:/backup" "$AWS_IMAGE" "${{ENDPOINT_ARGS[@]}}" "$@"
}}
"""


def _archive_lines(a: VpsBackupArgs) -> str:
    """One `save_tar` / `save_dump` call per archive; every config value shell-quoted."""
    q = shlex.quote
    lines = []
    for arc in a.archives:
        prefix = q(f"{a.base_prefix}/{arc.name}")
        if arc.kind == "tar":
            lines.append(f"save_tar {prefix} {q(arc.root)} {' '.join(q(p) for p in arc.paths)}")
        else:
            # The command runs in the container: `$` in it is the container's, not this script's.
            lines.append("# shellcheck disable=SC2016")
            lines.append(f"save_dump {prefix} {q(arc.service)} {' '.join(q(c) for c in arc.command)}")
    return "\n".join(lines)


def vps_backup_script(a: VpsBackupArgs) -> str:
    """`/usr/local/sbin/ladder-backup`: dump, compress, encrypt, upload, prune.

    Postgres (custom-format dump), then each archive (service volumes and accessory
    directories as .tar.gz, accessory dump commands gzipped), each under its own prefix with
    the same retention. Everything goes through `age -r` in the same pipe that makes it
    (pipefail): nothing plain is written to the host's disk or uploaded. One failure fails the
    run (and `systemctl --failed` shows it) after the rest were tried.
    """
    if not a.age_recipient:
        raise ValueError("the VPS backup needs an age recipient (ladder:backups.ageRecipient)")
    postgres = (
        """
log "dumping $DB_NAME from service $PG_SERVICE"
if compose exec -T "$PG_SERVICE" pg_dump --format=custom --compress=0 --no-owner -U "$DB_USER" -d "$DB_NAME" \\
  </dev/null | gzip -6 | seal "$stamp.dump.gz.age" && upload "$stamp.dump.gz.age" "$PREFIX" && prune "$PREFIX"; then
  :
else
  log "backup of $DB_NAME failed"; failed=1
fi
"""
        if a.postgres
        else ""
    )
    return f"""\
#!/usr/bin/env bash
# Rendered by Ladder (components/render/backup.py); changes on the host are overwritten.
# Backs up Postgres and the volumes/accessories listed below, encrypts each to the operator's
# age key, uploads them and prunes copies older than {a.retention_days} days. Started by
# ladder-backup.timer; logs go to the journal.
{"" if a.postgres else UNUSED_PG_NAMES}{_common(a)}
AGE_RECIPIENT={shlex.quote(a.age_recipient)}
RETENTION_DAYS={a.retention_days}
command -v age >/dev/null || {{ log "age is not installed (the deploy installs it)"; exit 2; }}
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
trap 'rm -f "$WORK_DIR/$stamp".*' EXIT
failed=0

seal() {{  # FILE: encrypt stdin to the operator's key into the work dir, and check the result
  age -r "$AGE_RECIPIENT" > "$WORK_DIR/$1" || return 1
  if [[ "$(head -c {len(AGE_HEADER)} "$WORK_DIR/$1")" != {shlex.quote(AGE_HEADER)} ]]; then
    log "$1 has no age header; not uploaded"; return 1
  fi
  if [[ "$(stat -c %s "$WORK_DIR/$1")" -lt 256 ]]; then
    log "$1 is suspiciously small"; return 1
  fi
}}

upload() {{  # FILE (in the work dir) PREFIX
  local size
  size="$(stat -c %s "$WORK_DIR/$1")"
  log "uploading s3://$BUCKET/$2/$1 ($size bytes)"
  aws s3 cp --only-show-errors "/backup/$1" "s3://$BUCKET/$2/$1"
  rm -f "$WORK_DIR/$1"
}}

prune() {{  # PREFIX: delete copies older than the retention
  local cutoff old key
  cutoff="$(date -u -d "-$RETENTION_DAYS days" +%Y-%m-%dT%H:%M:%S)"
  log "pruning $1 older than $cutoff"
  old="$(aws s3api list-objects-v2 --bucket "$BUCKET" --prefix "$1/" \\
    --query "Contents[?LastModified<'$cutoff'].Key" --output text)"
  for key in $old; do
    [[ "$key" == "None" ]] && continue
    # A key without delete rights (docs/operations.md: write-only keys) leaves pruning to the
    # bucket's lifecycle rule; that is not a failed backup.
    if aws s3 rm --only-show-errors "s3://$BUCKET/$key"; then
      log "pruned $key"
    else
      log "could not prune $key (no delete right?); the bucket's lifecycle rule must expire it"
    fi
  done
}}

save_tar() {{  # PREFIX ROOT PATH...: a .tar.gz of PATHs under ROOT (a host directory), encrypted
  local prefix=$1 root=$2 out="$stamp.tar.gz.age"
  shift 2
  log "archiving $root ($*)"
  if tar -C "$root" -czf - -- "$@" | seal "$out" && upload "$out" "$prefix" && prune "$prefix"; then
    return 0
  fi
  log "backup of $root failed"; failed=1
}}

save_dump() {{  # PREFIX SERVICE COMMAND...: COMMAND's stdout inside the running SERVICE, gzipped, encrypted
  local prefix=$1 service=$2 out="$stamp.dump.gz.age"
  shift 2
  log "dumping service $service"
  if compose exec -T "$service" "$@" </dev/null | gzip -6 | seal "$out" && upload "$out" "$prefix" \\
    && prune "$prefix"; then
    return 0
  fi
  log "backup of service $service failed"; failed=1
}}
{postgres}
{_archive_lines(a)}
[[ "$failed" -eq 0 ]] || exit 1
log "backup $stamp done"
"""


# The halves of a restore both restore scripts share: the encrypted object out (the operator
# decrypts it where the private key is), the decrypted archive in.
_RESTORE_FUNCTIONS = f"""
# PREFIX NAME: the encrypted backup PREFIX/NAME (NAME `latest`: the newest) to stdout.
fetch_encrypted() {{
  local prefix=$1 name=$2 key
  if [[ "$name" == "latest" ]]; then
    key="$(aws s3api list-objects-v2 --bucket "$BUCKET" --prefix "$prefix/" \\
      --query 'sort_by(Contents, &LastModified)[-1].Key' --output text </dev/null)"
    if [[ -z "$key" || "$key" == "None" ]]; then
      log "no backups under s3://$BUCKET/$prefix/"; exit 1
    fi
    name="${{key##*/}}"
  fi
  if [[ ! "$name" =~ ^[0-9A-Za-z._-]+$ ]]; then
    log "invalid backup name: $name"; exit 2
  fi
  FETCHED="$WORK_DIR/fetch-$name"
  trap 'rm -f "$FETCHED"' EXIT
  log "downloading s3://$BUCKET/$prefix/$name (encrypted; decrypt it where the private key is)"
  aws s3 cp --only-show-errors "s3://$BUCKET/$prefix/$name" "/backup/fetch-$name" </dev/null >&2
  cat "$FETCHED"
}}

# FILE WHAT: stdin (a decrypted, gzipped WHAT) into FILE; refuses what is still encrypted.
read_decrypted() {{
  cat > "$1"
  if [[ "$(head -c {len(AGE_HEADER)} "$1")" == {shlex.quote(AGE_HEADER)} ]]; then
    log "stdin is still encrypted: decrypt it with age -d -i <your private key> first"; exit 2
  fi
  gzip -t "$1" || {{ log "stdin is not a gzipped $2"; exit 2; }}
}}
"""


def vps_restore_script(a: VpsBackupArgs) -> str:
    """`/usr/local/sbin/ladder-restore --list | --fetch [latest|NAME] | --stdin`.

    The dumps are encrypted to a key that is never on the server, so a restore is two
    halves with the decryption in between, on the operator's machine (`tools.restore` prints
    the pipeline): `--fetch` writes the ciphertext to stdout; `--stdin` reads the decrypted
    gzipped dump, checks it, takes a local safety dump, stops the app services, restores
    with `pg_restore --clean --if-exists --single-transaction` and starts them again.
    Every command after the dump is read gets stdin from /dev/null.
    """
    services = " ".join(shlex.quote(s) for s in a.app_services)
    return f"""\
#!/usr/bin/env bash
# Rendered by Ladder (components/render/backup.py); changes on the host are overwritten.
# Usage: ladder-restore --list
#        ladder-restore --fetch [latest|NAME] > NAME      (the encrypted dump, e.g. 20260101T000000Z{ENCRYPTED_SUFFIX})
#        age -d -i backup.key NAME | ladder-restore --stdin   (decrypt where the private key is, never here)
{_common(a)}{_RESTORE_FUNCTIONS}
APP_SERVICES=({services})
mode="${{1:-}}"

case "$mode" in
  --list)
    aws s3 ls "s3://$BUCKET/$PREFIX/" </dev/null
    exit 0
    ;;
  --fetch)
    target="${{2:-latest}}"
    fetch_encrypted "$PREFIX" "${{target##*/}}"
    exit 0
    ;;
  --stdin) ;;
  *)
    log "usage: ladder-restore --list | --fetch [latest|NAME] | --stdin (a decrypted dump on stdin)"; exit 2
    ;;
esac

incoming="$WORK_DIR/restore-$(date -u +%Y%m%dT%H%M%SZ).dump.gz"
trap 'rm -f "$incoming"' EXIT
read_decrypted "$incoming" dump

safety="$WORK_DIR/pre-restore-$(date -u +%Y%m%dT%H%M%SZ).dump"
log "safety dump of the current database to $safety"
compose exec -T "$PG_SERVICE" pg_dump --format=custom --no-owner -U "$DB_USER" -d "$DB_NAME" </dev/null > "$safety"

if [[ ${{#APP_SERVICES[@]}} -gt 0 ]]; then
  log "stopping ${{APP_SERVICES[*]}}"
  compose stop "${{APP_SERVICES[@]}}" </dev/null
fi
start_app() {{ if [[ ${{#APP_SERVICES[@]}} -gt 0 ]]; then compose start "${{APP_SERVICES[@]}}" </dev/null; fi; }}
trap 'rm -f "$incoming"; start_app' EXIT

log "restoring into $DB_NAME"
gunzip -c "$incoming" \\
  | compose exec -T "$PG_SERVICE" pg_restore --clean --if-exists --no-owner --single-transaction \\
      -U "$DB_USER" -d "$DB_NAME"
log "restored; the safety dump stays in $safety"
"""


def vps_restore_files_script(a: VpsBackupArgs) -> str:
    """`/usr/local/sbin/ladder-restore-files --list | NAME --fetch [latest|FILE] | NAME --stdin`.

    Archives are encrypted to a key that is never on the server: `--fetch` writes the
    ciphertext to stdout, the operator decrypts it (`tools.restore` prints the pipeline) and
    `--stdin` takes the plain archive. A tar archive (a service volume, an accessory's paths)
    is unpacked beside the live directory; the owning service stops, the live directory moves
    aside to `*.pre-restore-<stamp>` (kept, nothing is deleted), the restored one takes its
    place, and the service starts again. A dump is only fetched: the store's own tool loads
    it (e.g. `mongorestore --archive --gzip`)."""
    q = shlex.quote
    cases = []
    for arc in a.archives:
        paths = " ".join(q(p) for p in arc.paths)
        cases.append(f"  {q(arc.name)}) KIND={arc.kind} SERVICE={q(arc.service)} ROOT={q(arc.root)} PATHS=({paths}) ;;")
    names = " ".join(q(arc.name) for arc in a.archives)
    return f"""\
#!/usr/bin/env bash
# Rendered by Ladder (components/render/backup.py); changes on the host are overwritten.
# Usage: ladder-restore-files --list
#        ladder-restore-files NAME --fetch [latest|FILE] > FILE.age   (encrypted)
#        age -d -i backup.key FILE.age | ladder-restore-files NAME --stdin   (a tar archive)
{UNUSED_PG_NAMES}{_common(a)}{_RESTORE_FUNCTIONS}
BASE={q(a.base_prefix)}
NAMES=({names})
name="${{1:---list}}"
mode="${{2:-}}"
if [[ "$name" == "--list" ]]; then
  for n in "${{NAMES[@]}}"; do aws s3 ls "s3://$BUCKET/$BASE/$n/" </dev/null || true; done
  exit 0
fi
KIND="" SERVICE="" ROOT="" PATHS=()
case "$name" in
{chr(10).join(cases)}
  *) log "unknown archive $name; one of: ${{NAMES[*]}}"; exit 2 ;;
esac
case "$mode" in
  --fetch)
    fetch_encrypted "$BASE/$name" "${{3:-latest}}"
    exit 0
    ;;
  --stdin) ;;
  *) log "usage: ladder-restore-files NAME --fetch [latest|FILE] | NAME --stdin"; exit 2 ;;
esac
if [[ "$KIND" == "dump" ]]; then
  log "$name is a dump: load the decrypted file with the store's own tool, e.g."
  log "  gunzip -c FILE | docker compose -p $PROJECT -f $COMPOSE_FILE exec -T $SERVICE <restore command>"
  exit 2
fi
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
incoming="$WORK_DIR/restore-$stamp.tar.gz"
staging="$ROOT.restore-$stamp"
trap 'rm -rf "$incoming" "$staging"' EXIT
read_decrypted "$incoming" "tar archive"
mkdir -p "$staging"
tar -C "$staging" -xzpf "$incoming"
log "stopping $SERVICE"
compose stop "$SERVICE" </dev/null
trap 'rm -rf "$incoming" "$staging"; compose start "$SERVICE" </dev/null' EXIT
for path in "${{PATHS[@]}}"; do
  if [[ "$path" == "." ]]; then
    mv "$ROOT" "$ROOT.pre-restore-$stamp"
    mv "$staging" "$ROOT"
  else
    if [[ -e "$ROOT/$path" ]]; then mv "$ROOT/$path" "$ROOT/$path.pre-restore-$stamp"; fi
    mv "$staging/$path" "$ROOT/$path"
  fi
done
log "restored $name; the previous files stay beside it as *.pre-restore-$stamp"
"""


def vps_backup_units(a: VpsBackupArgs) -> dict[str, str]:
    """The systemd service and timer, keyed by their paths."""
    calendars = "\n".join(f"OnCalendar={systemd.text(c)}" for c in cron_to_oncalendar(a.schedule))
    service = f"""\
[Unit]
Description={systemd.text(f"Ladder: back up {a.project} to s3://{a.bucket}/{a.base_prefix or a.prefix}/")}
Wants=network-online.target docker.service
After=network-online.target docker.service

[Service]
Type=oneshot
ExecStart={BACKUP_SCRIPT_PATH}
Nice=10
IOSchedulingClass=best-effort
IOSchedulingPriority=7
TimeoutStartSec=2h
"""
    timer = f"""\
[Unit]
Description={systemd.text(f"Ladder: backups of {a.project} ({a.schedule} in cron terms)")}

[Timer]
{calendars}
Persistent=true
RandomizedDelaySec=5min
Unit=ladder-backup.service

[Install]
WantedBy=timers.target
"""
    return {SERVICE_PATH: service, TIMER_PATH: timer}


@dataclass(frozen=True)
class HostFile:
    path: str
    content: str
    mode: str


def vps_backup_files(a: VpsBackupArgs) -> list[HostFile]:
    """Every non-secret file to copy to the data host (the env file is `backup_env_file`)."""
    files = [HostFile(BACKUP_SCRIPT_PATH, vps_backup_script(a), "0755")]
    if a.postgres:
        files.append(HostFile(RESTORE_SCRIPT_PATH, vps_restore_script(a), "0755"))
    if a.archives:
        files.append(HostFile(RESTORE_FILES_SCRIPT_PATH, vps_restore_files_script(a), "0755"))
    files += [HostFile(path, text, "0644") for path, text in vps_backup_units(a).items()]
    return files


# Step 6 of the deploy, before the script lands: `age` from the distribution (Ubuntu universe,
# Debian main). Not in the cloud-init packages: a changed user_data replaces a created server.
INSTALL_AGE = (
    "command -v age >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q age "
    "|| { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q age; } "
    "|| fail 'installing age failed (the backup encrypts with it)'"
)

INSTALL_COMMAND = (
    f"install -d -m 700 /etc/ladder && chmod 600 {ENV_FILE_PATH} && "
    "systemctl daemon-reload && systemctl enable --now ladder-backup.timer"
)


# --- cluster: CloudNativePG + Barman Cloud Plugin ------------------------------------------


@dataclass(frozen=True)
class CnpgBackupArgs:
    cluster: str
    namespace: str
    bucket: str
    prefix: str
    credentials_secret: str
    endpoint: str | None = None
    schedule: str = "0 */6 * * *"
    retention_days: int = 30
    region: str | None = None  # the bucket's region; SigV4 signs with it

    @property
    def store_name(self) -> str:
        return f"{self.cluster}-store"


CNPG_CREDENTIALS_SECRET = "backup-credentials"


def cnpg_backup_args(backups: BackupsConfig, namespace: str, cluster: str, stack: str, bucket: str) -> CnpgBackupArgs:
    """One definition of where a tenant's CloudNativePG backups go, shared by the cluster
    rung (which creates them) and `tools.restore` (which reads them back). `bucket` is the
    tenant's (`backup_buckets.tenant_backup_bucket`): `backups.bucket` unless Ladder made it one."""
    return CnpgBackupArgs(
        cluster=cluster,
        namespace=namespace,
        bucket=bucket,
        prefix=f"{stack}/{namespace}",
        credentials_secret=CNPG_CREDENTIALS_SECRET,
        endpoint=backups.endpoint,
        schedule=backups.schedule,
        retention_days=backups.retention_days,
        region=backups.region,
    )


CNPG_REGION_KEY = "ACCESS_REGION"


def cnpg_credentials(access_key_id: str, secret_access_key: str, region: str | None) -> dict[str, str]:
    """`stringData` of the credentials Secret the ObjectStore reads (region included when set)."""
    data = {"ACCESS_KEY_ID": access_key_id, "ACCESS_SECRET_KEY": secret_access_key}
    if region:
        data[CNPG_REGION_KEY] = region
    return data


def cnpg_object_store(a: CnpgBackupArgs) -> dict[str, Any]:
    """The plugin's `ObjectStore`: where base backups and WAL go, how long they stay, and
    the resources of the plugin's sidecar in every instance (it gets them nowhere else).

    The credentials Secret holds `ACCESS_KEY_ID`, `ACCESS_SECRET_KEY` and, with
    `ladder:backups.region`, `ACCESS_REGION` (`cnpg_credentials`).
    """
    credentials: dict[str, Any] = {
        "accessKeyId": {"name": a.credentials_secret, "key": "ACCESS_KEY_ID"},
        "secretAccessKey": {"name": a.credentials_secret, "key": "ACCESS_SECRET_KEY"},
    }
    if a.region:
        credentials["region"] = {"name": a.credentials_secret, "key": CNPG_REGION_KEY}
    configuration: dict[str, Any] = {
        "destinationPath": f"s3://{a.bucket}/{a.prefix}",
        "s3Credentials": credentials,
        "wal": {"compression": "gzip", "maxParallel": 2},
        "data": {"compression": "gzip", "jobs": 2},
    }
    if a.endpoint:
        configuration["endpointURL"] = a.endpoint
    return {
        "apiVersion": "barmancloud.cnpg.io/v1",
        "kind": "ObjectStore",
        "metadata": {"name": a.store_name, "namespace": a.namespace},
        "spec": {
            "retentionPolicy": f"{a.retention_days}d",
            "configuration": configuration,
            "instanceSidecarConfiguration": {"resources": resources_block(BARMAN_SIDECAR_RESOURCES)},
        },
    }


def cnpg_cluster_plugins(a: CnpgBackupArgs, server_name: str | None = None) -> list[dict[str, Any]]:
    """The Cluster's `spec.plugins`: the plugin archives WAL continuously (point-in-time recovery)."""
    parameters = {"barmanObjectName": a.store_name}
    if server_name:
        parameters["serverName"] = server_name
    return [{"name": BARMAN_PLUGIN, "isWALArchiver": True, "parameters": parameters}]


def cnpg_scheduled_backup(a: CnpgBackupArgs) -> dict[str, Any]:
    """Base backups on `ladder:backups.schedule` (seconds field added), through the plugin."""
    return {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "ScheduledBackup",
        "metadata": {"name": f"{a.cluster}-scheduled", "namespace": a.namespace},
        "spec": {
            "schedule": cron_to_cnpg(a.schedule),
            "immediate": True,
            "backupOwnerReference": "self",
            "cluster": {"name": a.cluster},
            "method": "plugin",
            "pluginConfiguration": {"name": BARMAN_PLUGIN},
        },
    }


def cnpg_recovery_cluster_spec(
    a: CnpgBackupArgs,
    new_cluster: str,
    instances: int,
    storage_gb: int,
    image_name: str,
    target_time: str | None = None,
    backup_id: str | None = None,
) -> dict[str, Any]:
    """`spec` of a NEW Cluster bootstrapped from the object store (CNPG never restores in place).

    The origin's WAL is read under the old cluster's server name; the new cluster archives
    under its own name (`serverName` = `new_cluster`) so it never overwrites the origin's
    archive. `target_time` (RFC 3339) gives point-in-time recovery; `backup_id` pins a base
    backup; neither means "latest". `image_name` must be the backup's Postgres major (the
    operator's default image is the newest major, which cannot read an older data
    directory); the resources are the live cluster's, not the namespace's LimitRange default.
    """
    recovery: dict[str, Any] = {"source": "origin"}
    target: dict[str, Any] = {}
    if target_time:
        target["targetTime"] = target_time
    if backup_id:
        target["backupID"] = backup_id
    if target:
        recovery["recoveryTarget"] = target
    return {
        "instances": instances,
        "imageName": image_name,
        "enableSuperuserAccess": False,
        "storage": {"size": f"{storage_gb}Gi"},
        "resources": resources_block(POSTGRES_RESOURCES),
        "bootstrap": {"recovery": recovery},
        "externalClusters": [
            {
                "name": "origin",
                "plugin": {
                    "name": BARMAN_PLUGIN,
                    "parameters": {"barmanObjectName": a.store_name, "serverName": a.cluster},
                },
            }
        ],
        "plugins": cnpg_cluster_plugins(a, server_name=new_cluster),
    }
