"""The deploy script the VPS rung runs over SSH: the order of a deploy, in one place.

Steps (each must succeed before the next; a failure stops the deploy and fails `pulumi up`):

1. wait for cloud-init to finish (a new server is still installing Docker)
2. mount the data volume (data host only) and create the Postgres directory on it
3. write the project files atomically (compose file, Caddyfile, env files with mode 600)
4. pull every image, so nothing below waits on the network (logged in, for the pull only,
   to the registries `ladder:registries` has credentials for: `registry_login.py`); create
   missing volume directories on the data volume, owned by the user each image runs as
5. start or update the data stores and wait until they are healthy
6. install the backup script and its systemd timer (data host, when `ladder:backups` is set)
   and the uptime watch timer (app hosts on Hetzner or existing hosts, with monitoring)
7. take the deploy lock (jobs wait for it; held to the end), install the timers of
   `ladder:app.jobs` and their failure alert (the first app host), then run the release
   command once, against the new image, before any traffic moves
8. rolling update of each routed service: start new containers next to the old ones,
   wait until every new one is healthy, only then let them join the proxy's pool and fence,
   drain and stop the old ones; if one never turns healthy, remove the new ones and fail,
   and the old version keeps serving
9. recreate the workers (no traffic to move)
10. start the proxy (a changed Caddyfile was reloaded in step 8; a reload closes every
    open connection, so a deploy reloads only when the Caddyfile itself changed)
11. remove images nothing uses any more
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from components.render import registry_login, watch
from components.render.backup import (
    ENV_FILE_PATH,
    INSTALL_AGE,
    INSTALL_COMMAND,
    HostFile,
    VpsBackupArgs,
    vps_backup_files,
)
from components.render.compose import (
    APP_ENV,
    CADDY_UID,
    DATA_DIR,
    DATABASE_CA,
    POSTGRES_UID,
    PROJECT_DIR,
    PROXY_INIT,
    REVISION_LABEL,
    revision_variable,
    route_network_name,
)
from components.render.hardening import WAIT_CLOUD_INIT
from components.render.heredoc import write_file
from components.render.vps_extras import DEPLOY_LOCK, VolumeDir
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
    "start the proxy",
    "prune unused images",
)
HEALTH_TIMEOUT_S = 180
POOL_WAIT_S = 2  # after new containers joined the pool: the proxy re-reads it every POOL_REFRESH (1 s)
DRAIN_S = 3  # after old containers were fenced, before they get SIGTERM: requests in flight finish
BACKUP_ENV = "backup.env"  # secret_contents key of the backup credentials
WATCH_ENV = "watch.env"  # secret_contents key of the SMTP credentials of the uptime watch
PREVIOUS_DIR = ".previous"  # the last good project files, put back when a deploy fails
DOCKER_DROP_IN = "/etc/systemd/system/docker.service.d/ladder-data-volume.conf"


@dataclass(frozen=True)
class DeployPlan:
    """What one server's deploy does; everything a deploy changes is in here (and so in its hash)."""

    app: str
    files: Mapping[str, str]  # relative path -> content (non-secret)
    secret_files: Sequence[str] = ()  # relative paths whose content is passed separately
    data_services: Sequence[str] = ()
    release: tuple[str, tuple[str, ...]] | None = None  # (service, command)
    routed: Mapping[str, int] = field(default_factory=dict)  # service -> replicas
    ports: Mapping[str, int] = field(default_factory=dict)  # routed service -> container port
    definitions: Mapping[str, str] = field(default_factory=dict)  # routed service -> its compose definition
    workers: Sequence[str] = ()
    proxy: bool = True
    volume_device: str | None = None
    backup: VpsBackupArgs | None = None  # its credentials come as the secret file BACKUP_ENV
    watch: WatchArgs | None = None  # its SMTP credentials come as the secret file WATCH_ENV
    database_ca: bool = False  # managed Postgres: its CA comes in secret_contents[DATABASE_CA]
    # (server, username) to log in to before the pull; each token comes as the secret
    # `registry_login.secret_key(server)`.
    registries: Sequence[tuple[str, str]] = ()
    # issue 14 (components/render/vps_extras.py): volume directories, job units and their alerts
    data_volume: bool = False  # the host mounts the block volume (Postgres, accessories, volumes)
    volume_dirs: Sequence[VolumeDir] = ()
    job_files: Sequence[HostFile] = ()
    jobs_install: str | None = None  # set on the job host (even with no job: removes old timers)
    alert: WatchArgs | None = None  # failed jobs mail through the watch's relay (WATCH_ENV)
    lock_wait: int = 60  # seconds the release waits for running jobs


