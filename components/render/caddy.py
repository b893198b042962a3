"""The Caddyfile for the proxy in front of the app (local rung and VPS rung).

Caddy is the proxy on both rungs because it issues and renews Let's Encrypt
certificates by itself (no certbot cron) and its config is small enough to review.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from components.render.drain import cookie_name
from components.settings import App, Settings

# Security headers every public response gets on the VPS rung.
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Strict-Transport-Security", '"max-age=31536000; includeSubDomains"'),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("-Server", ""),
)


@dataclass(frozen=True)
class Route:
    """One routed service: requests under `path` go to `upstreams`."""

    service: str
    path: str
    upstreams: tuple[str, ...]
    health: str
    port: int
    sticky: bool = False


def routes_for(app: App, upstream_host: dict[str, Sequence[str]] | None = None) -> list[Route]:
    """Routes for every service with a port, most specific path first.

    `upstream_host` maps a service to the host names that serve it (default: the
    service name, which is its DNS name on the Docker network).
    """
    routes = []
    for name, svc in app.routed_services.items():
        hosts = (upstream_host or {}).get(name, (name,))
        assert svc.port is not None  # a routed service has one
        routes.append(
            Route(
                service=name,
                path=svc.route,
                upstreams=tuple(f"{host}:{svc.port}" for host in hosts),
                health=svc.health_path,
                port=svc.port,
                sticky=svc.sticky,
            )
        )
    return sorted(routes, key=lambda r: (-len(r.path.rstrip("/")), r.path))


def _matcher_paths(path: str) -> str:
    base = path.rstrip("/")
    return f"{base} {base}/*"


# How often the proxy asks Docker's DNS for a service's pool: a container that joined is served
# within this, and the deploy waits a little longer before it fences the old ones.
POOL_REFRESH = "1s"


def _lb_policy(route: Route) -> list[str]:
    """Round robin over the pool; a sticky service pins each client to one member with a cookie.

    The cookie holds an HMAC of the member's address (no secret: it only selects among the
    pool's members). When that member leaves the pool (drained on a deploy), the cookie matches
    nothing, round robin picks another member and the response sets a new cookie.
    """
    if not route.sticky:
        return ["\t\t\tlb_policy round_robin"]
    return [
        f"\t\t\tlb_policy cookie {cookie_name(route.service)} {{",
        "\t\t\t\tfallback round_robin",
        "\t\t\t}",
    ]


def _pool_proxy(route: Route) -> list[str]:
    """A reverse_proxy whose upstreams are the service's pool, read from Docker's DNS.

    The pool is the containers the deploy connected to the service's route network under the
    service's name, which it does only once they are healthy; the proxy shares no other
    network with them, so neither an unhealthy new container nor another service's container
    (which may get a freed address) is ever an upstream. The list changes without a Caddy
    reload: a reload closes every open connection, WebSockets included, of every service.
    Connections to the app are not kept alive, so a container the deploy fenced (new
    connections refused) gets no new request over an old connection; a refused dial is retried
    on another member at once.
    """
    return [
        "\t\treverse_proxy {",
        "\t\t\tdynamic a {",
        f"\t\t\t\tname {route.service}",
        f"\t\t\t\tport {route.port}",
        f"\t\t\t\trefresh {POOL_REFRESH}",
        "\t\t\t}",
        *_lb_policy(route),
        "\t\t\tlb_try_duration 5s",
        "\t\t\tlb_try_interval 100ms",
        "\t\t\tfail_duration 10s",
        "\t\t\tmax_fails 1",
        "\t\t\ttransport http {",
        "\t\t\t\tdial_timeout 2s",
        "\t\t\t\tkeepalive off",
        "\t\t\t}",
        "\t\t}",
    ]


def render_caddyfile(
    site: str,
    routes: Sequence[Route],
    *,
    acme_email: str | None = None,
    acme_server: str | None = None,
    tls: bool = True,
    security_headers: bool = True,
    deployed_upstreams: bool = False,
    admin: bool = False,
    trusted_proxies: str | None = None,
) -> str:
    """Render a Caddyfile serving `site` (a host name, or `:port` for plain HTTP).

    `deployed_upstreams`: each route's upstreams are the service's pool, which the deploy
    manages (see `_pool_proxy`); otherwise the service name, as Compose resolves it.
    """
    global_opts = ["\tadmin off"] if not admin else ["\tadmin localhost:2019"]
    if not tls:
        global_opts.append("\tauto_https off")
    else:
        if acme_email:
            global_opts.append(f"\temail {acme_email}")
        if acme_server:
            global_opts.append(f"\tacme_ca {acme_server}")
    # HTTP/3 needs UDP 443, which neither firewall opens: don't advertise it.
    server_opts = ["\t\tprotocols h1 h2"]
    if trusted_proxies:
        server_opts.append(f"\t\ttrusted_proxies static {trusted_proxies}")
    global_opts += ["\tservers {", *server_opts, "\t}"]
    lines = ["{", *global_opts, "}", "", f"{site} {{", "\tencode zstd gzip"]
    if security_headers:
        lines.append("\theader {")
        lines.extend(f"\t\t{name} {value}".rstrip() for name, value in SECURITY_HEADERS)
        lines.append("\t}")
    for route in routes:
        proxy = _pool_proxy(route) if deployed_upstreams else [f"\t\treverse_proxy {' '.join(route.upstreams)}"]
        if route.path.rstrip("/") == "":
            lines += ["", "\thandle {", *proxy, "\t}"]
        else:
            matcher = f"@{route.service}"
            lines += [
                "",
                f"\t{matcher} path {_matcher_paths(route.path)}",
                f"\thandle {matcher} {{",
                *proxy,
                "\t}",
            ]
    lines.append("}")
    return "\n".join(lines) + "\n"


# The local proxy listens here, published on 127.0.0.1 only; 8080 needs no root.
LOCAL_PROXY_PORT = 8080


def local_caddyfile(app: App) -> str:
    """Plain HTTP on localhost: no certificates, no HSTS (it would stick to `localhost` in browsers)."""
    return render_caddyfile(f":{LOCAL_PROXY_PORT}", routes_for(app), tls=False, security_headers=False)


def vps_caddyfile(settings: Settings, behind_load_balancer: bool = False) -> str:
    """One server: Caddy gets and renews the certificate for `ladder:domain` itself.
    Behind a load balancer: the balancer terminates TLS and Caddy serves plain HTTP on :80,
    trusting X-Forwarded-* only from private addresses."""
    routes = routes_for(settings.app)
    if behind_load_balancer:
        return render_caddyfile(
            ":80", routes, tls=False, deployed_upstreams=True, admin=True, trusted_proxies="private_ranges"
        )
    return render_caddyfile(
        settings.public_host,
        routes,
        acme_email=settings.acme_email,
        acme_server=settings.acme_server,
        deployed_upstreams=True,
        admin=True,
    )
