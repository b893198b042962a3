"""A dated price table and the pure function that turns a stack's settings into `monthlyCost`.

Prices are list prices per month, excluding VAT, for the sizes the rungs use. They go
stale: the table carries its date and sources so a reader knows how old the numbers
are, and `make plan` prints them next to the total.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from components.render.k8s import valkey_storage_gb
from components.settings import Settings

PRICES_AS_OF = "2026-11-23"


@dataclass(frozen=True)
class ProviderPrices:
    currency: str
    source: str
    servers: dict[str, float]
    volume_gb: float
    load_balancer: float
    ipv4: float = 0.0
    backups_fraction: float = 0.2
    ha_control_plane: float = 0.0
    databases: dict[str, float] = field(default_factory=dict)
    object_storage: float = 0.0
    min_volume_gb: int = 1  # smallest volume the provider bills (a 1 Gi PVC costs this much)


PRICES: dict[str, ProviderPrices] = {
    "hetzner": ProviderPrices(
        currency="EUR",
        source=(
            "https://www.hetzner.com/cloud: new-order prices since the 2026-06-15 adjustment, excl. VAT "
            "and excl. the primary IPv4 (listed separately); lb11 derived from published gross prices"
        ),
        servers={
            "cx23": 5.49,
            "cx33": 8.49,
            "cx43": 15.99,
            "cx53": 29.49,
            "cax11": 5.99,
            "cax21": 10.49,
            "cpx12": 11.49,
            "cpx22": 19.49,
            "cpx32": 35.49,
        },
        volume_gb=0.0572,
        min_volume_gb=10,
        # Object Storage: base price with 1 TB storage and 1 TB traffic included, billed per
        # account however many buckets (docs.hetzner.com/storage/object-storage/overview,
        # "max. € 5.00", page of 2024-12; not re-confirmed after the 2026-06-15 adjustment).
        object_storage=5.0,
        load_balancer=7.49,
        ipv4=0.50,
        backups_fraction=0.20,
    ),
    "digitalocean": ProviderPrices(
        currency="USD",
        source=(
            "https://www.digitalocean.com/pricing (droplets, volumes, load balancers, DOKS, databases); "
            "DOKS HA $40 and backups 20% confirmed in 2026 docs, the rest last confirmed 2024"
        ),
        servers={
            "s-1vcpu-1gb": 6.0,
            "s-1vcpu-2gb": 12.0,
            "s-2vcpu-2gb": 18.0,
            "s-2vcpu-4gb": 24.0,
            "s-4vcpu-8gb": 48.0,
            "s-8vcpu-16gb": 96.0,
        },
        volume_gb=0.10,
        load_balancer=12.0,
        ipv4=0.0,
        backups_fraction=0.20,
        ha_control_plane=40.0,
        databases={
            "db-s-1vcpu-1gb": 15.15,
            "db-s-1vcpu-2gb": 30.45,
            "db-s-2vcpu-4gb": 60.90,
            "db-s-4vcpu-8gb": 121.80,
        },
        object_storage=5.0,
    ),
}


@dataclass(frozen=True)
class CostItem:
    """One billed line. `unit_price` is None when the size is not in the table: the
    report says so (see `CostReport.unpriced`) instead of guessing or failing the deploy."""

    name: str
    quantity: float
    unit_price: float | None

    @property
    def monthly(self) -> float:
        return round(self.quantity * (self.unit_price or 0.0), 2)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "quantity": self.quantity,
            "unitPrice": self.unit_price,
            "monthly": self.monthly,
        }


@dataclass(frozen=True)
class CostReport:
    currency: str
    items: tuple[CostItem, ...]
    source: str
    as_of: str = PRICES_AS_OF

    @property
    def total(self) -> float:
        return round(sum(item.monthly for item in self.items), 2)

    @property
    def unpriced(self) -> list[str]:
        return [item.name for item in self.items if item.unit_price is None]

    def as_dict(self) -> dict[str, Any]:
        out = {
            "currency": self.currency,
            "total": self.total,
            "items": [item.as_dict() for item in self.items],
            "asOf": self.as_of,
            "source": self.source,
        }
        if self.unpriced:
            out["unpriced"] = self.unpriced
        return out


def _server_items(p: ProviderPrices, label: str, size: str, count: int, backups: bool) -> list[CostItem]:
    unit = p.servers.get(size)
    items = [CostItem(f"{label} {size}", count, unit)]
    if backups:
        items.append(
            CostItem(
                f"{label} backups ({int(p.backups_fraction * 100)}%)",
                count,
                None if unit is None else round(unit * p.backups_fraction, 2),
            )
        )
    if p.ipv4:
        items.append(CostItem(f"{label} public IPv4", count, p.ipv4))
    return items


def _managed_items(s: Settings, p: ProviderPrices, copies: int) -> list[CostItem]:
    items = []
    if s.postgres.mode == "managed" and s.postgres.size:
        nodes = max(1, s.postgres.instances)
        items.append(
            CostItem(
                f"managed Postgres {s.postgres.size} ({nodes} node)",
                nodes * copies,
                p.databases.get(s.postgres.size),
            )
        )
    if s.redis.mode == "managed" and s.redis.size:
        items.append(CostItem(f"managed Valkey {s.redis.size}", copies, p.databases.get(s.redis.size)))
    return items


def _vps_items(s: Settings, p: ProviderPrices) -> list[CostItem]:
    vps = s.vps
    count = vps.server_count
    size = vps.size or ""
    items = _server_items(p, "app server", size, count, vps.server_backups)
    # What the rung provisions (components/vps/topology.py): a data server for container
    # stores and accessories with several servers, the block volume wherever data lives.
    from components.vps.topology import needs_data_volume, topology

    data_on_own_server = topology(s).data_server
    if data_on_own_server:
        items += _server_items(p, "data server", size, 1, vps.server_backups)
    if data_on_own_server or needs_data_volume(s):
        # Postgres, service volumes and accessories all live on the one data volume.
        items.append(CostItem("data volume (GB)", vps.volume_gb, p.volume_gb))
    if count > 1:
        items.append(CostItem("load balancer", 1, p.load_balancer))
    return items + _managed_items(s, p, 1)


def _cluster_items(s: Settings, p: ProviderPrices, provider: str) -> list[CostItem]:
    cl = s.cluster
    tenants = len(s.effective_tenants)
    items: list[CostItem] = []
    if provider == "hetzner":
        control_planes = 3 if cl.ha_control_plane else 1
        items += _server_items(p, "k3s control plane", s.vps.size or "", control_planes, False)
        items += _server_items(p, "k3s agent (minNodes)", cl.node_size or "", cl.min_nodes, False)
    else:
        items.append(CostItem(f"DOKS node {cl.node_size} (minNodes)", cl.min_nodes, p.servers.get(cl.node_size or "")))
        if cl.ha_control_plane:
            items.append(CostItem("DOKS HA control plane", 1, p.ha_control_plane))
    items.append(CostItem("ingress load balancer", 1, p.load_balancer))
    if s.postgres.mode == "operator":
        items.append(
            CostItem(
                "Postgres volumes (GB, all instances and tenants)",
                max(s.postgres.storage_gb, p.min_volume_gb) * s.postgres.instances * tenants,
                p.volume_gb,
            )
        )
    sizes = [v.size_gb for svc in s.app.services.values() for v in svc.volumes.values()]
    sizes += [v.size_gb for acc in s.accessories.values() for v in acc.volumes.values()]
    if sizes:
        items.append(
            CostItem(
                "service and accessory volumes (GB, all tenants)",
                sum(max(size, p.min_volume_gb) for size in sizes) * tenants,
                p.volume_gb,
            )
        )
    if s.redis.mode == "container":
        items.append(
            CostItem(
                "Valkey volumes (GB, all tenants)",
                max(valkey_storage_gb(s.redis.max_memory_mb), p.min_volume_gb) * tenants,
                p.volume_gb,
            )
        )
    return items + _managed_items(s, p, 1)


def monthly_cost(s: Settings) -> CostReport:
    """What the stack's settings cost per month at list prices."""
    provider = s.provider_name
    if s.phase == "local" or provider in ("docker", "existing"):
        if s.phase != "local" and provider == "existing":
            note = "hosts or cluster you already run (not billed by Ladder)"
            return CostReport("USD", (CostItem(note, 1, 0.0),), source="n/a")
        return CostReport("USD", (), source="your own machine")
    p = PRICES[provider]
    items = _vps_items(s, p) if s.phase == "vps" else _cluster_items(s, p, provider)
    items += _object_storage_items(s, p, provider)
    return CostReport(p.currency, tuple(items), source=p.source)


def _object_storage_items(s: Settings, p: ProviderPrices, provider: str) -> list[CostItem]:
    """Object storage is billed per account, not per bucket: one line whatever their number."""
    if provider == "digitalocean":
        created = any(not b.external for b in s.buckets.values())
        if created or (s.backups is not None and s.backups.create):
            # Spaces subscription: 250 GiB storage and 1 TiB transfer included.
            return [CostItem("Spaces subscription (250 GB included)", 1, p.object_storage)]
    if provider == "hetzner" and any("your-objectstorage.com" in (b.endpoint or "") for b in s.buckets.values()):
        return [CostItem("Hetzner Object Storage base (1 TB storage and traffic included)", 1, p.object_storage)]
    return []
