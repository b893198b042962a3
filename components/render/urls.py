"""Connection strings, built inside `apply` and always returned as secrets."""

from __future__ import annotations

from urllib.parse import quote

import pulumi


def postgres_url(
    user: pulumi.Input[str],
    password: pulumi.Input[str],
    host: pulumi.Input[str],
    port: pulumi.Input[int],
    database: pulumi.Input[str],
    params: str = "",
) -> pulumi.Output[str]:
    """`params` is the query string without `?`, e.g. `sslmode=require` for managed databases."""
    suffix = f"?{params}" if params else ""
    return pulumi.Output.secret(
        pulumi.Output.all(user, password, host, port, database).apply(
            lambda a: (
                f"postgresql://{quote(str(a[0]))}:{quote(str(a[1]), safe='')}@{a[2]}:{a[3]}/{quote(str(a[4]))}" + suffix
            )
        )
    )


def redis_url(
    password: pulumi.Input[str], host: pulumi.Input[str], port: pulumi.Input[int], tls: bool = False
) -> pulumi.Output[str]:
    scheme = "rediss" if tls else "redis"
    user = "default" if tls else ""
    return pulumi.Output.secret(
        pulumi.Output.all(password, host, port).apply(
            lambda a: f"{scheme}://{user}:{quote(str(a[0]), safe='')}@{a[1]}:{a[2]}/0"
        )
    )
