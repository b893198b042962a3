"""Sticky sessions and the drain before a routed container stops: the numbers every rung shares.

WebSockets and long requests outlive a single HTTP exchange, so two things matter when
replicas come and go: a client whose connection state lives in one replica keeps reaching it
(`services.<name>.sticky`, a cookie set by the proxy), and a replica leaves the proxy's pool
before it is told to stop, with time to close its connections cleanly (not reset them).
"""

from __future__ import annotations

from components.settings import App

# The cookie of a sticky service: one per service, so two sticky services on one host do not
# overwrite each other's choice. Service names are DNS labels, valid in a cookie name.
COOKIE_PREFIX = "ladder_"

# A provider load balancer (VPS rung, `vps.count > 1`) balances servers, not services: one
# cookie for the whole balancer, kept for an hour so a reconnecting WebSocket client returns
# to the server whose proxy holds its service's cookie.
LB_COOKIE = "ladder_lb"
LB_COOKIE_TTL_SECONDS = 3600

# Cluster rung: the kubelet runs the preStop sleep first, while the endpoint controller takes
# the terminating pod out of the Service's EndpointSlices and the ingress controller stops
# sending it new requests; only then does the app get SIGTERM.
PRESTOP_SLEEP_SECONDS = 10
# What the app has after SIGTERM to finish requests and close WebSockets (the VPS rung's
# `stop_grace_period` is the same 30 s).
SHUTDOWN_SECONDS = 30
# The grace period counts from the start of preStop, so it covers both.
TERMINATION_GRACE_SECONDS = PRESTOP_SLEEP_SECONDS + SHUTDOWN_SECONDS


def cookie_name(service: str) -> str:
    return f"{COOKIE_PREFIX}{service}"


def any_sticky(app: App) -> bool:
    """Whether a load balancer in front of the whole app must keep clients on one server."""
    return any(svc.sticky for svc in app.routed_services.values())
