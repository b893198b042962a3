"""Connection strings, built inside `apply` and always returned as secrets."""

from __future__ import annotations

from urllib.parse import quote

import pulumi


def postgres_url(
    user: str, password: pulumi.Input[str], host: pulumi.Input[str], port: int, database: str
) -> pulumi.Output[str]:
    return pulumi.Output.secret(
        pulumi.Output.all(password, host).apply(
            lambda args: f"postgresql://{quote(user)}:{quote(str(args[0]), safe='')}@{args[1]}:{port}/{quote(database)}"
        )
    )


def redis_url(password: pulumi.Input[str], host: pulumi.Input[str], port: int, tls: bool = False) -> pulumi.Output[str]:
    scheme = "rediss" if tls else "redis"
    return pulumi.Output.secret(
        pulumi.Output.all(password, host).apply(
            lambda args: f"{scheme}://:{quote(str(args[0]), safe='')}@{args[1]}:{port}/0"
        )
    )
