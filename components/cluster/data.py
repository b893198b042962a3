"""What a tenant's app gets from a data store: a URL (secret), where its pods may connect, what to wait for."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi


@dataclass
class TenantStore:
    url: pulumi.Output[str]  # secret
    host: pulumi.Output[str]
    ready: list[pulumi.Resource] = field(default_factory=list)
