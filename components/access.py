"""Who may log in, and from where, after the first boot.

A server's own `ssh_keys` and its user data only seed it: changing either would replace
the server (terraform-provider-hcloud#737; `user_data` forces replacement). So the users'
keys and the SSH allowlist in ufw are applied over SSH, and re-applied whenever they change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pulumi
import pulumi_command as command

from components.render.hardening import access_script


def authorized_keys(user_keys: Sequence[str], deploy_public_key: pulumi.Output[str]) -> pulumi.Output[str]:
    """The login user's authorized_keys: the users' keys and, always, the deploy key."""
    return deploy_public_key.apply(lambda pub: "\n".join([*user_keys, pub.strip()]) + "\n")


def rollout(
    resource: str,
    connection: command.remote.ConnectionArgs,
    keys: pulumi.Output[str] | None,
    allow_from: Sequence[str],
    ports: Sequence[str],
    opts: pulumi.ResourceOptions,
) -> command.remote.Command:
    """Apply the keys and the allowlist whenever either changes."""
    script: pulumi.Output[str] = (
        keys.apply(lambda k: access_script(k.splitlines(), list(allow_from), list(ports)))
        if keys is not None
        else pulumi.Output.from_input(access_script(None, list(allow_from), list(ports)))
    )
    return command.remote.Command(
        resource,
        connection=connection,
        create="bash -s",
        stdin=script,
        triggers=[script.apply(lambda t: hashlib.sha256(t.encode()).hexdigest())],
        opts=opts,
    )
