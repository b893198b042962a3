"""The VPS rung: 1..N servers running Docker Compose behind Caddy (or the provider's load balancer)."""

from components.vps.stack import VpsStack, VpsStackArgs

__all__ = ["VpsStack", "VpsStackArgs"]
