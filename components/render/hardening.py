"""Hardened Ubuntu LTS cloud-config shared by every server Ladder provisions.

Only things that never change with the app live here (users, SSH, firewall, upgrades):
`user_data` forces a server replacement on Hetzner and DigitalOcean, so app config,
images and secrets go over SSH after boot instead.
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

DEPLOY_USER = "deploy"

# Sorts before Ubuntu's 50-cloud-init.conf, which may say `PasswordAuthentication yes`:
# sshd keeps the first value it reads (hetzneronline/community-content#1177).
SSHD_DROP_IN = "/etc/ssh/sshd_config.d/01-ladder-hardening.conf"


@dataclass(frozen=True)
class Opening:
    """An inbound port opened in ufw: `sources` empty means from anywhere."""

    port: str
    protocol: str = "tcp"
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class Hardening:
    ssh_keys: Sequence[str]
    openings: Sequence[Opening]
    trusted_networks: Sequence[str] = ()  # private ranges allowed in full (e.g. the k3s node network)
    packages: Sequence[str] = ()
    sudo: bool = False  # passwordless sudo for the deploy user (k3s install); Docker hosts use the docker group
    groups: Sequence[str] = ()
    swap_mb: int = 0
    extra_runcmd: Sequence[str] = field(default_factory=tuple)


def sshd_config(user: str = DEPLOY_USER) -> str:
    """Key-only SSH for one login user (the deploy user, or your own user on existing hosts)."""
    return "\n".join(
        [
            "# Ladder: key-only SSH for the deploy user; no root, no passwords.",
            "PermitRootLogin no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "AuthenticationMethods publickey",
            f"AllowUsers {user}",
            "MaxAuthTries 3",
            "X11Forwarding no",
            "",
        ]
    )


# `backend = systemd`: sshd logs to the journal only where no syslog daemon writes
# /var/log/auth.log (Debian, minimal Ubuntu images); with the file backend the jail never starts.
FAIL2BAN_JAIL = "[sshd]\nenabled = true\nbackend = systemd\nbantime = 1h\nfindtime = 10m\nmaxretry = 5\n"
HARDEN_SCRIPT = "/usr/local/sbin/ladder-harden"
COMPOSE_PACKAGE = "docker-compose-v2"
AUTO_UPGRADES = 'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\n'


def ufw_commands(openings: Sequence[Opening], trusted: Sequence[str]) -> list[str]:
    cmds = ["ufw default deny incoming", "ufw default allow outgoing"]
    for net in trusted:
        cmds.append(f"ufw allow from {net}")
    for o in openings:
        if o.sources:
            cmds += [f"ufw allow from {src} to any port {o.port} proto {o.protocol}" for src in o.sources]
        else:
            cmds.append(f"ufw allow {o.port}/{o.protocol}")
    return [*cmds, "ufw --force enable"]


def swap_commands(mb: int) -> list[str]:
    if mb <= 0:
        return []
    return [
        f"[ -f /swapfile ] || (fallocate -l {mb}M /swapfile && chmod 600 /swapfile && mkswap /swapfile)",
        "swapon /swapfile || true",
        "grep -q '^/swapfile' /etc/fstab || echo '/swapfile none swap sw 0 0' >> /etc/fstab",
    ]


def harden_commands(h: Hardening, user: str) -> list[str]:
    """What runs once the packages are in: firewall, swap, groups, services, and a check that
    each took (a failure fails the script, and with it cloud-init or the existing-host run)."""
    return [
        *ufw_commands(h.openings, h.trusted_networks),
        *swap_commands(h.swap_mb),
        # Groups such as `docker` exist only once their package is installed (after `users`).
        *[f"usermod -aG {shlex.quote(group)} {shlex.quote(user)}" for group in h.groups],
        "systemctl enable --now fail2ban",
        "sshd -t",
        "systemctl restart ssh",
        *h.extra_runcmd,
        "ufw status | grep -q '^Status: active'",
        "for _ in $(seq 30); do fail2ban-client status sshd >/dev/null 2>&1 && break; sleep 1; done",
        "fail2ban-client status sshd >/dev/null",
    ]


def harden_script(h: Hardening, user: str) -> str:
    return "\n".join(["#!/usr/bin/env bash", "set -euo pipefail", *harden_commands(h, user)]) + "\n"


def cloud_config(h: Hardening) -> dict[str, Any]:
    """The cloud-config as data (tests inspect it; `render` turns it into user data)."""
    user: dict[str, Any] = {
        "name": DEPLOY_USER,
        "shell": "/bin/bash",
        "lock_passwd": True,
    }
    if h.ssh_keys:
        user["ssh_authorized_keys"] = list(h.ssh_keys)
    if h.sudo:
        user["sudo"] = "ALL=(ALL) NOPASSWD:ALL"
    packages = sorted(
        {"ufw", "fail2ban", "python3-systemd", "unattended-upgrades", "ca-certificates", "curl", *h.packages}
    )
    return {
        "users": [user],
        "disable_root": True,
        "ssh_pwauth": False,
        "package_update": True,
        "package_upgrade": True,
        "packages": packages,
        "write_files": [
            {"path": HARDEN_SCRIPT, "content": harden_script(h, DEPLOY_USER), "permissions": "0700"},
            {"path": SSHD_DROP_IN, "content": sshd_config(), "permissions": "0644", "owner": "root:root"},
            {"path": "/etc/fail2ban/jail.d/ladder.local", "content": FAIL2BAN_JAIL, "permissions": "0644"},
            {"path": "/etc/apt/apt.conf.d/20auto-upgrades", "content": AUTO_UPGRADES, "permissions": "0644"},
        ],
        # One script under `set -e`: cloud-init judges runcmd by its last command only, so a
        # list would report success with ufw missing or fail2ban dead.
        "runcmd": [[HARDEN_SCRIPT]],
    }


def shell_script(h: Hardening, user: str) -> str:
    """The same hardening for a host Ladder did not create (no cloud-init): run as root
    over SSH. The login user is `user`, which keeps its own keys; it joins the listed groups."""
    config = cloud_config(h)
    lines = [
        "#!/usr/bin/env bash",
        "# Ladder: harden an existing host (idempotent).",
        "set -euo pipefail",
        "export DEBIAN_FRONTEND=noninteractive",
        "apt-get update -q",
        "apt-get install -y -q " + " ".join(p for p in config["packages"] if p != COMPOSE_PACKAGE),
    ]
    if COMPOSE_PACKAGE in config["packages"]:
        # Ubuntu packages the Compose v2 plugin as docker-compose-v2; Debian 13 as docker-compose
        # (Debian 12's docker-compose is Compose v1, which Ladder cannot use).
        lines += [
            f"if apt-cache show {COMPOSE_PACKAGE} >/dev/null 2>&1; then apt-get install -y -q {COMPOSE_PACKAGE}; "
            "else apt-get install -y -q docker-compose; fi",
            "docker compose version >/dev/null 2>&1 || "
            "{ echo 'ladder: this host has no Docker Compose v2 plugin (Ubuntu 22.04+, Debian 13+)' >&2; exit 1; }",
        ]
    for f in config["write_files"]:
        if f["path"] == HARDEN_SCRIPT:
            continue
        content = sshd_config(user) if f["path"] == SSHD_DROP_IN else f["content"]
        lines += [
            f"mkdir -p {shlex.quote(f['path'].rsplit('/', 1)[0])}",
            f"cat > {shlex.quote(f['path'])} <<'LADDER_EOF'\n{content.rstrip()}\nLADDER_EOF",
            f"chmod {f['permissions']} {shlex.quote(f['path'])}",
        ]
    lines += harden_commands(h, user)
    return "\n".join(lines) + "\n"


ALLOWLIST_COMMENT = "ladder-allowlist"


def _bare(cidr: str) -> str:
    """How `ufw status` prints a source: single addresses without their /32 or /128."""
    net = ipaddress.ip_network(cidr, strict=False)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def access_script(keys: Sequence[str], allow_from: Sequence[str], ports: Sequence[str]) -> str:
    """Who may log in and from where, applied over SSH after boot (user data would replace the
    server on every change): the login user's authorized_keys, then ufw narrowed from the
    bootstrap `allow PORT/tcp` to the allowlist, dropping sources no longer listed. Rules are
    added before any is removed, so the session running this is never cut off."""
    wanted = " ".join(_bare(c) for c in allow_from)
    body = "\n".join(k.strip() for k in keys if k.strip())
    port_list = " ".join(shlex.quote(p) for p in ports)
    return f"""#!/usr/bin/env bash
