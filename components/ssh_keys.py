"""SSH keys after the first boot: a server's own `ssh_keys` only seed it (changing them
would replace it, terraform-provider-hcloud#737), so later keys roll out over SSH."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pulumi
import pulumi_command as command

ROLLOUT = (
    "install -d -m 700 ~/.ssh && install -m 600 /dev/stdin ~/.ssh/authorized_keys.new "
    "&& mv -f ~/.ssh/authorized_keys.new ~/.ssh/authorized_keys"
)


def authorized_keys(user_keys: Sequence[str], deploy_public_key: pulumi.Output[str]) -> pulumi.Output[str]:
    """The login user's authorized_keys: the users' keys and, always, the deploy key."""
    return deploy_public_key.apply(lambda pub: "\n".join([*user_keys, pub.strip()]) + "\n")


def rollout(
    resource: str,
    connection: command.remote.ConnectionArgs,
    keys: pulumi.Output[str],
    opts: pulumi.ResourceOptions,
) -> command.remote.Command:
    """Replace the login user's authorized_keys whenever the wanted keys change."""
    return command.remote.Command(
        resource,
        connection=connection,
        create=ROLLOUT,
        stdin=keys,
        triggers=[keys.apply(lambda k: hashlib.sha256(k.encode()).hexdigest())],
        opts=opts,
    )
