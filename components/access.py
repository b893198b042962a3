"""Who may log in, and from where, after the first boot.

A server's own `ssh_keys` and its user data only seed it: changing either would replace
the server (terraform-provider-hcloud#737; `user_data` forces replacement). So the logins
(people as `admin`, the deploy key alone as `deploy`), the deploy's sudo rule, its entry
point and the SSH allowlist in ufw are applied over SSH, and re-applied whenever they change.
The user data is left as it always was, so servers made before this change are not replaced:
every server, new or old, is migrated by the same command.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pulumi
import pulumi_command as command

from components.render.hardening import Logins, access_script
from components.render.sudo import AS_ROOT


def logins(people: Sequence[str], deploy_public_key: pulumi.Output[str]) -> pulumi.Output[Logins]:
    """People's keys for `admin`, the deploy key for `deploy`."""
    return deploy_public_key.apply(lambda pub: Logins(tuple(people), pub.strip()))


def rollout(
    resource: str,
    connection: command.remote.ConnectionArgs,
    wanted: pulumi.Output[Logins] | None,
    allow_from: Sequence[str],
    ports: Sequence[str],
    opts: pulumi.ResourceOptions,
) -> command.remote.Command:
    """Apply the logins and the allowlist whenever either changes (as root, through the entry
    point once it exists; the first run installs it)."""
    script: pulumi.Output[str] = (
        wanted.apply(lambda w: access_script(w, list(allow_from), list(ports)))
        if wanted is not None
        else pulumi.Output.from_input(access_script(None, list(allow_from), list(ports)))
    )
    return command.remote.Command(
        resource,
        connection=connection,
        create=AS_ROOT,
        stdin=script,
        triggers=[script.apply(lambda t: hashlib.sha256(t.encode()).hexdigest())],
        opts=opts,
    )
