"""The deploy identity's one door (`ladder-apply`), its sudoers rule and the split logins
(people as `admin`, the deploy key alone on `deploy`): rendered, and run where it can be."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest

from components.render import k3s, sudo
from components.render.hardening import (
    DEPLOY_USER,
    INSTALL_SUDOERS,
    Hardening,
    Logins,
    Opening,
    access_script,
    cloud_config,
    render,
)
from tests.conftest import check_shell_script
from tests.helpers import SSH_KEY

DEPLOY_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDeployKeyDeployKeyDeployKeyDeployKey0 pulumi"
COLLEAGUE = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIColleagueColleagueColleagueColleague00 colleague@laptop"
SECRET = "s3cr3t-marker-7f1d0c"


def heredoc_body(script: str, command: str) -> str:
    """The content fed by `command <<'MARKER'` in a rendered script."""
    _, rest = script.split(f"{command} <<'", 1)
    marker, body = rest.split("'\n", 1)
    return body.split(f"\n{marker}\n", 1)[0]


def entry_point(tmp_path: Path, logger_exit: int = 0) -> tuple[Path, Path, Path]:
    """The rendered entry point, a run dir and a `logger` stand-in that records its arguments."""
    run_dir, log = tmp_path / "run", tmp_path / "journal"
    run_dir.mkdir()
    logger = tmp_path / "logger"
    logger.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$*\" >> {log}\nexit {logger_exit}\n")
    logger.chmod(0o755)
    path = tmp_path / "ladder-apply"
    path.write_text(sudo.entry_point_script(str(run_dir), str(logger)))
    path.chmod(0o755)
    return path, run_dir, log


def cmdlines() -> list[bytes]:
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                out.append(Path(f"/proc/{pid}/cmdline").read_bytes())
            except OSError:
                continue  # the process ended meanwhile
    return out


def test_entry_point_runs_stdin_logs_its_sha256_and_keeps_it_off_argv(tmp_path: Path) -> None:
    path, run_dir, log = entry_point(tmp_path)
    seen = tmp_path / "seen"
    script = (
        f"secret='{SECRET}'\n"
        f'[ -n "$secret" ]\n'
        f'stat -c \'%a\' "$(dirname "$0")" "$0" > {seen}\n'
        "umask >> " + str(seen) + "\n"
        "sleep 1.5\n"
        "exit 7\n"
    )
    proc = subprocess.Popen(
        [str(path)], stdin=subprocess.PIPE, env={**os.environ, "SUDO_USER": "deploy"}, start_new_session=True
    )
    assert proc.stdin is not None
    proc.stdin.write(script.encode())
    proc.stdin.close()
    leaked, deadline = [], time.monotonic() + 1.2
    while time.monotonic() < deadline and proc.poll() is None:
        leaked += [c for c in cmdlines() if SECRET.encode() in c]
        time.sleep(0.05)
    assert proc.wait(timeout=30) == 7  # the script's exit code is the entry point's
    assert leaked == []  # never on any process's argv
    sha = hashlib.sha256(script.encode()).hexdigest()
    journal = log.read_text()
    assert f"start user=deploy sha256={sha} bytes={len(script.encode())}" in journal
    assert f"end user=deploy sha256={sha} exit=7" in journal
    assert SECRET not in journal  # the content (it carries secrets) is never logged
    modes = seen.read_text().split()
    assert modes[:2] == ["700", "600"]  # the held copy is root's alone while it runs
    caller = os.umask(0)
    os.umask(caller)
    assert modes[2] == f"{caller:04o}"  # the caller's umask, not the door's 077
    assert list(run_dir.iterdir()) == []  # and gone once it ran


def test_entry_point_runs_nothing_it_cannot_log_and_takes_no_arguments(tmp_path: Path) -> None:
    path, run_dir, _ = entry_point(tmp_path, logger_exit=1)
    ran = tmp_path / "ran"
    done = subprocess.run([str(path)], input=f"touch {ran}\n", capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "cannot write to the journal" in done.stderr
    assert not ran.exists() and list(run_dir.iterdir()) == []
    (tmp_path / "b").mkdir()
    path, _, log = entry_point(tmp_path / "b")
    done = subprocess.run([str(path), "-c", "id"], input="", capture_output=True, text=True, check=False)
    assert done.returncode == 2 and not log.exists()


def test_entry_point_and_access_script_pass_shellcheck(tmp_path: Path, shellcheck_bin: str) -> None:
    for name, text in {
        "ladder-apply": sudo.entry_point_script(),
        "access.sh": access_script(Logins((SSH_KEY,), DEPLOY_KEY), ["203.0.113.7/32"], ["22"]),
        "access-existing.sh": access_script(None, ["203.0.113.7/32"], ["2222"]),
        "k3s-config.sh": k3s.config_write_script("token: x\n"),
    }.items():
        path = tmp_path / name
        path.write_text(text)
        check_shell_script(path, shellcheck_bin)


def test_sudoers_rule_passes_visudo_and_allows_only_the_entry_point(tmp_path: Path, visudo_bin: str) -> None:
    text = sudo.sudoers(DEPLOY_USER, sudo.ADMIN_USER)
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert lines == [
        'deploy ALL=(root) NOPASSWD: /usr/local/sbin/ladder-apply ""',  # `""`: no arguments
        "admin ALL=(ALL:ALL) NOPASSWD: ALL",
    ]
    path = tmp_path / "ladder"
    path.write_text(text)
    done = subprocess.run([visudo_bin, "-cf", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    path.write_text(text.replace("NOPASSWD:", "NOPASSWD"))  # the check can fail
    assert subprocess.run([visudo_bin, "-cqf", str(path)], capture_output=True, check=False).returncode != 0
    with pytest.raises(ValueError, match="user name"):
        sudo.sudoers("deploy ALL=(ALL) ALL\n#", None)


def test_a_sudoers_file_visudo_rejects_is_never_moved_in_place(tmp_path: Path, visudo_bin: str) -> None:
    """A syntax error in /etc/sudoers.d disables sudo for everyone: the file is checked first."""
    target = tmp_path / "ladder"
    target.write_text("# the rule in place before\n")
    env = {**os.environ, "PATH": f"{Path(visudo_bin).parent}:{os.environ['PATH']}"}

    def install(text: str) -> subprocess.CompletedProcess[str]:
        program = f"set -euo pipefail\n{INSTALL_SUDOERS}\ninstall_sudoers {target}\n"
        return subprocess.run(["bash", "-c", program], input=text, capture_output=True, text=True, env=env)

    bad = install("deploy ALL=(root) NOPASSWD /nowhere\n")
    assert bad.returncode == 1 and "visudo rejects it" in bad.stderr
    assert target.read_text() == "# the rule in place before\n"
    assert [p.name for p in tmp_path.iterdir()] == ["ladder"]  # no half-written file left
    good = install(sudo.sudoers(DEPLOY_USER, sudo.ADMIN_USER))
    assert good.returncode == 0, good.stderr
    assert target.read_text() == sudo.sudoers(DEPLOY_USER, sudo.ADMIN_USER)
    assert oct(target.stat().st_mode & 0o777) == "0o440"


def test_people_log_in_as_admin_and_the_deploy_key_alone_as_deploy() -> None:
    script = access_script(Logins((SSH_KEY, COLLEAGUE), DEPLOY_KEY), ["203.0.113.7/32"], ["22"])
    admin = heredoc_body(script, "write_keys admin").splitlines()
    deploy = heredoc_body(script, "write_keys deploy").splitlines()
    assert admin == [SSH_KEY, COLLEAGUE]
    body = " ".join(DEPLOY_KEY.split()[:2])
    assert deploy == [f'restrict,command="sudo -n /usr/local/sbin/ladder-apply" {body}']
    assert "AllowUsers deploy admin" in heredoc_body(script, "cat > /etc/ssh/sshd_config.d/01-ladder-hardening.conf")
    with pytest.raises(ValueError, match="one OpenSSH public key"):
        sudo.deploy_key_line('command="sh" ssh-ed25519 AAAA')
    with pytest.raises(ValueError, match="more than one line"):
        sudo.people_keys([f"{SSH_KEY}\n{DEPLOY_KEY}"])


def test_rollout_order_cannot_lock_the_deploy_out() -> None:
    """Entry point, then the new rule (checked), and only then the old NOPASSWD:ALL goes."""
    script = access_script(Logins((SSH_KEY,), DEPLOY_KEY), ["203.0.113.7/32"], ["22"])
    steps = [
        "mv -f /usr/local/sbin/ladder-apply.new /usr/local/sbin/ladder-apply",
        "write_keys deploy",
        "install_sudoers /etc/sudoers.d/ladder",
        "| install_sudoers /etc/sudoers.d/90-cloud-init-users",
        "visudo -cq\n",
        "gpasswd -d deploy docker",
        "ufw allow from",
    ]
    at = [script.index(s) for s in steps]
    assert at == sorted(at), steps


def test_remote_commands_use_the_entry_point_and_fall_back_only_without_it(tmp_path: Path) -> None:
    """The command string every root script runs under: the entry point when present."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "sudo").write_text('#!/bin/sh\necho "sudo $*"\n')
    (fake / "sudo").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    without = sudo.AS_ROOT.replace(sudo.ENTRY_POINT, str(tmp_path / "ladder-apply"))
    out = subprocess.run(["sh", "-c", without], capture_output=True, text=True, env=env, check=True).stdout
    assert out == "sudo -n bash -s\n"
    (tmp_path / "ladder-apply").write_text("")
    (tmp_path / "ladder-apply").chmod(0o755)
    out = subprocess.run(["sh", "-c", without], capture_output=True, text=True, env=env, check=True).stdout
    assert out == f"sudo -n {tmp_path / 'ladder-apply'}\n"


def test_user_data_is_untouched_by_the_migration() -> None:
    """User data replaces a server when it changes: the admin user, the entry point and the
    narrowed sudo arrive over SSH, never through it."""
    h = Hardening(ssh_keys=[DEPLOY_KEY], openings=[Opening("22")], sudo=True)
    data = render(cloud_config(h))
    assert "admin" not in data and "ladder-apply" not in data and "restrict" not in data
    assert "AllowUsers deploy\n" in data and "NOPASSWD:ALL" in data


def test_k3s_config_is_written_0600_from_stdin(tmp_path: Path) -> None:
    config = "token: tok-123\nnode-ip: 10.0.1.10\n"
    script = k3s.config_write_script(config).replace("/etc/rancher/k3s", str(tmp_path / "k3s"))
    subprocess.run(["bash", "-s"], input=script, text=True, check=True)
    written = tmp_path / "k3s" / "config.yaml"
    assert written.read_text() == config
    assert oct(written.stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "k3s").stat().st_mode & 0o777) == "0o700"
