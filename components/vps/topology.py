"""Where things run on the VPS rung: a pure function of the settings.

One server runs everything. With `vps.count > 1` the app servers sit behind the
provider's load balancer on a private network and the data stores leave them: a
dedicated data server (container mode) or the provider's managed databases.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.settings import Settings

PRIVATE_RANGE = "10.0.0.0/16"
PRIVATE_SUBNET = "10.0.1.0/24"
DATA_SERVER_IP = "10.0.1.5"
LOAD_BALANCER_IP = "10.0.1.2"


def app_server_ip(i: int) -> str:
    return f"10.0.1.{10 + i}"


@dataclass(frozen=True)
class Topology:
    app_servers: int
    load_balancer: bool
    data_server: bool  # a dedicated server for container-mode data stores
    private_network: bool

    @property
    def data_on_app_server(self) -> bool:
        return not self.data_server and not self.load_balancer


def topology(s: Settings) -> Topology:
    count = s.vps.server_count
    # Accessories are data stores too: with several servers they get the data server.
    containers = s.postgres.mode == "container" or s.redis.mode == "container" or bool(s.accessories)
    multi = count > 1 and s.provider_name != "existing"
    return Topology(
        app_servers=count,
        load_balancer=multi,
        data_server=multi and containers,
        private_network=multi,
    )


def needs_data_volume(s: Settings) -> bool:
    """A single server gets the block volume when it holds data: Postgres, or a service's or
    an accessory's volume (never the root disk, which goes with the server)."""
    volumes = any(svc.volumes for svc in s.app.services.values()) or any(a.volumes for a in s.accessories.values())
    return s.postgres.mode == "container" or volumes
