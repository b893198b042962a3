"""Test servers: `systemd-nspawn --boot` system containers of the Debian rootfs, each in its
own network namespace, booted from the program's own user data (cloud-init NoCloud) or as a
plain "existing" host (a sudo user with a password, as a fresh VPS is handed over).

Each runs systemd, sshd, cloud-init and Docker from the distribution's packages; the bench
talks to it only over SSH, like Pulumi does, and inspects it from outside with nsenter
(read-only commands only: nsenter has no seccomp filter).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tools.e2e import world as w
from tools.e2e.proc import BenchError, run, wait_for

# The container's own docker.service must write the cgroup v1 hierarchies that nspawn mounts
# read-only (this machine's host runs cgroup v1): a bench-only drop-in, listed in the README.
DOCKER_CGROUP_DROP_IN = """[Service]
ExecStartPre=/bin/sh -c 'for c in blkio cpuacct freezer devices memory cpuset pids cpu; do \
mountpoint -q /sys/fs/cgroup/$c || continue; touch /sys/fs/cgroup/$c/.w 2>/dev/null && continue; \
mount -t cgroup -o rw,nosuid,nodev,noexec,$c cgroup /sys/fs/cgroup/$c; done; true'
"""
# nspawn gives the server no udev, so systemd never sees the volume's device appear and the
# fstab mount the deploy added waits for it in vain; on a real server udev triggers it. A
# bench-only unit mounts what fstab lists before Docker starts, as that would.
MOUNT_ALL_UNIT = """[Unit]
Description=Ladder bench: mount fstab entries (no udev in a system container)
DefaultDependencies=no
After=local-fs-pre.target
Before=docker.service local-fs.target

[Service]
Type=oneshot
ExecStart=/bin/mount -a
RemainAfterExit=yes