def revision(definition: str, env_file: str) -> str:
    """A routed service's revision: its definition and the env file it reads. Equal revisions
    mean nothing to roll out (the deploy compares it with the running containers' label)."""
    return hashlib.sha256(f"{definition}\0{env_file}".encode()).hexdigest()[:20]


def _heredoc(path: str, content: str, mode: str) -> str:
    """Write `content` to `path` (relative to the project, or absolute) atomically; a missing
    project directory is created 0750, a system one 0755 (system locations are world-readable)."""
    if path.startswith("/"):
        return write_file(path, content, mode)
    return write_file(f"{PROJECT_DIR}/{path}", content, mode, parent_mode="0750")


# Health status when a container has a healthcheck, else its run state.
_HEALTH_FORMAT = "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}"

_FUNCTIONS = f"""HEALTH_FORMAT='{_HEALTH_FORMAT}'
NAME_FORMAT='{{{{.Name}}}}'
REVISION_FORMAT='{{{{index .Config.Labels "{REVISION_LABEL}"}}}}'
LAST_CHECK='{{{{if .State.Health}}}}{{{{range .State.Health.Log}}}}{{{{.Output}}}}{{{{end}}}}{{{{end}}}}'
P={PROJECT_DIR}
log() {{ echo "ladder: $(date -u +%T) $*" >&2; }}
fail() {{ echo "ladder: DEPLOY FAILED: $*" >&2; exit 1; }}

{WAIT_CLOUD_INIT}

# The project files of the last good deploy, put back if this one fails, so that
# compose.yaml always describes what runs.
keep_previous() {{
  rm -rf "$P/{PREVIOUS_DIR}"
  [ -f "$P/compose.yaml" ] || return 0
  mkdir -p "$P/{PREVIOUS_DIR}"
  cp -a "$P/compose.yaml" "$P"/*.env "$P/caddy" "$P/{PREVIOUS_DIR}/" 2>/dev/null || true
}}
restore_previous() {{
  [ -d "$P/{PREVIOUS_DIR}" ] || return 0
  cp -a "$P/{PREVIOUS_DIR}/." "$P/"
  log "restored the previous project files"
}}
on_exit() {{
  local rc=$?
  forget_registry_logins
  if [ "$rc" -ne 0 ] && [ "${{FILES_WRITTEN:-0}}" = 1 ]; then restore_previous; fi
  exit "$rc"
}}

containers() {{  # ids of a service's containers, any state
  docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.service=$1"
}}

# Waits until every container id given is healthy (or running, without a healthcheck);
# prints why one is not.
wait_healthy() {{
  local deadline=$((SECONDS + {HEALTH_TIMEOUT_S})) id state
  for id in "$@"; do
    while :; do
      state=$(docker inspect -f "$HEALTH_FORMAT" "$id")
      case "$state" in
        healthy|running) break ;;
        unhealthy|exited|dead)
          echo "$(docker inspect -f "$NAME_FORMAT" "$id") is $state:" \\
            "$(docker inspect -f "$LAST_CHECK" "$id" | tail -c 300)"
          return 1 ;;
      esac
      if [ "$SECONDS" -ge "$deadline" ]; then
        echo "$id: not healthy within {HEALTH_TIMEOUT_S}s ($state)"; return 1
      fi
      sleep 1
    done
  done
}}

# Health-gated rolling update of every routed service at once. New containers start beside
# the old ones, outside the service's pool: the proxy resolves the pool by the service's name
# on the service's route network, and a container joins it only when every new one is healthy.
# Then the old ones are fenced (new connections refused, which the proxy retries elsewhere at
# once; open ones go on), drained, and stopped. A failure removes the new ones before they
# joined: users never see them. The proxy is never reloaded for this.
declare -A OLD=() NEW=()
start_new() {{
  local svc=$1 want=$2 rev=$3 var=$4 old current count
  old=$(containers "$svc" | tr '\\n' ' ')
  count=$(wc -w <<<"$old")
  # shellcheck disable=SC2086
  current=$( [ -z "${{old// /}}" ] || docker inspect -f "$REVISION_FORMAT" $old | sort -u)
  if [ -n "${{old// /}}" ] && [ "$current" = "$rev" ] && [ "$count" -eq "$want" ]; then
    return 0
  fi
  export "$var=$rev"
  if [ "$current" = "$rev" ]; then old=""; count=0; fi  # a replica count change only
  log "$svc: starting $want new container(s) beside $count running"
  docker compose up -d --no-deps --no-recreate --scale "$svc=$((count + want))" "$svc" >/dev/null 2>&1 \\
    || docker compose up -d --no-deps --no-recreate --scale "$svc=$((count + want))" "$svc"
  OLD[$svc]=$old
  # shellcheck disable=SC2086
  NEW[$svc]=$(comm -13 <(printf '%s\\n' $old | sort) <(containers "$svc" | sort) | tr '\\n' ' ')
}}
route_network() {{  # network: created once, internal (the proxy and the pool, nothing else)
  docker network inspect "$1" >/dev/null 2>&1 \\
    || docker network create --internal --label "dev.ladder.project=$PROJECT" "$1" >/dev/null
}}
join_pool() {{  # service network id...
  local svc=$1 net=$2 id
  shift 2
  for id in "$@"; do
    docker network connect --alias "$svc" "$net" "$id"
  done
}}
# Refuses new TCP connections to a container from outside it (a reset, so the proxy's dial
# fails at once and it retries another member) while open ones finish: the kernel's job, in
# the container's network namespace, whatever the app does on SIGTERM.
fence() {{
  local id pid
  for id in "$@"; do
    pid=$(docker inspect -f '{{{{.State.Pid}}}}' "$id")
    [ "$pid" -gt 0 ] || continue
    if ! nsenter -t "$pid" -n iptables -w -I INPUT ! -i lo -p tcp --syn -j REJECT --reject-with tcp-reset; then
      log "could not fence $id (no iptables/nsenter?): it stops without a fence"
    fi
  done
}}
reload_proxy() {{
  [ -n "$(docker compose ps -q proxy 2>/dev/null)" ] || return 0
  log "reloading the proxy"
  docker compose exec -T proxy caddy reload --config /etc/caddy/Caddyfile --adapter caddyfile >/dev/null \
    || fail "the proxy refused its new configuration"
}}
"""


