"""The Caddyfile for the proxy in front of the app (local rung and VPS rung).

Caddy is the proxy on both rungs because it issues and renews Let's Encrypt
certificates by itself (no certbot cron) and its config is small enough to review.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from components.settings import App

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
) -> str:
    """Render a Caddyfile serving `site` (a host name, or `:port` for plain HTTP)."""
    global_opts = ["\tadmin off"]
    if not tls:
        global_opts.append("\tauto_https off")
    elif acme_email:
        global_opts.append(f"\temail {acme_email}")
    lines = ["{", *global_opts, "}", "", f"{site} {{", "\tencode zstd gzip"]
    if security_headers:
        lines.append("\theader {")
        lines.extend(f"\t\t{name} {value}".rstrip() for name, value in SECURITY_HEADERS)
        lines.append("\t}")
    for route in routes:
        upstreams = " ".join(route.upstreams)
        proxy = [f"\t\treverse_proxy {upstreams} {{"]
        if health_checks:
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
