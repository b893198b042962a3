"""Pure pieces for the VPS rung's accessories, service volumes and scheduled jobs.

The VPS runtime merges these (`compose.compose_document` the services, `render.vps.host_plan`
the directories, units and backup archives); nothing here touches a server. Every value
from the config reaches its sink quoted for that sink: Compose interpolation (`$` doubled),
systemd's ExecStart grammar (quotes, `%` and `$` doubled), bash (`shlex.quote`).

Where things live with several servers: accessories run on the data host (the data server
with `vps.count > 1`, published on its private IP only, like Postgres); service volumes
only on a single server (settings refuses them with `vps.count > 1`: every app server runs
every service, so each would get its own copy); jobs on the first app server only (the one
that runs the release, so the deploy's lock on it also keeps jobs out of a release).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from components.render import systemd
from components.render.backup import Archive, HostFile, cron_to_oncalendar
from components.render.compose import DATA_DIR, LOGGING, PROJECT_DIR, compose_escape
from components.render.resources import limits, memory_mb
from components.render.watch import WatchArgs, mail_command
from components.settings import Accessory, Settings, unit_unsafe, volume_slug

# Every service volume and accessory volume lives on the data volume, never on the root disk.
VOLUMES_DIR = f"{DATA_DIR}/volumes"
# Held by the deploy around its release step: a job waits for it, so it never runs during
# a release (and a release never starts while a job runs).
DEPLOY_LOCK = "/run/lock/ladder-deploy.lock"
LOCK_WAIT_S = 900
# The unit the monitoring path provides; instantiated with the failed unit's name.
ALERT_UNIT = "ladder-alert@%n.service"
ALERT_SCRIPT_PATH = "/usr/local/sbin/ladder-alert"
UNIT_DIR = "/etc/systemd/system"
# An accessory may start as root to hand its data directory to its own user (official
# images' entrypoints chown, then drop privileges with gosu/su-exec); nothing else.
ACCESSORY_CAPS = ["CHOWN", "SETUID", "SETGID", "FOWNER", "DAC_OVERRIDE"]


def volume_paths(s: Settings) -> dict[str, dict[str, str]]:
    """{service or accessory: {mount path: host directory}} on the data volume.

    `/srv/ladder-data/volumes/<owner>/<slug>`: one directory per owner, so a service and an
    accessory (whose names never clash) never share one.
    """
    owners: dict[str, dict[str, Any]] = {
        **{n: dict(svc.volumes) for n, svc in s.app.services.items() if svc.volumes},
        **{n: dict(acc.volumes) for n, acc in s.accessories.items() if acc.volumes},
    }
    return {
        owner: {path: f"{VOLUMES_DIR}/{owner}/{volume_slug(path)}" for path in sorted(vols)}
        for owner, vols in sorted(owners.items())
    }


def volume_mounts(s: Settings, owner: str) -> list[str]:
    """Compose short-syntax binds (`host:container`) of one service's or accessory's volumes."""
    return [f"{host}:{path}" for path, host in volume_paths(s).get(owner, {}).items()]


def accessory_env_file(name: str) -> str:
    """The env file (mode 600, written by the deploy) holding an accessory's secretEnv."""
    return f"accessory-{name}.env"


def accessory_env_files(s: Settings) -> dict[str, dict[str, str]]:
    """{env file name: {KEY: secret value}} for accessories with `secretEnv` (values from
    ladder:secrets; the caller keeps them Pulumi secrets and writes the files mode 600)."""
    return {
        accessory_env_file(name): {key: s.secret(key) or "" for key in acc.secret_env}
        for name, acc in sorted(s.accessories.items())
        if acc.secret_env
    }


def accessory_service(s: Settings, name: str, acc: Accessory, publish_ip: str | None = None) -> dict[str, Any]:
    """One accessory; `publish_ip` (the data server's private IP with `vps.count > 1`) is the
    only address its port is published on, as for Postgres: app servers reach it there."""
    body: dict[str, Any] = {
        "image": acc.image,
        "restart": "unless-stopped",
        "environment": {k: compose_escape(v) for k, v in sorted(acc.env.items())},
        # Internal only: on the data network, never published, never routed by the proxy.
        "networks": ["data"],
        "logging": LOGGING,
        "deploy": {"resources": {"limits": {"memory": f"{memory_mb(limits(acc.resources).memory)}m"}}},
        "stop_grace_period": "60s",
        "security_opt": ["no-new-privileges:true"],
        "cap_drop": ["ALL"],
        "cap_add": list(ACCESSORY_CAPS),
    }
    if publish_ip:
        body["ports"] = [f"{publish_ip}:{acc.port}:{acc.port}"]
    if acc.secret_env:
        body["env_file"] = [accessory_env_file(name)]
    if acc.command:
        body["command"] = [compose_escape(c) for c in acc.command]
    mounts = volume_mounts(s, name)
    if mounts:
        body["volumes"] = mounts
    if acc.health:
        body["healthcheck"] = {
            "test": ["CMD", *(compose_escape(c) for c in acc.health)],
            "interval": "10s",
            "timeout": "5s",
            "retries": 5,
            "start_period": "30s",
        }
    return body


