"""The deploy script the VPS rung runs over SSH: the order of a deploy, in one place.

Steps (each must succeed before the next; a failure stops the deploy and fails `pulumi up`):

1. wait for cloud-init to finish (a new server is still installing Docker)
2. mount the data volume (data host only) and create the Postgres directory on it
3. write the project files atomically (compose file, Caddyfile, env files with mode 600)
4. pull every image, so nothing below waits on the network
5. start or update the data stores and wait until they are healthy
6. install the backup script and its systemd timer (data host, when `ladder:backups` is set)
   and the uptime watch timer (app hosts on Hetzner or existing hosts, with monitoring)
7. run the release command once, against the new image, before any traffic moves
8. rolling update of each routed service: start new containers next to the old ones,
   wait until every new one is healthy, only then stop the old ones; if one never turns
   healthy, remove the new ones and fail, and the old version keeps serving
9. recreate the workers (no traffic to move)
10. start or reload the proxy (Caddy reloads without dropping connections)
11. remove images nothing uses any more
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from components.render import watch
from components.render.backup import ENV_FILE_PATH, INSTALL_COMMAND, VpsBackupArgs, vps_backup_files
from components.render.compose import DATA_DIR, POSTGRES_UID, PROJECT_DIR
from components.render.watch import WatchArgs

STEPS = (
    "wait for cloud-init",
    "mount the data volume",
    "write project files",
    "pull images",
    "start data stores",
    "install the backup and watch timers",
    "run the release command",
    "rolling update of routed services",
    "recreate workers",
    "start or reload the proxy",
    "prune unused images",
)
HEALTH_TIMEOUT_S = 180
BACKUP_ENV = "backup.env"  # secret_contents key of the backup credentials
WATCH_ENV = "watch.env"  # secret_contents key of the SMTP credentials of the uptime watch


@dataclass(frozen=True)
class DeployPlan:
    """What one server's deploy does; everything a deploy changes is in here (and so in its hash)."""

    app: str
    files: Mapping[str, str]  # relative path -> content (non-secret)
    secret_files: Sequence[str] = ()  # relative paths whose content is passed separately
    data_services: Sequence[str] = ()
    release: tuple[str, tuple[str, ...]] | None = None  # (service, command)
    routed: Mapping[str, int] = field(default_factory=dict)  # service -> replicas
    workers: Sequence[str] = ()
    proxy: bool = True
    volume_device: str | None = None
    backup: VpsBackupArgs | None = None  # its credentials come as the secret file BACKUP_ENV
    watch: WatchArgs | None = None  # its SMTP credentials come as the secret file WATCH_ENV


def _heredoc(path: str, content: str, mode: str) -> str:
    """Write `content` to `path` (relative to the project, or absolute) atomically."""
    marker = "LADDER_EOF"
    if marker in content:
        raise ValueError(f"{path} contains the heredoc marker {marker}")
    target = path if path.startswith("/") else f"{PROJECT_DIR}/{path}"
    return (
        f"install -d -m 0750 {shlex.quote(target.rsplit('/', 1)[0])}\n"
        f"cat > {shlex.quote(target + '.new')} <<'{marker}'\n{content.rstrip(chr(10))}\n{marker}\n"
        f"chmod {mode} {shlex.quote(target + '.new')}\n"
        f"mv -f {shlex.quote(target + '.new')} {shlex.quote(target)}\n"
    )


# Health status when a container has a healthcheck, else its run state.
_HEALTH_FORMAT = "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}"

_FUNCTIONS = f"""HEALTH_FORMAT='{_HEALTH_FORMAT}'
log() {{ echo "ladder: $*" >&2; }}
fail() {{ echo "ladder: DEPLOY FAILED: $*" >&2; exit 1; }}

# Waits until every container id given is healthy (or running, without a healthcheck).
wait_healthy() {{
  local deadline=$((SECONDS + {HEALTH_TIMEOUT_S})) id state
  for id in "$@"; do
    while :; do
      state=$(docker inspect -f "$HEALTH_FORMAT" "$id")
      case "$state" in
        healthy|running) break ;;
        unhealthy|exited|dead) return 1 ;;
      esac
      [ "$SECONDS" -lt "$deadline" ] || return 1
      sleep 2
    done
  done
}}

# Health-gated rolling update: new containers start beside the old ones and must be
# healthy before the old ones stop. Caddy discovers containers by DNS and retries.
rollout() {{
  local svc=$1 want=$2 old new current wanted
  old=$(docker compose ps -q "$svc" | tr '\\n' ' ')
  if [ -z "${{old// /}}" ]; then
    docker compose up -d --no-deps --wait --wait-timeout {HEALTH_TIMEOUT_S} "$svc" || fail "$svc did not become healthy"
    return
  fi
  # shellcheck disable=SC2086
  current=$(docker inspect -f '{{{{index .Config.Labels "com.docker.compose.config-hash"}}}}' $old | sort -u)
  wanted=$(docker compose config --hash "$svc" | awk '{{print $2}}')
  if [ "$current" = "$wanted" ]; then
    docker compose up -d --no-deps --no-recreate --scale "$svc=$want" "$svc"
    return
  fi
  log "$svc: starting $want new container(s) beside the running ones"
  docker compose up -d --no-deps --no-recreate --scale "$svc=$((want * 2))" "$svc"
  # shellcheck disable=SC2086
  new=$(comm -13 <(printf '%s\\n' $old | sort) <(docker compose ps -q "$svc" | sort) | tr '\\n' ' ')
  # shellcheck disable=SC2086
  if ! wait_healthy $new; then
    # shellcheck disable=SC2086
    docker rm -f $new >/dev/null
    fail "$svc: the new version did not turn healthy within {HEALTH_TIMEOUT_S}s; the previous version keeps serving"
  fi
  log "$svc: new containers healthy; stopping the previous ones"
  # shellcheck disable=SC2086
  docker stop $old >/dev/null && docker rm $old >/dev/null
  docker compose up -d --no-deps --no-recreate --scale "$svc=$want" "$svc"
}}
"""


