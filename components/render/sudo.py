"""The deploy identity's one door to root, and the people's own login.

Ladder runs every remote command as root through one root-owned entry point that reads a
script on stdin (`ladder-apply`). That is root for whoever holds the deploy key, by design:
the deploy writes systemd units and runs root containers. What the door buys is one audited
path (the journal names each run and its script's sha256) and a deploy key that can do
nothing else (its authorized_keys line forces the command). People log in as `admin`, with
their own keys and sudo: revoking a person never touches the deploy key, and a stolen laptop
key is no longer the deploy identity. Restricting what the deploy may do as root needs a
data-only entry point with a policy (docs/operations.md); that is not this.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

ENTRY_POINT = "/usr/local/sbin/ladder-apply"
SUDOERS = "/etc/sudoers.d/ladder"
# Where cloud-init writes the `sudo:` rule of the users in user data; the deploy user's
# `NOPASSWD:ALL` lives there on servers Ladder created.
CLOUD_INIT_SUDOERS = "/etc/sudoers.d/90-cloud-init-users"
# The people's login on servers Ladder creates. Ubuntu and Debian cloud images create no
# `admin` user unless their `default` user is asked for (Ladder's user data lists only
# `deploy`); one that exists anyway is reused, not recreated.
ADMIN_USER = "admin"

_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}\Z")
# One OpenSSH public key: type, base64 body, optional comment (no options, one line).
_PUBLIC_KEY = re.compile(r"(?:ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)|sk-[a-z0-9@.-]+) [A-Za-z0-9+/=]+")

# The remote command for every script Ladder runs as root: the entry point once it exists,
# `sudo -n bash -s` before (a server created before the entry point, the rollout's first
# run). The deploy key's forced command makes sshd run the entry point whatever this says.
AS_ROOT = f"if [ -x {ENTRY_POINT} ]; then exec sudo -n {ENTRY_POINT}; fi; exec sudo -n bash -s"


def _user(name: str) -> str:
    if not _USER.match(name):
        raise ValueError(f"not a Linux user name: {name!r}")
    return name


def entry_point_script(run_dir: str = "/run", logger: str = "logger") -> str:
    """`ladder-apply`: run the script on stdin as root, logging who and which script.

    The script is held in a 0600 file in a fresh 0700 directory under `run_dir` (a tmpfs,
    removed by the trap on exit) so that it is hashed and logged before it runs; its text is
    never an argument of any process. It runs with stdin from /dev/null (nothing in it can eat
    the script, as with `bash -s`) and the caller's umask. No logging, no run: the door is only
    worth having if every pass through it is in the journal. `run_dir` and `logger` are for
    tests; the installed copy uses the defaults."""
    log = shlex.quote(logger)
    return f"""#!/usr/bin/env bash
# Ladder: run the script on stdin as root (sudo runs this for the deploy user). Logs the
# caller and the script's sha256 to the journal, never its content: it carries secrets.
set -euo pipefail
if [ "$#" -ne 0 ]; then
  echo "ladder-apply: takes no arguments; the script comes on stdin" >&2
  exit 2
fi
caller_umask=$(umask)
umask 077
dir=$(mktemp -d {shlex.quote(run_dir.rstrip("/") + "/ladder-apply.XXXXXXXX")})
trap 'rm -rf -- "$dir"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
cat > "$dir/script"
sum=$(sha256sum < "$dir/script")
sum=${{sum%% *}}
size=$(wc -c < "$dir/script")
who=${{SUDO_USER:-$(id -un)}}
if ! {log} -t ladder-apply -- "start user=$who sha256=$sum bytes=$size"; then
  echo "ladder-apply: cannot write to the journal; not running the script" >&2
  exit 1
fi
umask "$caller_umask"
rc=0
bash -- "$dir/script" </dev/null || rc=$?
{log} -t ladder-apply -- "end user=$who sha256=$sum exit=$rc" || true
exit "$rc"
"""


def sudoers(deploy_user: str, admin_user: str | None) -> str:
    """The deploy user may run the entry point, without arguments (`""`), and nothing else;
    the people's user gets full sudo (no password: it has none, keys only)."""
    lines = [
        "# Ladder: the deploy identity's only sudo rule; people log in as their own user.",
        f'{_user(deploy_user)} ALL=(root) NOPASSWD: {ENTRY_POINT} ""',
    ]
    if admin_user is not None:
        lines.append(f"{_user(admin_user)} ALL=(ALL:ALL) NOPASSWD: ALL")
    return "\n".join(lines) + "\n"


def deploy_key_line(public_key: str) -> str:
    """The deploy key's authorized_keys line: `restrict` (no pty, no forwarding, no ~/.ssh/rc;
    pulumi-command runs an exec session with stdin and needs none of them) and a forced command,
    so the key can do nothing but hand a script to the entry point."""
    key = " ".join(public_key.split()[:2])
    if not _PUBLIC_KEY.fullmatch(key):
        raise ValueError("the deploy key is not one OpenSSH public key")
    return f'restrict,command="sudo -n {ENTRY_POINT}" {key}'


def people_keys(keys: Sequence[str]) -> list[str]:
    """People's keys, one per line (a key with a newline would smuggle a second line in)."""
    out = [k.strip() for k in keys if k.strip()]
    for k in out:
        if "\n" in k or "\r" in k:
            raise ValueError("an SSH public key spans more than one line")
    return out