def accessory_services(s: Settings, publish_ip: str | None = None) -> dict[str, dict[str, Any]]:
    """Compose services for `ladder:accessories`, hardened like the data stores."""
    return {name: accessory_service(s, name, acc, publish_ip) for name, acc in sorted(s.accessories.items())}


@dataclass(frozen=True)
class VolumeDir:
    """A directory the deploy creates on the data volume before its container starts.

    `image` set: a service volume, owned by the user the image runs as (services run with
    every capability dropped, so they could not write a root-owned directory). None: an
    accessory's, root-owned; the official images' entrypoints hand it to their own user.
    Existing directories are left as they are (their files are the data)."""

    path: str
    image: str | None = None


def volume_dirs(s: Settings, app: bool, data: bool) -> list[VolumeDir]:
    """The volume directories of one host: services' on an app host, accessories' on a data host."""
    dirs: list[VolumeDir] = []
    for owner, paths in volume_paths(s).items():
        svc = s.app.services.get(owner)
        if svc is not None and app:
            dirs += [VolumeDir(host, svc.pulled_image) for host in paths.values()]
        elif svc is None and data:
            dirs += [VolumeDir(host) for host in paths.values()]
    return dirs


def archives(s: Settings, app: bool, data: bool) -> list[Archive]:
    """Service volumes (app host) and accessory backups (data host) for the backup timer."""
    out: list[Archive] = []
    for owner, paths in volume_paths(s).items():
        if owner in s.app.services and app:
            for path, host in paths.items():
                out.append(Archive(f"volumes/{owner}-{volume_slug(path)}", "tar", owner, host, (".",)))
    for name, acc in sorted(s.accessories.items()):
        if not data or acc.backup is None:
            continue
        if acc.backup.command:
            out.append(Archive(f"accessories/{name}", "dump", name, command=tuple(acc.backup.command)))
            continue
        dirs = volume_paths(s)[name]
        rel: list[str] = []
        for path in acc.backup.paths or []:
            mount = next(m for m in sorted(dirs, key=len, reverse=True) if path == m or path.startswith(m + "/"))
            rel.append(f"{volume_slug(mount)}{path[len(mount) :]}")
        out.append(Archive(f"accessories/{name}", "tar", name, f"{VOLUMES_DIR}/{name}", tuple(rel)))
    return out


def systemd_quote(arg: str) -> str:
    """One ExecStart word: double-quoted, with systemd's specifier (`%`) and variable (`$`) escapes."""
    if any(unit_unsafe(c) for c in arg):
        raise ValueError(f"control character in {arg!r}")
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def job_unit_name(job: str) -> str:
    return f"ladder-job-{job}"