def deploy_script(plan: DeployPlan, secret_contents: Mapping[str, str]) -> str:
    """The whole deploy as one bash script, run with `sudo bash -s` (stdin, never argv)."""
    missing = set(plan.secret_files) - set(secret_contents)
    if plan.backup and BACKUP_ENV not in secret_contents:
        missing.add(BACKUP_ENV)
    if plan.watch and WATCH_ENV not in secret_contents:
        missing.add(WATCH_ENV)
    if missing:
        raise ValueError(f"no content for secret files {sorted(missing)}")
    q = shlex.quote
    out = [
        "#!/usr/bin/env bash",
        f"# Ladder deploy of {plan.app}. Steps: " + "; ".join(f"{i}. {s}" for i, s in enumerate(STEPS, 1)),
        "set -euo pipefail",
        "umask 077",
        _FUNCTIONS,
        "# 1. wait for cloud-init",
        "if command -v cloud-init >/dev/null; then cloud-init status --wait >/dev/null || true; fi",
        "command -v docker >/dev/null || fail 'docker is not installed on this host'",
        "# 2. mount the data volume",
    ]
    if plan.volume_device:
        dev = q(plan.volume_device)
        out += [
            f"install -d -m 0755 {DATA_DIR}",
            f"if ! mountpoint -q {DATA_DIR}; then",
            f"  for _ in $(seq 60); do [ -e {dev} ] && break; sleep 2; done",
            f"  [ -e {dev} ] || fail 'data volume {plan.volume_device} is not attached'",
            f"  blkid {dev} >/dev/null || mkfs.ext4 -q {dev}",
            f"  grep -q ' {DATA_DIR} ' /etc/fstab || "
            f"echo '{plan.volume_device} {DATA_DIR} ext4 defaults,nofail,discard 0 2' >> /etc/fstab",
            f"  mount {DATA_DIR}",
            "fi",
        ]
    if "postgres" in plan.data_services:
        out.append(
            f"install -d -m 0700 -o {POSTGRES_UID.split(':')[0]} -g {POSTGRES_UID.split(':')[1]} {DATA_DIR}/postgres"
        )
    out += ["# 3. write project files", f"install -d -m 0750 {PROJECT_DIR}"]
    for path, content in sorted(plan.files.items()):
        out.append(_heredoc(path, content, "0640"))
    for path in plan.secret_files:
        out.append(_heredoc(path, secret_contents[path], "0600"))
    out += [
        f"cd {PROJECT_DIR}",
        "# 4. pull images",
        "docker compose pull --quiet --ignore-buildable",
        "# 5. start data stores",
    ]
    if plan.data_services:
        stores = " ".join(q(s) for s in plan.data_services)
        out.append(
            f"docker compose up -d --no-deps --wait --wait-timeout {HEALTH_TIMEOUT_S} {stores} "
            "|| fail 'data stores did not become healthy'"
        )
    out.append("# 6. install the backup and watch timers")
    if plan.backup:
        out += [_heredoc(f.path, f.content, f.mode) for f in vps_backup_files(plan.backup)]
        out += [_heredoc(ENV_FILE_PATH, secret_contents[BACKUP_ENV], "0600"), INSTALL_COMMAND]
    if plan.watch:
        out += [_heredoc(f.path, f.content, f.mode) for f in watch.watch_files(plan.watch)]
        out += [_heredoc(watch.WATCH_ENV_PATH, secret_contents[WATCH_ENV], "0600"), watch.INSTALL_COMMAND]
    out.append("# 7. run the release command")
    if plan.release:
        svc, command = plan.release
        out.append(
            f"docker compose run --rm --no-deps -T {q(svc)} {' '.join(q(c) for c in command)} "
            "|| fail 'the release command failed; the previous version keeps serving'"
        )
    out.append("# 8. rolling update of routed services")
    out += [f"rollout {q(svc)} {n}" for svc, n in plan.routed.items()]
    out.append("# 9. recreate workers")
    if plan.workers:
        workers = " ".join(q(w) for w in plan.workers)
        out.append(f"docker compose up -d --no-deps --wait --wait-timeout {HEALTH_TIMEOUT_S} {workers}")
    out.append("# 10. start or reload the proxy")
    if plan.proxy:
        out += [
            "docker compose up -d --no-deps proxy",
            "docker compose exec -T proxy caddy reload --config /etc/caddy/Caddyfile --adapter caddyfile",
        ]
    out += [
        "# 11. prune unused images",
        "docker image prune -f >/dev/null",
        f"log 'deploy of {plan.app} finished'",
    ]
    return "\n".join(out) + "\n"