[Install]
WantedBy=local-fs.target
"""
# Ubuntu's cloud images ship this file; Ladder's drop-in must win over it.
UBUNTU_CLOUD_INIT_SSHD = "PasswordAuthentication yes\n"


@dataclass
class Server:
    name: str
    ip: str
    root: Path  # the server's directory under the run dir
    private_ip: str | None = None
    volume: tuple[str, str] | None = None  # (loop device, path the program names)
    proc: subprocess.Popen[bytes] | None = None
    links: list[str] = field(default_factory=list)

    @property
    def merged(self) -> Path:
        return self.root / "merged"

    @property
    def netns(self) -> str:
        return f"lb-{self.name}"

    def leader(self) -> int:
        assert self.proc is not None
        children = run(["pgrep", "-P", str(self.proc.pid)], check=False).stdout.split()
        if not children:
            raise BenchError(f"{self.name}: the container is not running")
        return int(children[0])

    def inspect(self, command: str, timeout: float = 60, check: bool = True) -> str:
        """A read-only look inside (as root, from outside the container)."""
        return run(
            ["nsenter", "-t", str(self.leader()), "-a", "--", "bash", "-c", command], timeout=timeout, check=check
        ).stdout


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def prepare(
    world: w.World,
    rootfs: Path,
    name: str,
    ip: str,
    *,
    user_data: str | None,
    private_ip: str | None = None,
    volume_path: str | None = None,
    hosts: dict[str, str] | None = None,
    trust: tuple[Path, ...] = (),
) -> Server:
    """Lay out the server's disk (an overlay on the cached rootfs) and its network.

    `trust`: CA certificates the server trusts besides the public ones (the bench's CA and its
    ACME root stand in for the public CAs a real server trusts)."""
    s = Server(name, ip, world.run_dir / "servers" / name, private_ip)
    for d in ("upper", "work", "merged", "docker"):
        (s.root / d).mkdir(parents=True, exist_ok=True)
    run(
        [
            "mount",
            "-t",
            "overlay",
            "overlay",
            "-o",
            f"lowerdir={rootfs},upperdir={s.root / 'upper'},workdir={s.root / 'work'}",
            str(s.merged),
        ]
    )
    m = s.merged
    for f in (m / "etc/apt/sources.list.d").glob("*"):
        f.unlink()
    _write(m / "etc/apt/sources.list", f"deb [trusted=yes] http://{w.GATEWAY}:{w.APT_PORT} ./\n")
    _write(
        m / "etc/docker/daemon.json",
        f'{{"registry-mirrors": ["http://{w.GATEWAY}:{w.REGISTRY_PORT}"], '
        f'"insecure-registries": ["{w.GATEWAY}:{w.REGISTRY_PORT}", "{w.PRIVATE_REGISTRY}"]}}\n',
    )
    _write(m / "etc/systemd/system/docker.service.d/ladder-bench-cgroup.conf", DOCKER_CGROUP_DROP_IN)
    _write(m / "etc/systemd/system/ladder-bench-mount-all.service", MOUNT_ALL_UNIT)
    wants = m / "etc/systemd/system/local-fs.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / "ladder-bench-mount-all.service").symlink_to("/etc/systemd/system/ladder-bench-mount-all.service")
    _write(m / "etc/hostname", name + "\n")
    _write(
        m / "etc/hosts",
        f"127.0.0.1 localhost\n127.0.1.1 {name}\n" + "".join(f"{a} {h}\n" for h, a in (hosts or {}).items()),
    )
    _write(m / "etc/resolv.conf", "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    for i, ca in enumerate(trust):
        pem = ca.read_text()
        _write(m / f"usr/local/share/ca-certificates/ladder-bench-{i}.crt", pem)
        bundle = m / "etc/ssl/certs/ca-certificates.crt"
        bundle.write_text(bundle.read_text() + pem)
    _write(m / "etc/ssh/sshd_config.d/50-cloud-init.conf", UBUNTU_CLOUD_INIT_SSHD)
    if user_data is not None:
        seed = m / "var/lib/cloud/seed/nocloud"
        _write(seed / "user-data", user_data, 0o600)
        _write(seed / "meta-data", f"instance-id: {name}\nlocal-hostname: {name}\n", 0o600)
    else:
        _write(m / "etc/cloud/cloud-init.disabled", "an existing host: cloud-init is installed but never ran\n")
    if volume_path:
        image = s.root / "volume.img"
        run(["truncate", "-s", "2G", str(image)])
        loop = run(["losetup", "--find", "--show", str(image)]).stdout.strip()
        s.volume = (loop, volume_path)
    _network(s)
    return s


def _network(s: Server) -> None:
    run(["ip", "netns", "del", s.netns], check=False)
    run(["ip", "netns", "add", s.netns])
    ns = ["ip", "-n", s.netns]
    run([*ns, "link", "set", "lo", "up"])
    nets: list[tuple[str, str, str, str, str | None]] = [("p", w.PUBLIC_BRIDGE, "eth0", s.ip, None)]
    if s.private_ip:
        nets.append(("q", w.PRIVATE_BRIDGE, "eth1", s.private_ip, w.SWITCH_NETNS))
    for tag, bridge, inner, address, switch in nets:
        outer = f"lb{tag}-{s.name}"[:15]
        run(["ip", "link", "del", outer], check=False)
        run(["ip", "link", "add", outer, "type", "veth", "peer", "name", f"{outer}c"])
        run(["ip", "link", "set", f"{outer}c", "netns", s.netns])
        run([*ns, "link", "set", f"{outer}c", "name", inner])
        at = ["ip"] if switch is None else ["ip", "-n", switch]
        if switch is not None:
            run(["ip", "link", "set", outer, "netns", switch])
        run([*at, "link", "set", outer, "master", bridge, "up"])
        run([*ns, "addr", "add", f"{address}/24", "dev", inner])
        run([*ns, "link", "set", inner, "up"])
        s.links.append(outer)
    run([*ns, "route", "add", "default", "via", w.GATEWAY])


def boot(world: w.World, s: Server, timeout: float = 180) -> None:
    argv = [
        "systemd-nspawn",
        "--boot",
        "--quiet",
        "-D",
        str(s.merged),
        "-M",
        s.name,
        f"--network-namespace-path=/run/netns/{s.netns}",
        "--capability=all",
        "--system-call-filter=@keyring bpf",
        f"--bind={s.root / 'docker'}:/var/lib/docker",
        "--register=no",
        "--keep-unit",
        "--console=read-only",
    ]
    if s.volume:
        argv.append(f"--bind={s.volume[0]}:{s.volume[1]}")
    # /proc/sys/net writable: Docker and ufw set network sysctls inside the server.
    s.proc = world.spawn(f"server-{s.name}", argv, env={"SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network"})
    wait_for(f"{s.name}: sshd on {s.ip}:22", lambda: _port_open(s.ip, 22), timeout)


def shutdown(s: Server, timeout: float = 60) -> None:
    """A clean poweroff (nspawn forwards SIGTERM to the container's systemd as a shutdown)."""
    if s.proc is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(s.proc.pid, signal.SIGTERM)
    try:
        s.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(s.proc.pid, signal.SIGKILL)
        s.proc.wait(timeout=15)
    s.proc = None


def destroy(s: Server) -> None:
    shutdown(s)
    run(["umount", "-l", str(s.merged)], check=False)
    if s.volume:
        run(["losetup", "-d", s.volume[0]], check=False)
    run(["ip", "netns", "del", s.netns], check=False)
    for link in s.links:
        run(["ip", "link", "del", link], check=False)
    shutil.rmtree(s.root, ignore_errors=True)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            return bool(sock.recv(4).startswith(b"SSH"))
    except OSError:
        time.sleep(0.5)
        return False


def plain_host(s: Server, user: str, public_key: str) -> str:
    """Make the prepared server a host as a provider hands it over: a sudo user with a password
    and your key, SSH host keys of its own, no hardening. Returns its ed25519 host key."""
    m = str(s.merged)
    run(["chroot", m, "useradd", "--create-home", "--shell", "/bin/bash", user])
    run(["chroot", m, "chpasswd"], input=f"{user}:a-password-nobody-should-use\n")
    _write(s.merged / f"etc/sudoers.d/90-{user}", f"{user} ALL=(ALL) NOPASSWD:ALL\n", 0o440)
    ssh_dir = s.merged / f"home/{user}/.ssh"
    _write(ssh_dir / "authorized_keys", public_key + "\n", 0o600)
    uid = run(["chroot", m, "id", "-u", user]).stdout.strip()
    run(["chown", "-R", f"{uid}:{uid}", str(ssh_dir)])
    run(["chroot", m, "ssh-keygen", "-A"])
    return " ".join((s.merged / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[:2])