def _database_ca(certificate: str) -> list[str]:
    """The managed database's CA, readable by the app's (non-root) user: a public certificate.
    Without a PEM certificate (an empty provider answer) the deploy stops there with a clear
    message, rather than every database connection failing later."""
    if "-----BEGIN CERTIFICATE-----" not in certificate:
        return ["fail 'the managed database CA certificate is missing (digitalocean.get_database_ca)'"]
    directory = f"{PROJECT_DIR}/{DATABASE_CA.rsplit('/', 1)[0]}"
    return [
        f"[ -d {directory} ] || install -d -m 0755 {directory}",
        f"chmod 0755 {directory}",
        _heredoc(DATABASE_CA, certificate, "0644"),
    ]


# Issue 14's helpers, apart from the rolling update above.
_EXTRA_FUNCTIONS = f"""
# A volume's directory on the data volume, made once (its files are the data): owned by the
# user IMAGE runs as (a service runs with every capability dropped and could not write a
# root-owned one), or root for an accessory (its entrypoint hands it to its own user).
volume_dir() {{
  local dir=$1 image=${{2:-}} owner=0:0 user
  [ -d "$dir" ] && return 0
  if [ -n "$image" ]; then
    user=$(docker image inspect -f '{{{{.Config.User}}}}' "$image")
    if [[ "$user" =~ ^[0-9]+:[0-9]+$ ]]; then
      owner=$user
    elif [ -n "$user" ] && [ "$user" != root ] && [ "$user" != 0 ]; then
      # shellcheck disable=SC2016
      owner=$(docker run --rm --network none --entrypoint sh "$image" -c 'echo "$(id -u):$(id -g)"') || owner=""
    fi
  fi
  [[ "$owner" =~ ^[0-9]+:[0-9]+$ ]] \\
    || fail "cannot tell which user $image runs as: give the image a numeric USER (uid:gid)"
  mkdir -p "$(dirname "$dir")"
  install -d -m 0750 -o "${{owner%%:*}}" -g "${{owner##*:}}" "$dir"
  log "created $dir for $owner"
}}
# Held from the release step until the deploy ends: scheduled jobs take the same lock
# (shared), so none starts during a release and the release waits for running ones.
deploy_lock() {{
  exec 9>{DEPLOY_LOCK}
  flock --wait "$1" 9 || fail "a scheduled job still runs after $1s; the deploy stopped before its release"
}}
"""


def _extras_files(plan: DeployPlan, secret_contents: Mapping[str, str]) -> list[str]:
    """Step 7's issue-14 part, under the lock: job units and the alert path on the job host."""
    out = [_heredoc(f.path, f.content, f.mode) for f in plan.job_files]
    if plan.alert and not plan.watch:  # the alert mails with the watch's SMTP credentials
        out.append(_heredoc(watch.WATCH_ENV_PATH, secret_contents[WATCH_ENV], "0600"))
    if plan.jobs_install:
        out.append(plan.jobs_install)
    return out


