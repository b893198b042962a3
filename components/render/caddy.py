"""The Caddyfile for the proxy in front of the app (local rung and VPS rung).

Caddy is the proxy on both rungs because it issues and renews Let's Encrypt
certificates by itself (no certbot cron) and its config is small enough to review.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


def routes_for(app: App, upstream_host: dict[str, Sequence[str]] | None = None) -> list[Route]:
    """Routes for every service with a port, most specific path first.

    `upstream_host` maps a service to the host names that serve it (default: the
    service name, which is its DNS name on the Docker network).
    """
    routes = []
    for name, svc in app.routed_services.items():
        hosts = (upstream_host or {}).get(name, (name,))
        routes.append(
            Route(
                service=name,
                path=svc.route,
                upstreams=tuple(f"{host}:{svc.port}" for host in hosts),
                health=svc.health_path,
            )
        )
    return sorted(routes, key=lambda r: (-len(r.path.rstrip("/")), r.path))


def _matcher_paths(path: str) -> str:
    base = path.rstrip("/")
    return f"{base} {base}/*"


def render_caddyfile(
    site: str,
    routes: Sequence[Route],
    *,
    acme_email: str | None = None,
    tls: bool = True,
    security_headers: bool = True,
    health_checks: bool = False,
    dynamic_upstreams: bool = False,
    admin: bool = False,
    trusted_proxies: str | None = None,
) -> str:
    """Render a Caddyfile serving `site` (a host name, or `:port` for plain HTTP).

    `dynamic_upstreams` resolves each service's DNS name every few seconds, so the
    containers a rolling deploy starts join the pool (and stopped ones leave) without a
    reload; active health checks keep unhealthy ones out.
    """
    global_opts = ["\tadmin off"] if not admin else ["\tadmin localhost:2019"]
    if not tls:
        global_opts.append("\tauto_https off")
    elif acme_email:
        global_opts.append(f"\temail {acme_email}")
    if trusted_proxies:
        global_opts += ["\tservers {", f"\t\ttrusted_proxies static {trusted_proxies}", "\t}"]
    lines = ["{", *global_opts, "}", "", f"{site} {{", "\tencode zstd gzip"]
    if security_headers:
        lines.append("\theader {")
        lines.extend(f"\t\t{name} {value}".rstrip() for name, value in SECURITY_HEADERS)
        lines.append("\t}")
    for route in routes:
        if dynamic_upstreams:
            host, _, port = route.upstreams[0].rpartition(":")
            proxy = [
                "\t\treverse_proxy {",
                "\t\t\tdynamic a {",
                f"\t\t\t\tname {host}",
                f"\t\t\t\tport {port}",
                "\t\t\t\trefresh 2s",
                "\t\t\t}",
                "\t\t\tlb_policy round_robin",
            ]
        else:
            proxy = [f"\t\treverse_proxy {' '.join(route.upstreams)} {{"]
        if health_checks and dynamic_upstreams:
            # Active checks need static upstreams; with DNS-discovered ones Caddy checks
            # passively and retries another container while a deploy swaps them.
            proxy += [
                "\t\t\tfail_duration 30s",
                "\t\t\tmax_fails 1",
                "\t\t\tunhealthy_status 502 503 504",
                "\t\t\tlb_try_duration 10s",
                "\t\t\tlb_try_interval 250ms",
            ]
        elif health_checks:
            proxy += [
                f"\t\t\thealth_uri {route.health}",
                "\t\t\thealth_interval 5s",
                "\t\t\tlb_try_duration 10s",
            ]
        proxy += ["\t\t}"]
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
            ":80",
            routes,
            tls=False,
            health_checks=True,
            dynamic_upstreams=True,
            admin=True,
            trusted_proxies="private_ranges",
        )
    return render_caddyfile(
        settings.public_host,
        routes,
        acme_email=settings.acme_email,
        health_checks=True,
        dynamic_upstreams=True,
        admin=True,
    )
