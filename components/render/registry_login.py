"""The VPS deploy's registry logins: private images pulled with the stack's credentials, kept nowhere.

Each host logs in to every registry its compose file pulls from that `ladder:registries`
has credentials for, right before `docker compose pull`, and forgets the credentials right
after it:

- the token reaches `docker login --password-stdin` through a pipe from bash's builtin
  `printf`: it is never on a command line (`ps` shows those to every user of the host);
- Docker writes it to `config.json` in a directory of this deploy's own (`DOCKER_CONFIG`,
  `mktemp -d`: mode 700, on /run, a tmpfs, so never on disk), not to root's `~/.docker`;
- the directory is removed after the pull, and by the deploy's exit trap if anything
  fails in between; a refused login fails the deploy naming the registry (never the token).

After a reboot Docker restarts the containers from the images it already holds: nothing
needs a stored credential, so none is kept. The next deploy logs in again.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from components.settings import Settings, image_registry

SECRET_PREFIX = "registry-password:"  # secret_contents key of a registry's token: prefix + server
AUTH_VAR = "REGISTRY_AUTH"  # the shell variable holding the deploy's own DOCKER_CONFIG directory
AUTH_TEMPLATE = "/run/ladder-registry.XXXXXXXXXX"

FUNCTIONS = f"""# Registry logins (see components/render/registry_login.py): the token on stdin only, into
# a Docker config directory of this deploy's own that is removed after the pull and on exit.
{AUTH_VAR}=''
registry_login() {{  # server user; the token on stdin
  local why
  if ! why=$(DOCKER_CONFIG="${AUTH_VAR}" docker login --username="$2" --password-stdin -- "$1" 2>&1); then
    fail "logging in to registry $1 as $2 failed: $(tail -n 1 <<<"$why" | cut -c 1-300)"
  fi
}}
forget_registry_logins() {{
  [ -z "${AUTH_VAR}" ] || rm -rf -- "${AUTH_VAR}"
  {AUTH_VAR}=''
}}
"""


def secret_key(server: str) -> str:
    """The `secret_contents` key under which the deploy script gets a registry's token."""
    return SECRET_PREFIX + server


def compose_registries(compose: Mapping[str, Any]) -> list[str]:
    """Every registry host a compose document pulls from, sorted."""
    refs = (svc.get("image") for svc in compose.get("services", {}).values())
    return sorted({image_registry(ref) for ref in refs if isinstance(ref, str)})


def logins_for(s: Settings, registries: Iterable[str]) -> list[tuple[str, str]]:
    """(server, username) of each of `registries` that `ladder:registries` has credentials for."""
    out = []
    for server in registries:
        entry = s.registry_for(server)
        if entry is not None and entry.username is not None and entry.password is not None:
            out.append((server, entry.username))
    return out


def pull_lines(logins: Sequence[tuple[str, str]], secret_contents: Mapping[str, str], pull: str) -> list[str]:
    """Step 4 of the deploy: log in (if any registry needs it), run `pull`, forget the logins."""
    if not logins:
        return [pull]
    q = shlex.quote
    lines = [f"{AUTH_VAR}=$(mktemp -d {AUTH_TEMPLATE})"]
    for server, user in logins:
        token = secret_contents[secret_key(server)]
        # A literal token may hold `$`: that it does not expand is the point.
        lines += ["# shellcheck disable=SC2016", f"printf '%s' {q(token)} | registry_login {q(server)} {q(user)}"]
    lines += [f'DOCKER_CONFIG="${AUTH_VAR}" {pull}', "forget_registry_logins"]
    return lines
