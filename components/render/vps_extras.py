"""Pure pieces for the VPS rung's accessories, service volumes and scheduled jobs.

The VPS runtime (compose document, deploy, hardening) merges these; nothing here touches
a server. Every value from the config reaches its sink quoted for that sink: Compose
interpolation (`$` doubled), systemd's ExecStart grammar (quotes, `%` and `$` doubled).
"""

from __future__ import annotations

from typing import Any

from components.render.backup import cron_to_oncalendar
from components.render.compose import DATA_DIR, LOGGING, PROJECT_DIR, compose_escape
from components.render.resources import limits, memory_mb
from components.settings import Accessory, Settings, volume_slug

# Every service volume and accessory volume lives on the data volume, never on the root disk.
VOLUMES_DIR = f"{DATA_DIR}/volumes"
# Held by the deploy around its release step: a job waits for it, so it never runs during
# a release (and a release never starts while a job runs).
DEPLOY_LOCK = "/run/lock/ladder-deploy.lock"
LOCK_WAIT_S = 900
# The unit the monitoring path provides; instantiated with the failed unit's name.
ALERT_UNIT = "ladder-alert@%n.service"
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


def accessory_service(s: Settings, name: str, acc: Accessory) -> dict[str, Any]:
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


def accessory_services(s: Settings) -> dict[str, dict[str, Any]]:
    """Compose services for `ladder:accessories`, hardened like the data stores."""
    return {name: accessory_service(s, name, acc) for name, acc in sorted(s.accessories.items())}


def systemd_quote(arg: str) -> str:
    """One ExecStart word: double-quoted, with systemd's specifier (`%`) and variable (`$`) escapes."""
    if any(ord(c) < 32 or ord(c) == 127 for c in arg):
        raise ValueError(f"control character in {arg!r}")
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def job_unit_name(job: str) -> str:
    return f"ladder-job-{job}"


def job_units(s: Settings, project_dir: str = PROJECT_DIR) -> dict[str, str]:
    """{path: content} of a service and a timer per `ladder:app.jobs` entry.

    The service runs `docker compose run --rm` of the job's service under `flock` on the
    deploy's lock (so never during a release, and one run at a time: a timer does not
    start a unit that is still running), killed after `timeout` seconds; output goes to
    the journal under `ladder-job-<name>`; a non-zero exit or a timeout fails the unit,
    which starts `ladder-alert@<unit>.service`. Schedules are cron in UTC.
    """
    units: dict[str, str] = {}
    for name, job in sorted(s.app.jobs.items()):
        unit = job_unit_name(name)
        argv = [
            "/usr/bin/flock",
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
        units[f"{UNIT_DIR}/{unit}.service"] = f"""\
[Unit]
Description=Ladder job {name} of {s.app.name} (service {job.service})
Wants=docker.service
After=docker.service network-online.target
OnFailure={ALERT_UNIT}

[Service]
Type=oneshot
WorkingDirectory={project_dir}
ExecStart={" ".join(systemd_quote(a) for a in argv)}
# A killed client can leave the container behind: remove it whatever the outcome.
ExecStopPost=-/usr/bin/docker rm -f {unit}
TimeoutStartSec={LOCK_WAIT_S + job.timeout + 60}
SyslogIdentifier={unit}
StandardOutput=journal
StandardError=journal
"""
        units[f"{UNIT_DIR}/{unit}.timer"] = f"""\
[Unit]
Description=Schedule of Ladder job {name} ({job.schedule} in cron terms, UTC)

[Timer]
{calendars}
Unit={unit}.service

[Install]
WantedBy=timers.target
"""
    return units