# Ladder: SSH keys and the SSH allowlist (idempotent).
set -euo pipefail
install -d -m 700 ~/.ssh
cat > ~/.ssh/authorized_keys.new <<'LADDER_EOF'
{body}
LADDER_EOF
chmod 600 ~/.ssh/authorized_keys.new
mv -f ~/.ssh/authorized_keys.new ~/.ssh/authorized_keys
wanted=" {wanted} "
for port in {port_list}; do
  for src in $wanted; do
    sudo ufw allow from "$src" to any port "$port" proto tcp comment {ALLOWLIST_COMMENT} >/dev/null
  done
  sudo ufw delete allow "$port/tcp" >/dev/null 2>&1 || true
done
sudo ufw status | awk '/# {ALLOWLIST_COMMENT}/ {{ i = ($2 == "(v6)") ? 3 : 2; print $1, $(i + 1) }}' |
  while read -r spec src; do
    case "$wanted" in
      *" $src "*) ;;
      *) sudo ufw delete allow from "$src" to any port "${{spec%/tcp}}" proto tcp >/dev/null ;;
    esac
  done
"""


def render(config: dict[str, Any]) -> str:
    """User data text: cloud-init requires the `#cloud-config` header on the first line."""
    return "#cloud-config\n" + yaml.safe_dump(config, sort_keys=False, width=1000)
