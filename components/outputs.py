"""The stack outputs every rung exports (DESIGN.md: url, phase, provider, monthlyCost, ...)."""

from __future__ import annotations

from typing import Any, Protocol

import pulumi

from components.pricing import monthly_cost
from components.settings import Settings


class Rung(Protocol):
    """What `__main__` needs from a rung's top component."""

    url: pulumi.Output[str]


def export_outputs(settings: Settings, rung: Any) -> None:
    pulumi.export("url", rung.url)
    pulumi.export("phase", settings.phase)
    pulumi.export("provider", settings.provider_name)
    pulumi.export("monthlyCost", monthly_cost(settings).as_dict())
    if settings.phase == "vps":
        from components.layout_guard import LAYOUT_OUTPUT, vps_layout

        # Read back by the next run (components/layout_guard.py) to refuse data-losing changes.
        pulumi.export(LAYOUT_OUTPUT, vps_layout(settings))
    # Optional outputs exist only where the rung has them.
    for output, attr in (
        ("serverIps", "server_ips"),
        ("publicIp", "public_ip"),
        ("kubeconfig", "kubeconfig"),
        ("databaseHost", "database_host"),
        ("deployPublicKey", "deploy_public_key"),
    ):
        value = getattr(rung, attr, None)
        if value is not None:
            pulumi.export(output, value)
