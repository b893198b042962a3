"""A light uptime watch for VPS hosts without a provider uptime service (Hetzner, existing).

A systemd timer on each app server fetches the public health URL every minute (through
DNS, TLS and the proxy, as a user would) and mails `monitoring.alertEmail` through the
SMTP relay when the state changes (down, then up again). It costs nothing and needs no
extra package (curl speaks SMTP). Its limit is stated in docs/operations.md: a host that
is down cannot report itself, so an external check is still worth adding for one server.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from components.render.backup import HostFile

WATCH_SCRIPT_PATH = "/usr/local/sbin/ladder-watch"
WATCH_ENV_PATH = "/etc/ladder/watch.curlrc"  # SMTP credentials as a curl config file (mode 600)
WATCH_STATE = "/var/lib/ladder-watch/state"
SERVICE_PATH = "/etc/systemd/system/ladder-watch.service"
TIMER_PATH = "/etc/systemd/system/ladder-watch.timer"
INSTALL_COMMAND = f"chmod 600 {WATCH_ENV_PATH} && systemctl daemon-reload && systemctl enable --now ladder-watch.timer"


@dataclass(frozen=True)
class WatchArgs:
    url: str
    alert_email: str
    smtp_host: str  # host:port
    sender: str
    host_label: str


def _curl_quoted(value: str) -> str:
    """A double-quoted string of curl's config syntax (its escapes: `\\\\ \\" \\t \\n \\r \\v`)."""
    escapes = {"\\": "\\\\", '"': '\\"', "\t": "\\t", "\n": "\\n", "\r": "\\r", "\v": "\\v"}
    return '"' + "".join(escapes.get(c, c) for c in value) + '"'


def watch_env_file(user: str | None, password: str | None) -> str:
    """SMTP credentials (mode 600) as a curl config file, which curl reads with `--config`: the
    password never is on curl's command line (any user can read /proc/<pid>/cmdline), and no
    shell reads the file. Empty without a user. Wrap the result in a secret."""
    if not user:
        return "# no SMTP login\n"
    return f"user = {_curl_quoted(user + ':' + (password or ''))}\n"


def watch_script(a: WatchArgs) -> str:
    """The root-run check. Config values appear only as shell-quoted assignments and
    arguments (never in a comment, never inside double quotes), so no value becomes code."""
    q = shlex.quote
    return f"""#!/usr/bin/env bash
# Ladder uptime watch: mail when the public health URL goes down or comes back.
set -uo pipefail
URL={q(a.url)}
HOST_LABEL={q(a.host_label)}
STATE_FILE={WATCH_STATE}
mkdir -p "$(dirname "$STATE_FILE")"
previous=$(cat "$STATE_FILE" 2>/dev/null || echo up)
if curl -fsS --max-time 15 -o /dev/null "$URL"; then now=up; else now=down; fi
echo "$now" > "$STATE_FILE"
[ "$now" = "$previous" ] && exit 0
subject="[ladder] $HOST_LABEL: $URL is $now"
body="$subject at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
{mail_command(a)}
"""


def mail_command(a: WatchArgs) -> str:
    """Bash that mails `$subject` / `$body` to the alert address through the SMTP relay, with
    the login curl reads from `WATCH_ENV_PATH` (never on its command line); shared by the
    watch and job alerts."""
    q = shlex.quote
    return f"""printf 'From: %s\\nTo: %s\\nSubject: %s\\n\\n%s\\n' {q(a.sender)} {q(a.alert_email)} "$subject" "$body" |
  curl -fsS --config {q(WATCH_ENV_PATH)} --ssl-reqd --url {q("smtp://" + a.smtp_host)} \\
    --mail-from {q(a.sender)} --mail-rcpt {q(a.alert_email)} --upload-file -"""


def watch_units() -> dict[str, str]:
    service = f"""[Unit]
Description=Ladder uptime watch
After=network-online.target

[Service]
Type=oneshot
ExecStart={WATCH_SCRIPT_PATH}
"""
    timer = """[Unit]
Description=Ladder uptime watch every minute

[Timer]
OnBootSec=2min
OnUnitActiveSec=1min
Unit=ladder-watch.service

[Install]
WantedBy=timers.target
"""
    return {SERVICE_PATH: service, TIMER_PATH: timer}


def watch_files(a: WatchArgs) -> list[HostFile]:
    files = [HostFile(WATCH_SCRIPT_PATH, watch_script(a), "0755")]
    return files + [HostFile(path, text, "0644") for path, text in watch_units().items()]