def job_units(s: Settings, project_dir: str = PROJECT_DIR, alert: bool = False) -> dict[str, str]:
    """{path: content} of a service and a timer per `ladder:app.jobs` entry.

    The service runs `docker compose run --rm --no-deps -T` of the job's service under
    `flock --shared` on the deploy's lock: the deploy holds it exclusively from its release
    step on, so a job never starts during a release and a release waits for running jobs;
    jobs share it, so they do not wait for each other, and systemd never starts a unit
    that is still running, so a job never runs twice at once. `timeout` kills the run;
    `TimeoutStartSec` adds the lock wait. Output goes to the journal under
    `ladder-job-<name>`; a non-zero exit or a timeout fails the unit, which (with
    `alert`, i.e. monitoring mail configured) starts `ladder-alert@<unit>.service`.
    Schedules are cron in UTC.
    """
    units: dict[str, str] = {}
    for name, job in sorted(s.app.jobs.items()):
        unit = job_unit_name(name)
        argv = [
            "/usr/bin/flock",
            "--shared",
            "--wait",
            str(LOCK_WAIT_S),
            DEPLOY_LOCK,
            "/usr/bin/timeout",
            "--kill-after=30",
            str(job.timeout),
            "/usr/bin/docker",
            "compose",
            "run",
            "--rm",
            "--no-deps",
            "-T",
            "--name",
            unit,
            job.service,
            *job.command,
        ]
        calendars = "\n".join(f"OnCalendar={c} UTC" for c in cron_to_oncalendar(job.schedule))
        on_failure = f"OnFailure={ALERT_UNIT}\n" if alert else ""
        units[f"{UNIT_DIR}/{unit}.service"] = f"""\
[Unit]
Description={systemd.text(f"Ladder job {name} of {s.app.name} (service {job.service})")}
Wants=docker.service
After=docker.service network-online.target
{on_failure}
[Service]
Type=oneshot
WorkingDirectory={project_dir}
# A killed client can leave the container behind: remove it before and after a run.
ExecStartPre=-/usr/bin/docker rm -f {unit}
ExecStart={" ".join(systemd_quote(a) for a in argv)}
ExecStopPost=-/usr/bin/docker rm -f {unit}
TimeoutStartSec={job_timeout_start(job.timeout)}
SyslogIdentifier={unit}
StandardOutput=journal
StandardError=journal
"""
        units[f"{UNIT_DIR}/{unit}.timer"] = f"""\
[Unit]
Description={systemd.text(f"Schedule of Ladder job {name} ({job.schedule} in cron terms, UTC)")}

[Timer]
{calendars}
Unit={unit}.service

[Install]
WantedBy=timers.target
"""
    return units


def job_timeout_start(timeout: int) -> int:
    """The unit's `TimeoutStartSec`: the lock wait, the job's `timeout`, `timeout`'s kill grace."""
    return LOCK_WAIT_S + timeout + 60


def deploy_lock_wait(s: Settings) -> int:
    """How long a deploy waits for running jobs before its release: the longest job's worst case."""
    return max((job_timeout_start(j.timeout) - LOCK_WAIT_S for j in s.app.jobs.values()), default=60)


def alert_script(a: WatchArgs) -> str:
    """`ladder-alert UNIT`: mail that a unit failed, with its result and exit status, through
    the uptime watch's relay and credentials. No log lines: a job's output may hold secrets."""
    q = shlex.quote
    return f"""#!/usr/bin/env bash
# Ladder: mail that a systemd unit failed (started by OnFailure= of the job units).
set -uo pipefail
UNIT=${{1:?usage: ladder-alert UNIT}}
HOST_LABEL={q(a.host_label)}
status=$(systemctl show -p Result -p ExecMainStatus --value "$UNIT" | paste -sd ' ')
subject="[ladder] $HOST_LABEL: $UNIT failed"
body="$UNIT failed (result, exit status: $status) at $(date -u +%Y-%m-%dT%H:%M:%SZ); see journalctl -u $UNIT"
{mail_command(a)}
"""


def alert_files(a: WatchArgs) -> list[HostFile]:
    """The alert script and its template unit (`ladder-alert@<failed unit>.service`)."""
    unit = f"""[Unit]
Description=Ladder: mail that %i failed
After=network-online.target

[Service]
Type=oneshot
ExecStart={ALERT_SCRIPT_PATH} %i
"""
    return [
        HostFile(ALERT_SCRIPT_PATH, alert_script(a), "0755"),
        HostFile(f"{UNIT_DIR}/ladder-alert@.service", unit, "0644"),
    ]


def job_files(s: Settings, alert: WatchArgs | None) -> list[HostFile]:
    """Everything the job host gets for `ladder:app.jobs`: units, and the alert path when
    monitoring mail is configured."""
    files = [HostFile(path, text, "0644") for path, text in job_units(s, alert=alert is not None).items()]
    return files + (alert_files(alert) if alert and s.app.jobs else [])


def jobs_install_command(s: Settings) -> str:
    """Reload units, enable every job's timer, and stop the timers of jobs no longer configured."""
    timers = " ".join(shlex.quote(f"{job_unit_name(n)}.timer") for n in sorted(s.app.jobs))
    keep = "|".join(f"{job_unit_name(n)}.timer" for n in sorted(s.app.jobs)) or "-"
    return (
        "systemctl daemon-reload\n"
        + (f"systemctl enable --now {timers}\n" if timers else "")
        + "for t in $(systemctl list-unit-files --no-legend 'ladder-job-*.timer' | cut -d' ' -f1); do\n"
        + f'  case "$t" in {keep}) ;; *) systemctl disable --now "$t" ;; esac\n'
        + "done"
    )
