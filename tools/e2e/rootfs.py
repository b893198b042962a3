"""Debian root filesystems for the test servers and the stand-in images, cached by their inputs.

Debian 13 (trixie) stands in for Ubuntu 24.04: both ship Docker 26 from the distribution,
Compose v2 as the CLI plugin, systemd, cloud-init, OpenSSH, ufw and fail2ban.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from tools.e2e.proc import run

SUITE = "trixie"
MIRROR = "http://deb.debian.org/debian"

# What an Ubuntu cloud image has before cloud-init runs, plus the packages Ladder's user data
# installs (installed here because the test servers have no internet: cloud-init's apt runs
# against the bench's local repository and finds them installed).
SERVER_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "cloud-init",
    "openssh-server",
    "sudo",
    "docker.io",
    "docker-cli",
    "docker-compose",
    "ufw",
    "fail2ban",
    "python3-systemd",
    "unattended-upgrades",
    "curl",
    "iproute2",
    "iptables",
    "procps",
    "util-linux",
    "e2fsprogs",
    "kmod",
    "ca-certificates",
    "less",
    "age",  # the deploy installs it on the data host when backups are on (encrypts the dumps)
)
# One image rootfs serves every stand-in image (they differ only in entrypoint and env), so
# each server pulls its layer once.
IMAGE_PACKAGES = (
    "python3",
    "python3-psycopg2",
    "python3-redis",
    "postgresql-17",
    "valkey-server",
    "valkey-tools",
    "awscli",
    "curl",
    "wget",
    "ca-certificates",
    "procps",
    "gzip",
)


def _key(name: str, packages: tuple[str, ...], extra: str) -> str:
    text = "\n".join([SUITE, MIRROR, name, *packages, extra])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def build(cache: Path, name: str, packages: tuple[str, ...], setup: str = "") -> Path:
    """A rootfs at cache/<name>-<key>; built once per distinct input (suite, packages, setup)."""
    target = cache / f"{name}-{_key(name, packages, setup)}"
    if (target / ".ladder-complete").exists():
        return target
    tmp = target.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    run(["debootstrap", "--variant=minbase", "--include=ca-certificates", SUITE, str(tmp), MIRROR], timeout=900)
    (tmp / "etc/apt/sources.list").write_text(f"deb {MIRROR} {SUITE} main\n")
    env_chroot = ["chroot", str(tmp), "env", "DEBIAN_FRONTEND=noninteractive"]
    run([*env_chroot, "apt-get", "update", "-q"], timeout=600)
    run([*env_chroot, "apt-get", "install", "-y", "-q", "--no-install-recommends", *packages], timeout=1200)
    run([*env_chroot, "apt-get", "clean"])
    if setup:
        run(["chroot", str(tmp), "bash", "-euo", "pipefail", "-c", setup], timeout=300)
    (tmp / ".ladder-complete").write_text(name + "\n")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


# The test servers: cloud-init's NoCloud datasource only (no network metadata service),
# and no apt sources but the bench's local repository (written per run).
SERVER_SETUP = """
printf 'datasource_list: [ NoCloud, None ]\\n' > /etc/cloud/cloud.cfg.d/90-ladder-bench.cfg
rm -f /etc/ssh/ssh_host_*
systemctl disable ssh.socket 2>/dev/null || true
systemctl enable ssh.service
"""

IMAGE_SETUP = """
groupmod -g 70 postgres && usermod -u 70 -g 70 postgres
chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql 2>/dev/null || true
id valkey >/dev/null 2>&1 || useradd --system --home-dir /data valkey
mkdir -p /data /config /app && chown valkey:valkey /data
"""


def server_rootfs(cache: Path) -> Path:
    return build(cache, "server", SERVER_PACKAGES, SERVER_SETUP)


def image_rootfs(cache: Path) -> Path:
    return build(cache, "image", IMAGE_PACKAGES, IMAGE_SETUP)