def deploy_script(plan: DeployPlan, secret_contents: Mapping[str, str]) -> str:
    """The whole deploy as one bash script, run as root by `ladder-apply` from stdin (never argv).

    The body is one function called on the last line with stdin from /dev/null: bash has
    read the whole script before anything runs, so no command inside (`docker compose run`,
    `exec -T`) can swallow the rest of it and let bash exit 0 half way.
    """
    missing = set(plan.secret_files) - set(secret_contents)
    if plan.backup and BACKUP_ENV not in secret_contents:
        missing.add(BACKUP_ENV)
    if (plan.watch or plan.alert) and WATCH_ENV not in secret_contents:
        missing.add(WATCH_ENV)
    if plan.database_ca and DATABASE_CA not in secret_contents:
        missing.add(DATABASE_CA)
    missing |= {registry_login.secret_key(server) for server, _ in plan.registries} - set(secret_contents)
    if missing:
        raise ValueError(f"no content for secret files {sorted(missing)}")
    q = shlex.quote
    env_file = secret_contents.get(APP_ENV, "")
    out = [
        "#!/usr/bin/env bash",
        f"# Ladder deploy of {plan.app}. Steps: " + "; ".join(f"{i}. {s}" for i, s in enumerate(STEPS, 1)),
        "set -euo pipefail",
        "umask 077",
        f"PROJECT={q(plan.app)}",
        _FUNCTIONS,
        registry_login.FUNCTIONS,
        _EXTRA_FUNCTIONS,
        "main() {",
        "trap on_exit EXIT",
        "# 1. wait for cloud-init",
        "wait_cloud_init",
        "command -v docker >/dev/null || fail 'docker is not installed on this host'",
        "docker compose version >/dev/null 2>&1 || fail 'the Docker Compose v2 plugin is not installed on this host'",
        "# 2. mount the data volume",
    ]
    if plan.volume_device:
        dev = q(plan.volume_device)
        out += [
            f"[ -d {DATA_DIR} ] || install -d -m 0755 {DATA_DIR}",
            f"if ! mountpoint -q {DATA_DIR}; then",
            f"  for _ in $(seq 60); do [ -e {dev} ] && break; sleep 2; done",
            f"  [ -e {dev} ] || fail 'data volume {plan.volume_device} is not attached'",
            f"  blkid {dev} >/dev/null || mkfs.ext4 -q {dev}",
            f"  grep -q ' {DATA_DIR} ' /etc/fstab || "
            f"echo '{plan.volume_device} {DATA_DIR} ext4 defaults,nofail,discard 0 2' >> /etc/fstab",
            f"  mount {DATA_DIR}",
            "fi",
            # After a reboot Docker must not start Postgres before the volume is mounted (it would
            # start on the empty directory underneath, or crash-loop on it).
            _heredoc(DOCKER_DROP_IN, f"[Unit]\nRequiresMountsFor={DATA_DIR}\n", "0644"),
            "systemctl daemon-reload",
        ]
    if "postgres" in plan.data_services:
        uid, gid = POSTGRES_UID.split(":")
        out.append(f"[ -d {DATA_DIR}/postgres ] || install -d -m 0700 -o {uid} -g {gid} {DATA_DIR}/postgres")
    out += [
        "# 3. write project files",
        f"[ -d {PROJECT_DIR} ] || install -d -m 0750 {PROJECT_DIR}",
        "keep_previous",
        "FILES_WRITTEN=1",
    ]
    for path, content in sorted(plan.files.items()):
        out.append(_heredoc(path, content, "0640"))
    if plan.proxy:
        # Caddy runs unprivileged: its directory and the Caddyfile are group-readable by it.
        out.append(f"chgrp -R {CADDY_UID} {PROJECT_DIR}/caddy")
    for path in plan.secret_files:
        out.append(_heredoc(path, secret_contents[path], "0600"))
    if plan.database_ca:
        out += _database_ca(secret_contents[DATABASE_CA])
    out += [
        f"cd {PROJECT_DIR}",
        # Compose checks every network of the project exists before it starts anything.
        *(f"route_network {q(route_network_name(plan.app, svc))}" for svc in plan.routed),
        "# 4. pull images",
        *registry_login.pull_lines(
            plan.registries,
            secret_contents,
            "docker compose pull --quiet --ignore-buildable || fail 'pulling the images failed (see above)'",
        ),
        *(f"volume_dir {q(d.path)}" + (f" {q(d.image)}" if d.image else "") for d in plan.volume_dirs),
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
        out.append(INSTALL_AGE)
        out += [_heredoc(f.path, f.content, f.mode) for f in vps_backup_files(plan.backup)]
        out += [_heredoc(ENV_FILE_PATH, secret_contents[BACKUP_ENV], "0600"), INSTALL_COMMAND]
    if plan.watch:
        out += [_heredoc(f.path, f.content, f.mode) for f in watch.watch_files(plan.watch)]
        out += [_heredoc(watch.WATCH_ENV_PATH, secret_contents[WATCH_ENV], "0600"), watch.INSTALL_COMMAND]
    revisions = {svc: revision(plan.definitions.get(svc, ""), env_file) for svc in plan.routed}
    changed = " ".join(q(svc) for svc in plan.routed)
    out.append("# 7. run the release command")
    out.append(f"deploy_lock {plan.lock_wait}")
    # Timers go in under the lock: a first run waits for this deploy's release (migrations).
    out += _extras_files(plan, secret_contents)
    if plan.release:
        svc, command = plan.release
        out.append(
            f"docker compose run --rm --no-deps -T {q(svc)} {' '.join(q(c) for c in command)} "
            "|| fail 'the release command failed; the previous version keeps serving'"
        )
    out.append("# 8. rolling update of routed services")
    out += [f"start_new {q(svc)} {n} {revisions[svc]} {revision_variable(svc)}" for svc, n in plan.routed.items()]
    out += [
        f"for svc in {changed}; do",
        '  [ -n "${NEW[$svc]:-}" ] || continue',
        "  # shellcheck disable=SC2086",
        "  if ! why=$(wait_healthy ${NEW[$svc]}); then",
        '    for s in "${!NEW[@]}"; do',
        "      # shellcheck disable=SC2086",
        '      [ -z "${NEW[$s]// /}" ] || docker rm -f ${NEW[$s]} >/dev/null',
        "    done",
        '    fail "$svc: the new version did not turn healthy ($why);"'
        '" it was removed and the previous version keeps serving"',
        "  fi",
        "done",
    ]
    for svc in plan.routed:
        net = q(route_network_name(plan.app, svc))
        out += [
            f'if [ -n "${{NEW[{svc}]:-}}" ]; then',
            "  # shellcheck disable=SC2086",
            f"  join_pool {q(svc)} {net} ${{NEW[{svc}]}}",
            "fi",
        ]
    out += [
        "# A changed Caddyfile (a new route, domain, ...) is read before the old containers go.",
        f"cmp -s caddy/Caddyfile {PREVIOUS_DIR}/caddy/Caddyfile || reload_proxy",
        "STOP=''",
        f'for svc in {changed}; do STOP="$STOP ${{OLD[$svc]:-}}"; done',
        'if [ -n "${STOP// /}" ]; then',
        f"  sleep {POOL_WAIT_S}  # the proxy resolves the new members",
        '  log "fencing and draining the previous containers"',
        "  # shellcheck disable=SC2086",
        "  fence $STOP",
        f"  sleep {DRAIN_S}",
        '  log "stopping the previous containers"',
        "  # shellcheck disable=SC2086",
        "  docker stop $STOP >/dev/null && docker rm $STOP >/dev/null",
        "fi",
    ]
    out.append("# 9. recreate workers")
    if plan.workers:
        out.append("log 'workers'")
        workers = " ".join(q(w) for w in plan.workers)
        out.append(
            f"docker compose up -d --quiet-pull --no-deps --wait --wait-timeout {HEALTH_TIMEOUT_S} {workers} "
            "|| fail 'workers did not start'"
        )
    out.append("# 10. start the proxy (or recreate it if its compose definition changed)")
    if plan.proxy:
        out += [
            "log 'proxy'",
            # Every deploy: a volume written by an older, root-run Caddy is handed over too.
            f"docker compose run --rm -T {PROXY_INIT} >/dev/null 2>&1 || docker compose run --rm -T {PROXY_INIT} "
            '|| fail "could not hand the proxy\'s volumes to its user"',
            "docker compose up -d --quiet-pull --no-deps proxy",
        ]
    out += [
        "# 11. prune unused images",
        "log 'pruning images'",
        "docker image prune --all --force >/dev/null",
        "FILES_WRITTEN=0",
        f"log 'deploy of {plan.app} finished'",
        "}",
        'main "$@" </dev/null',
    ]
    return "\n".join(out) + "\n"
