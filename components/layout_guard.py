"""Refuse a VPS layout change that would destroy data: one server -> several, or back.

With `vps.count` 1 everything runs on app-0: Postgres on its volume, Valkey and Caddy's
certificates on its root disk. With `vps.count > 1` the data moves to a data server (or
managed databases) behind a load balancer on a private network, and app-0 is rebuilt for
that layout: on Hetzner Pulumi unprotects and replaces it, losing what its root disk held,
and detaches the Postgres volume under a running Postgres. Nothing copies the data over,
so the program refuses the transition and points to the runbook (docs/migration.md,
"VPS: one server to several"). Adding or removing app servers within the multi-server
layout stays a config edit.

How it knows the previous layout: the stack exports `vpsLayout`, and the next run reads
it back through a `StackReference` to its own stack (org/project/stack of this run), so
the rule needs no state of its own and sees exactly what was last deployed. A stack that
was never deployed (or the plainest mock) has no such output and passes.

Where it bites: the rung's top component depends on the guard. The SDK resolves
`depends_on` before it registers a resource and every child waits for its parent's URN,
so a refused transition registers nothing under the rung (no server is touched).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

from components.settings import Settings

LAYOUT_OUTPUT = "vpsLayout"
MIGRATION_DOC = 'docs/migration.md, section "VPS: one server to several"'
# The parts of the layout that decide where data lives; changing any of them moves data.
_DATA_PLACEMENT = ("loadBalancer", "dataServer", "privateNetwork")


def vps_layout(s: Settings) -> dict[str, Any]:
    """The layout this run deploys, as exported in `vpsLayout` (plain, non-secret)."""
    from components.vps.topology import topology

    topo = topology(s)
    return {
        "provider": s.provider_name,
        "appServers": topo.app_servers,
        "loadBalancer": topo.load_balancer,
        "dataServer": topo.data_server,
        "privateNetwork": topo.private_network,
    }


def refusal(previous: Any, current: Mapping[str, Any]) -> str | None:
    """Why going from `previous` (the last deployed `vpsLayout`, or nothing) to `current` is
    refused, or None when it is safe."""
    if not isinstance(previous, Mapping) or previous.get("provider") != current.get("provider"):
        return None
    changed = [key for key in _DATA_PLACEMENT if key in previous and previous[key] != current[key]]
    if not changed:
        return None
    before, after = previous.get("appServers"), current.get("appServers")
    return (
        f"ladder:vps.count: going from {before} to {after} server(s) moves the data stores "
        f"({', '.join(changed)} change) and would replace app-0, losing the data on its disk "
        f"and detaching the Postgres volume under a running Postgres. Follow {MIGRATION_DOC} "
        f"(back up, set the new count on a new stack, restore, switch DNS), or set vps.count back to {before}."
    )


def _check(outputs: Any, current: Mapping[str, Any]) -> list[pulumi.Resource]:
    previous = outputs.get(LAYOUT_OUTPUT) if isinstance(outputs, Mapping) else None
    reason = refusal(previous, current)
    if reason is not None:
        raise pulumi.RunError(reason)
    return []


def guard(s: Settings) -> pulumi.ResourceOptions:
    """Options for the VPS rung's top component: it registers only if the layout change is safe."""
    current = vps_layout(s)
    own = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    previous = pulumi.StackReference(f"{pulumi.get_stack()}-previous-outputs", stack_name=own)
    depends: pulumi.Output[list[pulumi.Resource]] = previous.outputs.apply(lambda o: _check(o, current))
    return pulumi.ResourceOptions(depends_on=depends)
